"""Datasets and batches for the trainer. The batch of step s is a pure function of (seed, s).

That single property gives exact resume (restart at step s, get the same batches) and DDP
equivalence: torch's DistributedSampler gives rank r the positions r, r+W, ... of one permutation,
so the union of the ranks' step-s batches is the global batch a single process would draw.
A shard folder (`factorflow shard`, `prepare --shards`) keeps that property with a ShardSampler,
whose epoch order is built window by window from the index instead of over every item at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    default_collate,
)

from factorflow.config import DataConfig
from factorflow.data.dataset import ClipDataset, FrameDataset
from factorflow.data.pairs import PairDataset
from factorflow.data.readers import open_reader
from factorflow.data.shards import ShardClipDataset, ShardSampler, is_sharded, read_index
from factorflow.engine.distributed import DistInfo
from factorflow.models.base import Batch

__all__ = [
    "StepLoader",
    "clips_of",
    "first_batch",
    "open_split",
    "speakers_of",
    "val_batches",
    "words_of",
]


def clips_of(dataset: Dataset) -> ClipDataset:
    if isinstance(dataset, FrameDataset):
        return dataset.clips
    if isinstance(dataset, PairDataset):
        return dataset.clip_set
    return dataset


def open_split(
    data_dir: Path,
    split: str,
    cfg: DataConfig,
    kind: str,
    labels_from: Dataset | None = None,
    pairs: tuple[int, int] = (64, 4),
) -> Dataset:
    """The `split` of a corpus folder (any reader layout, or a shard folder) as single frames
    ("frames"), clips ("clips") or pairs of frames of one clip with their landmark geometry
    ("pairs": `data.pairs.PairDataset`, of crops of side `pairs[0]` with `pairs[1]` partners
    per frame; frames at their own size).

    `labels_from`: a dataset whose word and speaker vocabularies this split reuses, so label
    indices agree across splits.
    """
    vocab = clips_of(labels_from) if labels_from is not None else None
    options = {
        "frames": cfg.frames,
        "size": None if kind == "pairs" else cfg.size,
        "cache_items": cfg.cache_items,
        "words": vocab.words if vocab else None,
        "speakers": vocab.speakers if vocab else None,
    }
    if is_sharded(data_dir):
        clips = ShardClipDataset(data_dir, split, **options)
    else:
        clips = ClipDataset(open_reader(data_dir, layout=cfg.layout, split=split), **options)
    if kind == "pairs":
        return PairDataset.of(clips, *pairs)
    return FrameDataset(clips) if kind == "frames" else clips


def words_of(data_dir: Path, layout: str = "auto") -> list[str]:
    """The word vocabulary of a corpus folder's training split (reader or shard index)."""
    if is_sharded(data_dir):
        return list(read_index(data_dir)["words"])
    return list(open_reader(data_dir, layout=layout, split="train").words)


def speakers_of(data_dir: Path, layout: str = "auto") -> list[str]:
    """The speakers of a corpus folder's training split (reader or shard index)."""
    if is_sharded(data_dir):
        return list(read_index(data_dir)["speakers"])
    return list(open_reader(data_dir, layout=layout, split="train").speakers)


def first_batch(dataset: Dataset, frames: int) -> Batch:
    """About `frames` frames from the start of the dataset, the same on every world size (ActNorm
    init): single frames, or whole clips (at least 2) from a clip dataset."""
    n = max(2, frames // dataset.frames) if isinstance(dataset, ClipDataset) else frames
    n = min(n, len(dataset))
    return default_collate([dataset[i] for i in range(n)])


class StepLoader:
    def __init__(
        self, dataset: Dataset, batch_size: int, seed: int, dist: DistInfo, num_workers: int = 0
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        clips = clips_of(dataset)
        if isinstance(clips, ShardClipDataset):
            per_clip = len(dataset) // len(clips)  # frames per clip for a FrameDataset, else 1
            counts = [n * per_clip for n in clips.shard_counts]
            self.sampler = ShardSampler(counts, seed=seed, world=dist.world, rank=dist.rank)
        else:
            self.sampler = DistributedSampler(
                dataset,
                num_replicas=dist.world,
                rank=dist.rank,
                shuffle=True,
                seed=seed,
                drop_last=True,
            )
        self.steps_per_epoch = len(self.sampler) // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"dataset has {len(dataset)} items, fewer than one global batch "
                f"({batch_size} x {dist.world} processes): lower data.batch_size"
            )

    def iterate(self, start_step: int) -> Iterator[Batch]:
        step = start_step
        while True:
            epoch, offset = divmod(step, self.steps_per_epoch)
            self.sampler.set_epoch(epoch)
            batches = _Skip(BatchSampler(self.sampler, self.batch_size, drop_last=True), offset)
            loader = DataLoader(
                self.dataset,
                batch_sampler=batches,
                num_workers=self.num_workers,
                persistent_workers=False,
            )
            for batch in loader:
                yield batch
                step += 1


class _Skip:
    """The batches of `batches` from the `offset`-th on, drawn lazily (no list of the epoch)."""

    def __init__(self, batches: BatchSampler, offset: int) -> None:
        self.batches, self.offset = batches, offset

    def __len__(self) -> int:
        return max(0, len(self.batches) - self.offset)

    def __iter__(self) -> Iterator[Sequence[int]]:
        return itertools.islice(iter(self.batches), self.offset, None)


def val_batches(
    n_items: int, batch_size: int, n_batches: int, dist: DistInfo, min_batch: int = 1
) -> list[tuple[list[int], int]]:
    """This rank's share of a fixed, unshuffled slice of the val split: (indices, weight) batches.

    The slice and its batches are the same whatever the world size; batches go to ranks whole, so
    DDP validates exactly what one process would. No batch is smaller than `min_batch` (a short
    last batch joins the one before: AF needs two clips); a rank left without a batch repeats
    one with weight 0, so that every rank runs the same collectives. Empty when the split holds
    fewer than `min_batch` items."""
    n = min(n_items, batch_size * n_batches)
    size = max(batch_size, min_batch)
    chunks = [list(range(i, min(i + size, n))) for i in range(0, n, size)]
    if len(chunks) > 1 and len(chunks[-1]) < min_batch:
        last = chunks.pop()
        chunks[-1] += last
    if not chunks or len(chunks[0]) < min_batch:
        return []
    mine = [(c, 1) for c in chunks[dist.rank :: dist.world]]
    return mine or [(chunks[dist.rank % len(chunks)], 0)]
