"""PSNR and SSIM between frames: over the whole frame, inside a mask, or outside it.

Frames are uint8 tensors [N,3,H,W] compared in [0,1] (data range 1). Masks are [N,H,W] or [H,W]
(bool or 0/1). Every function returns one value per frame, shape [N]; the caller aggregates.

SSIM follows Wang et al. (2004) as scikit-image computes it with `gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1`: an 11x11 Gaussian window (sigma 1.5),
K1=0.01, K2=0.03, local statistics at every pixel with symmetric padding at the border
(scipy.ndimage's "reflect"), the map averaged over the three RGB channels. One difference: the
frame score is the mean of the whole map, where scikit-image drops a 5-pixel border; that keeps
the full-frame, inside-mask and outside-mask scores means of one and the same map. torchmetrics'
SSIM gives this same map (to 1e-12) at about 6x the time, and pytorch-msssim has no map at the
border (benchmarks/ssim_compare.py), so the separable filter here stays.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "SSIM_SIGMA",
    "SSIM_WINDOW",
    "psnr",
    "psnr_from_error",
    "region_scores",
    "squared_error",
    "ssim",
    "ssim_map",
]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_C1 = 0.01**2
_C2 = 0.03**2


def _unit(frames: Tensor, name: str) -> Tensor:
    if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(
            f"{name}: expected uint8 frames [N,3,H,W], got {frames.dtype} {tuple(frames.shape)}"
        )
    return frames.double() / 255.0


def _pair(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    x, y = _unit(a, "first frames"), _unit(b, "second frames")
    if x.shape != y.shape:
        raise ValueError(f"frames differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    return x, y


def _mask(mask: Tensor | None, shape: torch.Size) -> Tensor:
    """[N,H,W] or [H,W] -> bool [N,H,W]; None -> all pixels."""
    n, _, h, w = shape
    if mask is None:
        return torch.ones(n, h, w, dtype=torch.bool)
    m = torch.as_tensor(mask).bool()
    if tuple(m.shape) == (h, w):
        m = m.expand(n, h, w)
    if tuple(m.shape) != (n, h, w):
        raise ValueError(f"mask has shape {tuple(m.shape)}, expected [{n},{h},{w}] or [{h},{w}]")
    return m.cpu()


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """values [N,H,W], mask bool [N,H,W] -> [N]; NaN where the mask is empty."""
    count = mask.sum((1, 2)).double()
    total = (values * mask).sum((1, 2))
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, math.nan))


def squared_error(a: Tensor, b: Tensor) -> Tensor:
    """uint8 [N,3,H,W] x2 -> per-pixel squared error in [0,1] units, averaged over RGB: [N,H,W]."""
    x, y = _pair(a, b)
    return (x - y).pow(2).mean(1)


def psnr_from_error(error: Tensor, mask: Tensor | None = None) -> Tensor:
    """Per-pixel squared error [N,H,W] -> PSNR in dB [N] over the mask's pixels.

    inf where the frames agree exactly on the mask, NaN where the mask is empty.
    """
    mse = _masked_mean(error, _mask(mask, (error.shape[0], 3, *error.shape[1:])))
    return 10 * torch.log10(1.0 / mse)


def psnr(a: Tensor, b: Tensor, mask: Tensor | None = None) -> Tensor:
    """PSNR in dB [N] of uint8 [N,3,H,W] frames; with `mask`, the MSE is over mask pixels only."""
    return psnr_from_error(squared_error(a, b), mask)


def _gaussian_window() -> Tensor:
    r = SSIM_WINDOW // 2
    g = torch.exp(-(torch.arange(-r, r + 1, dtype=torch.float64) ** 2) / (2 * SSIM_SIGMA**2))
    return g / g.sum()


def _blur(x: Tensor) -> Tensor:
    """Separable Gaussian filter of [B,H,W] with symmetric (half-sample) padding, same size."""
    r = SSIM_WINDOW // 2
    h, w = x.shape[-2:]
    if min(h, w) <= r:
        raise ValueError(f"SSIM needs frames larger than {r} pixels on each side, got {h}x{w}")
    rows = torch.cat(
        [torch.arange(r - 1, -1, -1), torch.arange(h), torch.arange(h - 1, h - 1 - r, -1)]
    )
    cols = torch.cat(
        [torch.arange(r - 1, -1, -1), torch.arange(w), torch.arange(w - 1, w - 1 - r, -1)]
    )
    padded = x[:, rows][:, :, cols].unsqueeze(1)
    g = _gaussian_window().to(x.dtype)
    out = F.conv2d(padded, g.view(1, 1, -1, 1))
    return F.conv2d(out, g.view(1, 1, 1, -1)).squeeze(1)


def ssim_map(a: Tensor, b: Tensor) -> Tensor:
    """Local SSIM of uint8 [N,3,H,W] frames, averaged over RGB: float64 [N,H,W] (1 = identical)."""
    x, y = _pair(a, b)
    n, c, h, w = x.shape
    x, y = x.reshape(n * c, h, w), y.reshape(n * c, h, w)
    mx, my = _blur(x), _blur(y)
    vx = _blur(x * x) - mx * mx
    vy = _blur(y * y) - my * my
    cxy = _blur(x * y) - mx * my
    s = ((2 * mx * my + _C1) * (2 * cxy + _C2)) / ((mx * mx + my * my + _C1) * (vx + vy + _C2))
    return s.reshape(n, c, h, w).mean(1)


def ssim(a: Tensor, b: Tensor, mask: Tensor | None = None) -> Tensor:
    """SSIM [N] of uint8 [N,3,H,W] frames: the SSIM map's mean over the mask (or all pixels)."""
    return _masked_mean(ssim_map(a, b), _mask(mask, a.shape))


def region_scores(output: Tensor, truth: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """PSNR and SSIM [N] of uint8 [N,3,H,W] frames over the frame, inside `mask` and outside it.

    Keys: psnr, psnr_mask, psnr_outside, ssim, ssim_mask, ssim_outside.
    """
    inside = _mask(mask, output.shape)
    error = squared_error(output, truth)
    smap = ssim_map(output, truth)
    return {
        "psnr": psnr_from_error(error),
        "psnr_mask": psnr_from_error(error, inside),
        "psnr_outside": psnr_from_error(error, ~inside),
        "ssim": smap.mean((1, 2)),
        "ssim_mask": _masked_mean(smap, inside),
        "ssim_outside": _masked_mean(smap, ~inside),
    }
