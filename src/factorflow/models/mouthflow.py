"""The mouth flow: a conditional Glow on a landmark-aligned lower-face crop.

x is an S x S crop about the mouth (rotated upright, `CROP_SIDE_IOD` inter-ocular distances wide:
at S = 64 and a face 120 px between the eyes that is about 2.4 source pixels per crop pixel); the
condition is identity-free geometry plus the warped appearance:

    cond = (the crop warped by the landmark warp to the wanted mouth shape, its mouth interior
            blanked; the wanted inner-lip mask)

A small conv net turns the condition into per-level features that every coupling net reads.
Reenactment encodes the target's crop under its own geometry (its crop, its inner-lip mask) to
z, then decodes z under the driver's geometry (the warped crop, the new inner-lip mask): z holds
what the geometry does not say (the target's teeth, the shade of its mouth), the condition says
where the mouth is open. Training uses pairs of frames (i, j) of one real clip: maximum
likelihood of x_j under its condition, plus the reconstruction of x_j from z_i decoded under j's
geometry (the frames give the answer; no synthetic factor is used).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from factorflow.flows.glow import Glow, GlowConfig

log = logging.getLogger(__name__)

FORMAT = "factorflow-mouthflow/2"  # state.json "format"; /1 took the colour of the whole crop
INTERIOR = -0.45  # the (normalised) value that fills the new mouth interior of the warped crop
SPREAD = 0.15  # a normalised crop: per-channel mean 0, standard deviation SPREAD


def is_mouthflow(folder: Path) -> bool:
    """Whether `folder` holds a mouth flow (its state.json's format, of any version) rather than
    a run folder of a flow model."""
    try:
        meta = json.loads((Path(folder) / "state.json").read_text())
        return str(meta.get("format", "")).startswith("factorflow-mouthflow/")
    except (OSError, ValueError, AttributeError):
        return False


def crop_stats(own: Tensor, own_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel colour of the target's own face about the mouth and the spread of
    its crop. The mean comes from the crop's central window (rows 1/8-7/8, columns 1/4-3/4)
    without the mouth interior: the crop's edges may be background (a turned head, a coloured
    wall) and the interior comes and goes with the mouth; neither should set the face's colour.
    The spread is the whole crop's, so that a dark mouth interior stays inside the range."""
    size = own.shape[-1]
    window = torch.zeros_like(own_mask)
    window[..., size // 8 : size - size // 8, size // 4 : size - size // 4] = 1
    weight = window * (1 - own_mask)
    mean = (own * weight).sum((2, 3), keepdim=True) / weight.sum((2, 3), keepdim=True).clamp_min(1)
    return mean, own.std((2, 3), keepdim=True).clamp_min(0.02)


def normalise(x: Tensor, stats: tuple[Tensor, Tensor]) -> Tensor:
    """Colour-normalise by the target's own crop: the flow sees every face in one colour range."""
    mean, std = stats
    return ((x - mean) / std * SPREAD).clamp(-0.5, 0.5)


def denormalise(x: Tensor, stats: tuple[Tensor, Tensor]) -> Tensor:
    mean, std = stats
    return (x / SPREAD * std + mean).clamp(-0.5, 0.5)


@dataclass(frozen=True)
class MouthFlowConfig:
    size: int = 64
    levels: int = 3
    steps: int = 4
    hidden: int = 48
    cond_channels: int = 16
    n_bits: int = 5
    rec_weight: float = 20.0  # weight of the cross-frame reconstruction (per-pixel L1, x [-.5,.5])
    mouth_weight: float = 4.0  # extra weight of reconstruction errors inside the new mouth
    temperature: float = 1.0  # how much of the target's own latent deviation a decode keeps


class CondNet(nn.Module):
    """(warped crop [B,3,S,S], mask [B,1,S,S]) -> per-level features [B, C, S/2^(l+1), ...]."""

    def __init__(self, levels: int, channels: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(4, channels, 3, padding=1), nn.ReLU())
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU())
            for _ in range(levels)
        )

    def forward(self, image: Tensor, mask: Tensor) -> list[Tensor]:
        h = self.stem(torch.cat([image, mask - 0.5], 1))
        out = []
        for down in self.down:
            h = down(h)
            out.append(h)
        return out


def blank(image: Tensor, mask: Tensor) -> Tensor:
    """The crop with its (new) mouth interior filled dark: the flow paints it from there."""
    return image * (1 - mask) + INTERIOR * mask


class MouthFlow(nn.Module):
    name = "mouthflow"

    def __init__(self, config: MouthFlowConfig | None = None) -> None:
        super().__init__()
        self.config = config or MouthFlowConfig()
        c = self.config
        self.glow = Glow(
            GlowConfig(
                in_channels=3,
                image_size=c.size,
                levels=c.levels,
                steps=c.steps,
                hidden=c.hidden,
                coupling="additive",
                conv="lu",
                n_bits=c.n_bits,
                cond_channels=c.cond_channels,
                coupling_cond=True,
            )
        )
        self.cond_net = CondNet(c.levels, c.cond_channels)

    @staticmethod
    def to_unit(images: Tensor) -> Tensor:
        return images.float() / 255.0 - 0.5

    def condition(self, warped: Tensor, mask: Tensor) -> list[Tensor]:
        return self.cond_net(blank(warped, mask), mask)

    def losses(self, batch: dict[str, Tensor], generator=None) -> dict[str, Tensor]:
        """batch: own [B,3,S,S] (frame i), own_mask [B,1,S,S], warped (frame i warped to j's
        geometry), new_mask, target (frame j); images in [-0.5, 0.5], masks 0/1."""
        c = self.config
        bins = 2.0**c.n_bits
        stats = crop_stats(batch["own"], batch["own_mask"])
        batch = {
            **batch,
            **{k: normalise(batch[k], stats) for k in ("own", "warped", "target")},
        }
        target = batch["target"]
        quant = torch.floor((target + 0.5) * bins).clamp(0, bins - 1) / bins - 0.5
        noise = torch.rand(target.shape, generator=generator, device=target.device) / bins
        cond_new = self.condition(batch["warped"], batch["new_mask"])
        log_p = self.glow.log_prob(quant + noise, cond_new)
        dims = target[0].numel()
        bpd = (-log_p / dims + np.log(bins)) / np.log(2.0)
        cond_own = self.condition(batch["own"], batch["own_mask"])
        zs = self.glow.encode(batch["own"], cond_own).zs
        decoded, _ = self.glow.inverse(zs, cond_new)
        weight = 1.0 + c.mouth_weight * F.max_pool2d(batch["new_mask"], 5, 1, 2)
        rec = ((decoded - target).abs() * weight).mean((1, 2, 3))
        return {"bpd": bpd, "rec": rec, "loss": bpd + c.rec_weight * rec}

    def standardise(self, x: Tensor, cond: list[Tensor]) -> list[Tensor]:
        """x -> its latents as deviations from the conditional prior, eps_l = (z_l - mu_l) / sigma_l
        (finest first): what of x its condition does not predict."""
        glow = self.glow
        zs, _, kept = glow.encode(x, cond)
        eps = []
        for level in range(len(zs) - 1):
            prior_in = glow._prior_input(level, kept[level], cond)
            mean, logstd = glow.split_priors[level].params(zs[level], prior_in)
            eps.append((zs[level] - mean) * torch.exp(-logstd))
        mean, logstd = glow._top_params(x.shape[0], cond)
        eps.append((zs[-1] - mean) * torch.exp(-logstd))
        return eps

    def compose(self, eps: list[Tensor], cond: list[Tensor], temperature: float) -> Tensor:
        """Deviations `eps` (scaled by `temperature`) around the prior of `cond` -> image."""
        glow = self.glow
        levels = len(eps)
        mean, logstd = glow._top_params(eps[-1].shape[0], cond)
        zs: list[Tensor] = [None] * levels  # type: ignore[list-item]
        zs[-1] = mean + torch.exp(logstd) * temperature * eps[-1]
        h = zs[-1]
        for level in range(levels - 2, -1, -1):
            h, _ = glow.levels[level + 1].inverse(h, glow._level_cond(cond, level + 1))
            prior_in = glow._prior_input(level, h, cond)
            mean, logstd = glow.split_priors[level].params(h, prior_in)
            zs[level] = mean + torch.exp(logstd) * temperature * eps[level]
            h = torch.cat([h, zs[level]], dim=1)
        h, _ = glow.levels[0].inverse(h, glow._level_cond(cond, 0))
        return h

    @torch.no_grad()
    def paint(
        self,
        own: Tensor,
        own_mask: Tensor,
        warped: Tensor,
        new_mask: Tensor,
        temperature: float | None = None,
    ) -> Tensor:
        """Encode under the target's own geometry, decode under the new one -> [B,3,S,S].

        The target's latents are carried as deviations from its conditional prior, scaled by
        `temperature` (default: the config's): 0 decodes the new geometry's prior mode, 1 keeps
        all of the target's own deviation."""
        tau = self.config.temperature if temperature is None else temperature
        stats = crop_stats(own, own_mask)
        own, warped = normalise(own, stats), normalise(warped, stats)
        eps = self.standardise(own, self.condition(own, own_mask))
        out = self.compose(eps, self.condition(warped, new_mask), tau)
        return denormalise(out.clamp(-0.5, 0.5), stats)

    def painter(self):
        """A `mouthrender.Painter` over uint8 crop batches. The encoding of a crop seen before
        (a still target: every frame) is reused, so only the decode runs per frame."""
        cache: dict[bytes, list[Tensor]] = {}

        @torch.inference_mode()
        def run(own, own_mask, warped, new_mask):
            img = lambda a: self.to_unit(torch.from_numpy(a).permute(0, 3, 1, 2))  # noqa: E731
            msk = lambda a: torch.from_numpy(a).float()[:, None]  # noqa: E731
            keys = [own[i].tobytes() + own_mask[i].tobytes() for i in range(len(own))]
            todo = [i for i, k in enumerate(keys) if k not in cache]
            if todo:
                x = img(own[todo])
                stats = crop_stats(x, msk(own_mask[todo]))
                x = normalise(x, stats)
                eps = self.standardise(x, self.condition(x, msk(own_mask[todo])))
                if len(cache) > 256:
                    cache.clear()
                for n, i in enumerate(todo):
                    cache[keys[i]] = ([e[n : n + 1] for e in eps], [s[n : n + 1] for s in stats])
            eps = [
                torch.cat([cache[k][0][lv] for k in keys]) for lv in range(len(self.glow.levels))
            ]
            stats = tuple(torch.cat([cache[k][1][i] for k in keys]) for i in range(2))
            cond = self.condition(normalise(img(warped), stats), msk(new_mask))
            out = denormalise(
                self.compose(eps, cond, self.config.temperature).clamp(-0.5, 0.5), stats
            )
            out = ((out + 0.5) * 255).round().byte()
            return out.permute(0, 2, 3, 1).numpy()

        return run

    def save(self, folder: Path, extra: dict | None = None) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))
        meta = {"format": FORMAT, "config": asdict(self.config), **(extra or {})}
        (folder / "state.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: Path, temperature: float | None = None) -> MouthFlow:
        """The saved flow; `temperature` replaces the saved decode temperature (use time)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        meta_path, weights = folder / "state.json", folder / "model.safetensors"
        for path in (meta_path, weights):
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: not a mouth-flow checkpoint")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") == "factorflow-mouthflow/1":
            raise ValueError(
                f"{meta_path}: a mouth flow of an older format (colour statistics of the whole "
                "crop): retrain it with `factorflow train --model mouthflow`"
            )
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path}: not a mouth-flow checkpoint ({meta.get('format')})")
        config = MouthFlowConfig(**meta["config"])
        if temperature is not None:
            if not 0 <= temperature <= 2:
                raise ValueError(f"mouth-flow temperature {temperature}: expected 0 to 2")
            config = replace(config, temperature=float(temperature))
        model = cls(config)
        model.load_state_dict(load_file(str(weights)))
        model.eval()
        return model


def augment(batch: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
    """The same random flip, colour change, scale and small rotation for every image of a pair."""
    images = ("own", "warped", "target")
    masks = ("own_mask", "new_mask")
    b = batch["own"].shape[0]
    u = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    flip = u(b) < 0.5
    angle = (u(b) - 0.5) * 2 * np.deg2rad(8)
    scale = 1 + (u(b) - 0.5) * 0.2
    shift = (u(b, 2) - 0.5) * 0.08
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    sign = torch.where(flip, -1.0, 1.0)
    theta = torch.stack(
        [
            torch.stack([cos * sign, -sin, shift[:, 0]], 1),
            torch.stack([sin * sign, cos, shift[:, 1]], 1),
        ],
        1,
    )
    size = batch["own"].shape
    grid = F.affine_grid(theta, list(size), align_corners=False)
    gain = 1 + (u(b, 3, 1, 1) - 0.5) * 0.3
    bias = (u(b, 3, 1, 1) - 0.5) * 0.1
    out = {}
    for k in images:
        moved = F.grid_sample(batch[k] + 0.5, grid, padding_mode="border", align_corners=False)
        out[k] = ((moved * gain + bias).clamp(0, 1)) - 0.5
    for k in masks:
        out[k] = (F.grid_sample(batch[k], grid, align_corners=False) > 0.5).float()
    return out


def pair_tensors(pairs: dict[str, np.ndarray]) -> dict[str, Tensor]:
    """uint8 pair arrays (images [N,S,S,3], masks [N,S,S]) -> channel-first tensors."""
    return {
        k: torch.from_numpy(v).permute(0, 3, 1, 2).contiguous()
        if v.ndim == 4
        else torch.from_numpy(v)[:, None].contiguous()
        for k, v in pairs.items()
    }


def fit(
    model: MouthFlow,
    tensors: dict[str, Tensor],
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    progress: bool = False,
    warmup: int = 100,
) -> list[dict]:
    """Adam on random augmented batches of pairs, warm-up then a 10x decay; the loss history."""
    n = len(tensors["own"])
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    steps_iter = range(steps)
    if progress:
        from tqdm import tqdm

        steps_iter = tqdm(steps_iter, desc="mouth flow", unit="step")
    for step in steps_iter:
        idx = torch.randint(n, (batch_size,), generator=generator)
        batch = {
            k: (model.to_unit(v[idx]) if v.shape[1] == 3 else v[idx].float())
            for k, v in tensors.items()
        }
        batch = augment(batch, generator)
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup) * (0.1 ** (step / steps))
        terms = model.losses(batch, generator)
        loss = terms["loss"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 50.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            row = {"step": step, **{k: float(v.detach().mean()) for k, v in terms.items()}}
            history.append(row)
            log.info("step %d bpd %.3f rec %.4f", step, row["bpd"], row["rec"])
    model.eval()
    return history


def train_mouthflow(
    data: Path,
    out: Path,
    steps: int = 2000,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    config: MouthFlowConfig | None = None,
    progress: bool = False,
) -> dict:
    """Train the mouth flow on pairs from a `prepare` folder; save safetensors + JSON in `out`."""
    import time

    from factorflow.reenact.mouthdata import build_pairs

    config = config or MouthFlowConfig()
    torch.manual_seed(seed)
    start = time.time()
    pairs = build_pairs(Path(data), config.size, seed=seed)
    log.info(
        "mouth flow: %d training pairs from %s (%.0f s)",
        len(pairs["own"]),
        data,
        time.time() - start,
    )
    model = MouthFlow(config)
    gen = torch.Generator().manual_seed(seed)
    history = fit(model, pair_tensors(pairs), steps, batch_size, lr, gen, progress)
    summary = {
        "data": str(data),
        "pairs": len(pairs["own"]),
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "seconds": round(time.time() - start, 1),
        "final": history[-1],
    }
    model.save(Path(out), {"training": summary})
    (Path(out) / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    return summary


def adapt(
    model: MouthFlow,
    pairs: dict[str, np.ndarray],
    steps: int,
    batch_size: int = 8,
    lr: float = 2e-4,
    seed: int = 0,
) -> list[dict]:
    """Fine-tune `model` in place on pairs of the target's own frames (`--adapt-steps`): a short
    run at a fifth of the training rate, so the flow learns this face's teeth and mouth shading
    without forgetting the rest."""
    gen = torch.Generator().manual_seed(seed)
    return fit(model, pair_tensors(pairs), steps, batch_size, lr, gen, warmup=max(1, steps // 10))
