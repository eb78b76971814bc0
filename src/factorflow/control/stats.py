"""What controlled generation knows about a model's mouth factor, measured on training clips.

- directions: the principal components of the mouth factor's motion within clips (each frame's
  factor minus its clip's mean factor), over the frames of the training split, with the standard
  deviation of the frames along each. Taking the motion within clips keeps what tells speakers
  apart (a factor that carries the speaker, as AF's r does) from taking the first directions.
- word motion: for each word of the vocabulary, the per-time-step mean over its training clips
  of (factor_t - the clip's mean factor): the word's typical motion, relative to any face; and
  its medoid, the one training clip's motion closest to that mean (a real sequence, so it keeps
  the full amplitude that averaging clips with different timing smooths away).

- flow map (optional, models with a plain Glow flow): a ridge regression of the flow latent's
  motion within clips (z_t - the clip's mean z) on the factor's coordinates along the leading
  directions, so that a factor change can also be rendered as the flow latent change that came
  with it in training (`--renderer flow`): the model's own renderer may show less of the mouth
  than its factor says (AF's r, motioncode's small crop decoder). The map is scaled so that the
  training clips' rendered motion has the energy of their real latent motion.
- word gain: per word, the root-mean-square amplitude of one training clip's motion over the
  amplitude of the word's mean motion (averaging clips whose timing differs shrinks the mean);
  `--gain auto` plays the mean at that amplitude.

Only frames and word labels go in (a prepared corpus's training split, through the same readers
training uses); never the synthetic generator's hidden factors. Stats are stored as a folder of
`stats.safetensors` (tensors) and `stats.json` (what they were made from), so they are computed
once per checkpoint and corpus.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from factorflow.io import atomic_dir, atomic_write_text
from factorflow.models.base import FlowModel, flatten_levels

__all__ = [
    "FORMAT",
    "INFO",
    "TENSORS",
    "ControlStats",
    "compute_stats",
    "fit_flow_map",
    "load_stats",
    "principal_directions",
    "save_stats",
    "stats_from_data",
]

log = logging.getLogger(__name__)

FORMAT = "factorflow-control-stats/1"
TENSORS = "stats.safetensors"
INFO = "stats.json"


@dataclass
class ControlStats:
    """directions [K,D] (unit rows), sd [K] (of the training frames along each), words (the
    vocabulary), word_motion [W,T,D] and word_clips [W] (training clips behind each word's mean),
    word_medoid [W,T,D] (the training clip's motion nearest each word's mean).
    `info`: JSON-able provenance (model, corpus, clip and frame counts)."""

    directions: Tensor
    sd: Tensor
    words: list[str]
    word_motion: Tensor
    word_clips: Tensor
    word_medoid: Tensor
    info: dict[str, Any] = field(default_factory=dict)
    flow_map: Tensor | None = None  # [M, Dz]: latent change per unit along directions 1..M
    word_gain: Tensor | None = None  # [W]: a single clip's motion amplitude over the mean's

    @property
    def dim(self) -> int:
        return int(self.directions.shape[1])

    def word_index(self, word: str) -> int:
        """The index of `word` (case-insensitive), or a ValueError listing the vocabulary."""
        upper = [w.upper() for w in self.words]
        if word.upper() not in upper:
            raise ValueError(f"--word {word}: not in the vocabulary ({', '.join(self.words)})")
        index = upper.index(word.upper())
        if int(self.word_clips[index]) == 0:
            raise ValueError(f"--word {word}: no training clip of it was found")
        return index


def principal_directions(rows: Tensor, k: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Centred rows [N,D] -> (the top k principal directions [k,D] as unit rows, the standard
    deviation of the rows along each [k]). Each direction is signed so that its largest
    component is positive (the sign of a principal component is otherwise arbitrary)."""
    n, d = rows.shape
    k = max(1, min(k, n - 1, d))
    q = min(k + 8, n, d)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, s, v = torch.pca_lowrank(rows.float(), q=q, center=False, niter=6)
    directions = v[:, :k].T.contiguous()
    sign = torch.sign(directions.gather(1, directions.abs().argmax(1, keepdim=True)))
    directions = directions * sign
    return directions, s[:k] / max(n - 1, 1) ** 0.5


@torch.no_grad()
def fit_flow_map(
    model: FlowModel,
    clips: Callable[[], Iterable[tuple[Tensor, int]]],
    motions: list[Tensor],
    directions: Tensor,
    ridge: float = 1e-3,
) -> tuple[Tensor, float]:
    """The ridge regression [M, Dz] of the flow latent's motion within each clip on the factor
    motion's coordinates along `directions` [M,D] (`motions`: each clip's factor motion [T,D], in
    the order of `clips()`), scaled by its calibration gain (returned too): the square root of
    the training latent motion's energy over the energy the regression reproduces. A regression
    returns the expected latent change given the factor, shrunk where the factor is noisy; the
    gain gives rendered motion the amplitude of the real one."""
    glow = model.plain_glow()
    if glow is None:
        raise ValueError(f"a {model.name} model has no plain flow to render a factor through")
    m = len(directions)
    dirs = directions.double()

    def latent_motion(frames: Tensor) -> Tensor:
        parts = [flatten_levels(glow.encode(frames[i : i + 64])) for i in range(0, len(frames), 64)]
        z = torch.cat(parts)
        return (z - z.mean(0, keepdim=True)).double().cpu()

    ptp = torch.zeros(m, m, dtype=torch.float64)
    ptz: Tensor | None = None
    energy = 0.0
    for (frames, _), motion in zip(clips(), motions, strict=True):
        dz = latent_motion(frames)
        p = motion.double() @ dirs.T
        ptp += p.T @ p
        ptz = p.T @ dz if ptz is None else ptz + p.T @ dz
        energy += float(dz.pow(2).sum())
    lam = ridge * float(ptp.trace()) / m
    fit = torch.linalg.solve(ptp + lam * torch.eye(m, dtype=torch.float64), ptz)
    explained = float(((fit @ fit.T) * ptp).sum())  # sum over frames of |p B|^2
    gain = (energy / explained) ** 0.5 if explained > 0 else 1.0
    return (gain * fit).float(), gain


@torch.no_grad()
def compute_stats(
    model: FlowModel,
    clips: Iterable[tuple[Tensor, int]] | Callable[[], Iterable[tuple[Tensor, int]]],
    words: list[str],
    n_directions: int = 16,
    max_rows: int = 8192,
    seed: int = 0,
    flow_map: bool = False,
) -> ControlStats:
    """Stats from training clips: (uint8 frames [T,3,H,W], word index or -1) pairs, or a function
    giving them afresh (needed with `flow_map`, which reads the clips a second time)."""
    source = clips if callable(clips) else (lambda: clips)
    rows: list[Tensor] = []
    labels: list[int] = []
    sums: Tensor | None = None
    counts = torch.zeros(len(words), dtype=torch.long)
    n_clips = n_frames = 0
    length = None
    for frames, word in source():
        factor = model.mouth_factor(frames).float().cpu()
        motion = factor - factor.mean(0, keepdim=True)
        rows.append(motion)
        labels.append(word if len(frames) == (length or len(frames)) else -1)
        n_clips += 1
        n_frames += len(frames)
        if length is None:
            length = len(frames)
            sums = torch.zeros(len(words), length, factor.shape[1], dtype=torch.float64)
        if 0 <= word < len(words) and len(frames) == length:
            sums[word] += motion.double()
            counts[word] += 1
    if n_clips < 2:
        raise ValueError(f"controlled generation needs at least 2 training clips, got {n_clips}")
    word_motion = (sums / counts.clamp(min=1)[:, None, None]).float()
    word_medoid = torch.zeros_like(word_motion)
    for w in range(len(words)):
        own = [r for r, label in zip(rows, labels, strict=True) if label == w]
        if own:
            dist = torch.stack([(r - word_motion[w]).pow(2).sum() for r in own])
            word_medoid[w] = own[int(dist.argmin())]
    table = torch.cat(rows)
    if len(table) > max_rows:  # an even spread of frames over all clips
        table = table[torch.linspace(0, len(table) - 1, max_rows).round().long()]
    directions, sd = principal_directions(table, n_directions, seed)
    info = {"clips": n_clips, "frames": n_frames, "pca_rows": len(table), "dim": table.shape[1]}
    log.info("control stats: %d clips, %d frames, factor of %d", n_clips, n_frames, table.shape[1])
    stats = ControlStats(directions, sd, list(words), word_motion, counts, word_medoid, info)
    amplitude = torch.ones(len(words))
    for w in range(len(words)):
        own = [r for r, label in zip(rows, labels, strict=True) if label == w]
        if own and float(word_motion[w].norm()) > 0:
            rms = torch.stack([r.pow(2).sum() for r in own]).mean().sqrt()
            amplitude[w] = rms / word_motion[w].norm()
    stats.word_gain = amplitude
    if flow_map:
        stats.flow_map, gain = fit_flow_map(model, source, rows, directions)
        stats.info["flow_gain"] = gain
    return stats


def stats_from_data(
    model: FlowModel,
    data_config: Any,
    data_dir: str | Path,
    max_clips: int | None = None,
    n_directions: int = 16,
    flow_map: bool = False,
) -> ControlStats:
    """`compute_stats` over the training split of a prepared corpus (any reader layout or a
    shard folder), read as the model was trained (`data_config`: clip length, frame size)."""
    from factorflow.engine.loader import open_split

    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise FileNotFoundError(f"--data {data_dir} does not exist")
    dataset = open_split(data_dir, "train", data_config, "clips")
    n = len(dataset) if max_clips is None else min(max_clips, len(dataset))
    # An even spread over the split (its clips are sorted by word) when capped.
    picks = torch.linspace(0, len(dataset) - 1, n).round().long().unique().tolist()

    def clips() -> Iterable[tuple[Tensor, int]]:
        for i in picks:
            item = dataset[i]
            yield item["frames"].to(model.device), int(item["word"])

    stats = compute_stats(model, clips, list(dataset.words), n_directions, flow_map=flow_map)
    stats.info.update(model=model.name, data=str(data_dir), split="train")
    return stats


def save_stats(stats: ControlStats, folder: str | Path, replace: bool = False) -> Path:
    """Write `stats.safetensors` and `stats.json` into a new folder (atomically)."""
    folder = Path(folder)
    with atomic_dir(folder, replace=replace) as tmp:
        save_file(
            {
                "directions": stats.directions.contiguous(),
                "sd": stats.sd.contiguous(),
                "word_motion": stats.word_motion.contiguous(),
                "word_clips": stats.word_clips.contiguous(),
                "word_medoid": stats.word_medoid.contiguous(),
                **({} if stats.flow_map is None else {"flow_map": stats.flow_map.contiguous()}),
                **({} if stats.word_gain is None else {"word_gain": stats.word_gain.contiguous()}),
            },
            str(tmp / TENSORS),
        )
        info = {"format": FORMAT, "words": stats.words, **stats.info}
        atomic_write_text(tmp / INFO, json.dumps(info, indent=1) + "\n")
    return folder


def load_stats(folder: str | Path) -> ControlStats:
    folder = Path(folder)
    info_path, tensor_path = folder / INFO, folder / TENSORS
    if not info_path.is_file() or not tensor_path.is_file():
        raise FileNotFoundError(f"--stats {folder}: expected {INFO} and {TENSORS} in it")
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{info_path}: not valid JSON ({exc.msg})") from None
    if info.get("format") != FORMAT:
        raise ValueError(f"{info_path}: format {info.get('format')!r}, expected {FORMAT}")
    tensors = load_file(str(tensor_path))
    words = info.pop("words")
    info.pop("format")
    return ControlStats(
        tensors["directions"],
        tensors["sd"],
        list(words),
        tensors["word_motion"],
        tensors["word_clips"],
        tensors["word_medoid"],
        info,
        tensors.get("flow_map"),
        tensors.get("word_gain"),
    )
