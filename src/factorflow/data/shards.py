"""Sharded clip corpora: tar files of whole clips in WebDataset's layout, plus an index.

A corpus of half a million clips as one PNG per frame is fourteen million files; as shards it is a
few hundred tar files that any tool (tar, WebDataset, this module) reads. Layout::

    DIR/index.json                  {"format": "factorflow-shards/1", "size": [H, W],
                                     "frames": T (longest clip), "words": [...], "speakers": [...],
                                     "landmarks": clips with landmarks,
                                     "splits": {"train": [{"name": "train-000000.tar",
                                                           "clips": N}, ...], ...}}
    DIR/{split}-{n:06d}.tar         one sample per clip, members in this order:
        {key}.npy                   frames uint8 [T, H, W, 3] (numpy's .npy, no pickle)
        {key}.landmarks.npy         (when the corpus has them) the face tool's landmarks,
                                    float32 [T, 478, 2] in the frames' pixels
        {key}.json                  {"word", "speaker", "clip_id", "split", "source"}

`key` is `{split}/{clip_id}`-free of dots (WebDataset groups members by the name before the first
dot). The tar files are written with the standard library (`tarfile`): no dependency, and the
writer fixes the member order, which the deterministic sampler relies on.

Reading: `ShardClipDataset` is a map-style ClipDataset whose clip i is the k-th sample of shard j
(i = clips before shard j + k). A shard's member table is read from its tar headers the first time
the shard is touched (a few KB per shard, a bounded number of shards kept), and a clip is one seek
and one read. `ShardSampler` orders an epoch from (seed, epoch) alone: the shards are permuted,
taken in windows of `window` shards, and the items of a window are permuted; rank r of W takes the
positions r, r+W, ... of that order, so the union of the ranks' batches at step s is the batch one
process draws, and each process only opens the shards its own clips live in. Memory is constant in
the corpus size up to one integer per shard.

A corpus in object storage is read from its URL (http:// or https://, e.g. a bucket's HTTP
endpoint): index.json is fetched, and a shard is streamed with webdataset's opener (the `shards`
extra) into a per-process cache folder the first time one of its clips is asked for, then read as
a local one; the same bounded number of shards is kept, so the sampler, and with it exact resume
and the ranks' split, are the same as for a folder. WebDataset's own pipeline reads a shard front
to back and shuffles in a buffer; it is not used for reading, because the epoch order must be a
function of (seed, epoch) alone (benchmarks/shard_reader.py measures both).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import torch
from torch.utils.data import Sampler

from factorflow.data.dataset import ClipDataset, _as_size, fit_length, resize_frames
from factorflow.data.readers.base import NPY_ERRORS
from factorflow.io import OutputExistsError, atomic_dir, atomic_write_text, has_content, tmp_name

__all__ = [
    "CLIPS_PER_SHARD",
    "FORMAT",
    "INDEX",
    "WINDOW_SHARDS",
    "ShardClipDataset",
    "ShardSampler",
    "ShardWriter",
    "convert",
    "is_sharded",
    "is_url",
    "open_url",
    "read_index",
    "write_shards",
]

log = logging.getLogger(__name__)

FORMAT = "factorflow-shards/1"
INDEX = "index.json"
CLIPS_PER_SHARD = 1000
WINDOW_SHARDS = 8  # shards whose clips are shuffled together (the shuffle "buffer")
_OPEN_SHARDS = 16  # member tables kept per process


def is_url(path: str | os.PathLike) -> bool:
    """Whether `path` names a remote shard corpus (http:// or https://) rather than a folder."""
    return isinstance(path, str) and path.startswith(("http://", "https://"))


def open_url(url: str):
    """A binary stream of `url`, through webdataset's opener (imported here: an optional extra)."""
    try:
        from webdataset import gopen
    except ImportError as exc:
        raise ImportError(
            f"reading shards from {url} needs webdataset: pip install 'factorflow[shards]'"
        ) from exc
    return gopen(url, "rb")


def _fetch(url: str) -> bytes:
    try:
        with open_url(url) as stream:
            return stream.read()
    except (OSError, ValueError) as exc:
        raise OSError(f"cannot fetch {url}: {exc}") from exc


def is_sharded(path: str | os.PathLike) -> bool:
    """Whether `path` is a shard folder or URL (holds an index.json of this format)."""
    if is_url(path):
        try:
            return read_index(path).get("format") == FORMAT
        except (OSError, ValueError):
            return False
    index = Path(path) / INDEX
    if not index.is_file():
        return False
    try:
        return json.loads(index.read_text()).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def read_index(path: str | os.PathLike) -> dict:
    """The index of the shard folder or URL `path`; ValueError naming the file when it is not."""
    index = f"{path.rstrip('/')}/{INDEX}" if is_url(path) else Path(path) / INDEX
    try:
        meta = json.loads(_fetch(index) if is_url(path) else index.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no shard index {index} (expected a folder written by shard)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read shard index {index}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{index} is not a shard index (expected format {FORMAT})")
    return meta


def _key(clip_id: str, number: int) -> str:
    # WebDataset splits a member name at its first dot: keep keys free of dots and slashes.
    return f"{number:08d}_" + re.sub(r"[^A-Za-z0-9_-]+", "-", clip_id)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


class ShardWriter:
    """Write clips of one corpus into shards of at most `clips_per_shard` clips, then the index.

    Each shard is written to a temporary name and renamed when complete, and the index is written
    last (`close`): a folder without index.json is unfinished. Clips of one split go to that
    split's shards in the order they are added.
    """

    def __init__(self, out: str | os.PathLike, clips_per_shard: int = CLIPS_PER_SHARD) -> None:
        if clips_per_shard < 1:
            raise ValueError(f"clips_per_shard must be >= 1, got {clips_per_shard}")
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.clips_per_shard = clips_per_shard
        self.splits: dict[str, list[dict]] = {}
        self.words: set[str] = set()
        self.speakers: set[str] = set()
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self.landmarks = 0
        self._open: dict[str, tuple[tarfile.TarFile, Path, int]] = {}

    def add(
        self,
        frames: np.ndarray,
        split: str,
        clip_id: str,
        word: str | None = None,
        speaker: str | None = None,
        source: str | None = None,
        landmarks: np.ndarray | None = None,
    ) -> None:
        """Append one clip, frames uint8 [T, H, W, 3], to `split`, with its face-tool
        `landmarks` [T, K, 2] in the frames' pixels when it has them (stored as float32)."""
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"clip {clip_id}: expected uint8 frames [T, H, W, 3], got {frames.dtype} "
                f"{list(frames.shape)}"
            )
        members = [("npy", _npy_bytes(frames))]
        if landmarks is not None:
            landmarks = np.asarray(landmarks, np.float32)
            if landmarks.ndim != 3 or landmarks.shape[2] != 2 or len(landmarks) != len(frames):
                raise ValueError(
                    f"clip {clip_id}: expected landmarks [{len(frames)}, K, 2], got "
                    f"{list(landmarks.shape)}"
                )
            members.append(("landmarks.npy", _npy_bytes(landmarks)))
            self.landmarks += 1
        size = tuple(frames.shape[1:3])
        if self.size is None:
            self.size = size
        elif size != self.size:
            raise ValueError(
                f"clip {clip_id} is {size[1]}x{size[0]}, the corpus {self.size[1]}x"
                f"{self.size[0]} (one frame size per shard folder)"
            )
        tar, path, count = self._shard(split)
        key = _key(clip_id, sum(s["clips"] for s in self.splits[split]) + count)
        label = {"word": word, "speaker": speaker, "clip_id": clip_id, "split": split}
        if source is not None:
            label["source"] = source
        for ext, data in [*members, ("json", json.dumps(label).encode())]:
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
        self._open[split] = (tar, path, count + 1)
        self.words.update([word] if word else [])
        self.speakers.update([speaker] if speaker else [])
        self.frames = max(self.frames, len(frames))
        if count + 1 >= self.clips_per_shard:
            self._finish(split)

    def _shard(self, split: str) -> tuple[tarfile.TarFile, Path, int]:
        if split not in self._open:
            shards = self.splits.setdefault(split, [])
            name = f"{split}-{len(shards):06d}.tar"
            tmp = tmp_name(self.out / name)
            tar = tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115 (closed in _finish)
            self._open[split] = (tar, tmp, 0)
        return self._open[split]

    def _finish(self, split: str) -> None:
        tar, tmp, count = self._open.pop(split)
        tar.close()
        shards = self.splits[split]
        name = f"{split}-{len(shards):06d}.tar"
        os.replace(tmp, self.out / name)
        shards.append({"name": name, "clips": count})

    def close(
        self, words: Iterable[str] = (), speakers: Iterable[str] = (), extra: dict | None = None
    ) -> dict:
        """Finish the open shards and write index.json; returns the index.

        `words` / `speakers` widen the vocabularies beyond the labels met (e.g. words of other
        splits, so label indices agree); `extra` keys are stored as they are."""
        for split in list(self._open):
            self._finish(split)
        if self.size is None:
            raise ValueError(f"no clip was written to {self.out}")
        index = {
            "format": FORMAT,
            "size": list(self.size),
            "frames": self.frames,
            "words": sorted(self.words.union(words)),
            "speakers": sorted(self.speakers.union(speakers)),
            "landmarks": self.landmarks,
            "splits": self.splits,
            **(extra or {}),
        }
        atomic_write_text(self.out / INDEX, json.dumps(index, indent=1))
        return index

    def abort(self) -> None:
        for tar, tmp, _ in self._open.values():
            tar.close()
            tmp.unlink(missing_ok=True)
        self._open.clear()


def write_shards(
    clips: Iterable[tuple[np.ndarray, dict]],
    out: str | os.PathLike,
    clips_per_shard: int = CLIPS_PER_SHARD,
    words: Iterable[str] = (),
    speakers: Iterable[str] = (),
    extra: dict | None = None,
) -> dict:
    """Write (frames [T, H, W, 3] uint8, {"split", "clip_id", "word", "speaker", "source",
    "landmarks"}) pairs as shards in `out` (landmarks [T, K, 2] optional); returns the index (see
    `ShardWriter.close` for the rest)."""
    writer = ShardWriter(out, clips_per_shard)
    try:
        for frames, label in clips:
            writer.add(
                frames,
                label["split"],
                label["clip_id"],
                label.get("word"),
                label.get("speaker"),
                label.get("source"),
                label.get("landmarks"),
            )
    except BaseException:
        writer.abort()
        raise
    return writer.close(words, speakers, extra)


def convert(
    data: str | os.PathLike,
    out: str | os.PathLike,
    layout: str = "auto",
    clips_per_shard: int = CLIPS_PER_SHARD,
    overwrite: bool = False,
    shuffle_seed: int | None = 0,
) -> dict:
    """Shard every clip of the frame or video corpus `data` (any reader layout) into `out`.

    LRW-style corpora keep their splits; layouts without splits go to "train". Labels (word,
    speaker) come from the reader; the vocabularies cover every split. A clip with a landmarks
    file (`prepare`, `synth --landmarks`) keeps its landmarks; a damaged one is an error. Clips
    are written in an order shuffled with `shuffle_seed` (None: the reader's order): a corpus
    listed word by word would otherwise give shards, and so shuffle windows, of a few words
    each. The shards are written in a temporary sibling folder renamed into place at the end; a
    non-empty `out` is replaced only with `overwrite`. Returns the index.
    """
    from factorflow.data.readers import SPLITS, open_reader
    from factorflow.data.readers.base import landmarks_file

    out = Path(out)
    if has_content(out) and not overwrite:
        raise OutputExistsError(
            f"output {out} exists and is not empty (pass --force to replace it)"
        )
    readers = {}
    for split in SPLITS:
        try:
            reader = open_reader(data, layout=layout, split=split)
        except ValueError:
            continue
        readers.setdefault(getattr(reader, "split", "train"), reader)
    if not readers:
        open_reader(data, layout=layout)  # the reader's own message for what it expected

    def clips() -> Iterator[tuple[np.ndarray, dict]]:
        for split, reader in readers.items():
            refs = list(reader.refs)
            if shuffle_seed is not None:
                refs = [refs[i] for i in np.random.default_rng(shuffle_seed).permutation(len(refs))]
            for ref in refs:
                label = {"split": split, "clip_id": ref.clip_id, "word": ref.word}
                path = landmarks_file(ref)
                if path is not None and path.is_file():
                    label["landmarks"] = reader.load_landmarks(ref)
                yield reader.load_frames(ref), {**label, "speaker": ref.speaker}

    # Reader vocabularies can be wider than the labels met (LRW words over every split).
    words = {w for r in readers.values() for w in r.words}
    speakers = {s for r in readers.values() for s in r.speakers}
    with atomic_dir(out, replace=overwrite) as staging:
        return write_shards(clips(), staging, clips_per_shard, words, speakers)


@dataclass(frozen=True)
class _Member:
    offset: int
    size: int


def _members(path: Path) -> list[dict[str, _Member]]:
    """Member locations of every sample of a shard, in order, from its headers: one dict per
    sample from extension ("npy", "landmarks.npy", "json") to where its bytes are."""
    samples: list[dict[str, _Member]] = []
    key = None
    try:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                name, _, ext = info.name.partition(".")
                if name != key:
                    samples.append({})
                    key = name
                samples[-1][ext] = _Member(info.offset_data, info.size)
    except (OSError, tarfile.TarError) as exc:
        raise ValueError(f"cannot read shard {path}: {exc}") from exc
    return [sample for sample in samples if "npy" in sample and "json" in sample]


class ShardClipDataset(ClipDataset):
    """Fixed-length clips of one split of a shard folder or URL, read one seek per clip.

    Same items and options as `ClipDataset` (frames, size, resize, cache_items, words, speakers);
    `shard_counts` gives the clips per shard in index order (what `ShardSampler` needs). A URL
    `root` (http:// or https://) downloads each shard touched into a private folder under
    `cache_dir` (default: the system's temporary folder), keeping as many as it keeps tables.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        frames: int = 16,
        size: int | Sequence[int] | None = None,
        resize: bool = False,
        cache_items: int = 8,
        words: Sequence[str] | None = None,
        speakers: Sequence[str] | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        self.remote = is_url(root)
        self.root = str(root).rstrip("/") if self.remote else Path(root)
        self.split = split
        index = read_index(root)
        shards = index["splits"].get(split)
        if not shards:
            raise ValueError(
                f"{self.root}/{INDEX} has no {split!r} split (has: {sorted(index['splits'])})"
            )
        if self.remote:
            self.shards = [f"{self.root}/{s['name']}" for s in shards]
        else:
            self.shards = [self.root / s["name"] for s in shards]
        self.cache_dir = cache_dir
        self._downloads: Path | None = None
        self.shard_counts = [int(s["clips"]) for s in shards]
        self._starts = np.concatenate([[0], np.cumsum(self.shard_counts)])
        self.frames = frames
        self.resize = resize
        self.cache_items = cache_items
        self.words = list(words if words is not None else index["words"])
        self.speakers = list(speakers if speakers is not None else index["speakers"])
        self._word_index = {w: i for i, w in enumerate(self.words)}
        self._speaker_index = {s: i for i, s in enumerate(self.speakers)}
        self.stored_size = tuple(index["size"])
        self.size = _as_size(size) or self.stored_size
        if self.size != self.stored_size and not resize:
            raise ValueError(
                f"{self.root} holds {self.stored_size[1]}x{self.stored_size[0]} frames, expected "
                f"{self.size[1]}x{self.size[0]} (pass resize=True to resize)"
            )
        self._cache: OrderedDict[int, tuple[torch.Tensor, int, int]] = OrderedDict()
        self._tables: OrderedDict[int, tuple[Path, list[dict[str, _Member]]]] = OrderedDict()
        self._bad: dict[int, tuple[str, str]] = {}

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getstate__(self) -> dict:
        # DataLoader workers get the index, not the parent's caches.
        state = dict(self.__dict__)
        state["_cache"], state["_tables"] = OrderedDict(), OrderedDict()
        state["_downloads"] = None  # each process downloads into its own folder
        return state

    def locate(self, index: int) -> tuple[int, int]:
        """(shard number, sample number within it) of clip `index`."""
        shard = int(np.searchsorted(self._starts, index, side="right")) - 1
        return shard, index - int(self._starts[shard])

    def _local(self, shard: int) -> Path:
        """The shard as a local file: itself, or (a URL) its download into this process's cache."""
        if not self.remote:
            return self.shards[shard]
        if self._downloads is None:
            prefix = "factorflow-shards-"
            if self.cache_dir is not None:
                Path(self.cache_dir).mkdir(parents=True, exist_ok=True)
            self._downloads = Path(tempfile.mkdtemp(prefix=prefix, dir=self.cache_dir))
            weakref.finalize(self, shutil.rmtree, self._downloads, True)
        url = self.shards[shard]
        path = self._downloads / Path(urlsplit(url).path).name
        tmp = tmp_name(path)
        try:
            with open_url(url) as stream, open(tmp, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
        except (OSError, ValueError) as exc:
            tmp.unlink(missing_ok=True)
            raise ValueError(f"cannot fetch shard {url}: {exc}") from exc
        os.replace(tmp, path)
        return path

    def _table(self, shard: int) -> tuple[Path, list[dict[str, _Member]]]:
        entry = self._tables.get(shard)
        if entry is None:
            path = self._local(shard)
            table = _members(path)
            if len(table) != self.shard_counts[shard]:
                raise ValueError(
                    f"shard {self.shards[shard]} holds {len(table)} clips, its index says "
                    f"{self.shard_counts[shard]}"
                )
            entry = self._tables[shard] = (path, table)
            while len(self._tables) > _OPEN_SHARDS:
                old, _ = self._tables.popitem(last=False)[1]
                if self.remote:
                    old.unlink(missing_ok=True)
        else:
            self._tables.move_to_end(shard)
        return entry

    def _read(self, index: int, *exts: str) -> list:
        """The members `exts` of clip `index`: .npy arrays (no pickle), the .json label parsed;
        None for a member the clip does not have."""
        shard, k = self.locate(index)
        path, table = self._table(shard)
        sample = table[k]
        out = []
        try:
            with open(path, "rb") as f:
                for ext in exts:
                    member = sample.get(ext)
                    if member is None:
                        out.append(None)
                        continue
                    f.seek(member.offset)
                    data = f.read(member.size)
                    if ext == "json":
                        out.append(json.loads(data))
                    else:
                        out.append(np.load(io.BytesIO(data), allow_pickle=False))
        except NPY_ERRORS as exc:
            raise ValueError(f"cannot read clip {k} of shard {self.shards[shard]}: {exc}") from exc
        return out

    def read_clip(self, index: int) -> tuple[np.ndarray, dict]:
        """The stored frames uint8 [T, H, W, 3] and label dict of clip `index`."""
        frames, label = self._read(index, "npy", "json")
        return frames, label

    def clip_landmarks(self, index: int) -> np.ndarray:
        """The face tool's landmarks of clip `index`, float32 [T, 478, 2] in the pixels of its
        frames, fitted to T and scaled like the frames (ClipDataset's contract)."""
        landmarks, label = self._read(index, "landmarks.npy", "json")
        if landmarks is None:
            raise ValueError(
                f"clip {label.get('clip_id')} of {self.root} has no landmarks: shard a corpus "
                "written by `factorflow prepare` or `factorflow synth --landmarks`"
            )
        height, width = self.stored_size
        if (height, width) != self.size:
            landmarks = landmarks * np.array([self.size[1] / width, self.size[0] / height])
        return fit_length(landmarks, self.frames).astype(np.float32)

    def clip_frames(self, index: int) -> tuple[int, torch.Tensor]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"clip index {index} out of range for {n} clips")
        index %= n
        cached = self._cache.get(index)
        if cached is None:
            frames, label = self.read_clip(index)
            if tuple(frames.shape[1:3]) != self.size:
                frames = resize_frames(frames, self.size)
            frames = fit_length(frames, self.frames)
            tensor = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
            word = self._word_index.get(label.get("word"), -1)
            speaker = self._speaker_index.get(label.get("speaker"), -1)
            cached = (tensor, word, speaker)
            if self.cache_items:
                self._cache[index] = cached
                while len(self._cache) > self.cache_items:
                    self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(index)
        return index, cached[0]

    def labels(self, index: int) -> tuple[int, int]:
        cached = self._cache.get(index)
        if cached is None:
            _, label = self.read_clip(index)
            return (
                self._word_index.get(label.get("word"), -1),
                self._speaker_index.get(label.get("speaker"), -1),
            )
        return cached[1], cached[2]

    def summary(self) -> str:
        height, width = self.size
        return (
            f"{len(self)} clips in {len(self.shards)} shards of {self.root} ({self.split}), "
            f"{self.frames} frames of {width}x{height}, {len(self.words)} words, "
            f"{len(self.speakers)} speakers"
        )


class ShardSampler(Sampler[int]):
    """A deterministic epoch order over items stored shard by shard, split across ranks.

    `counts[j]` items live in shard j, numbered consecutively (item i of shard j is
    sum(counts[:j]) + i). Epoch e (`set_epoch`) permutes the shards with (seed, e), takes them in
    windows of `window` shards and permutes the items inside each window with (seed, e, window).
    Like torch's DistributedSampler with drop_last, the order is cut to a multiple of `world` and
    rank r takes positions r, r+world, ...: the ranks' items never overlap, and their union at
    each step is what one process would take. Nothing of size N is ever held: one window's
    permutation at a time.
    """

    def __init__(
        self,
        counts: Sequence[int],
        seed: int = 0,
        world: int = 1,
        rank: int = 0,
        window: int = WINDOW_SHARDS,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1 shard, got {window}")
        self.counts = np.asarray(counts, dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)])
        self.seed, self.world, self.rank, self.window = seed, world, rank, window
        self.epoch = 0
        total = int(self.starts[-1])
        self.total = total - total % world

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.total // self.world

    def _order(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        shards = rng.permutation(len(self.counts))
        for w in range(0, len(shards), self.window):
            group = shards[w : w + self.window]
            items = np.concatenate([np.arange(self.starts[j], self.starts[j + 1]) for j in group])
            yield from np.random.default_rng([self.seed, self.epoch, w]).permutation(items).tolist()

    def __iter__(self) -> Iterator[int]:
        for position, item in enumerate(self._order()):
            if position >= self.total:
                return
            if position % self.world == self.rank:
                yield item
