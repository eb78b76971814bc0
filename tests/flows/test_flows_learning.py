"""A tiny Glow learns a small fixed set of generated images (bits/dim goes clearly down)."""

from __future__ import annotations

import numpy as np
import torch

from factorflow.flows import Glow, GlowConfig, bits_per_dim, preprocess


def _shapes(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``n`` uint8 RGB images [n, 3, size, size]: a filled disc or square of a random colour on a
    flat background of another colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    for i in range(n):
        background, colour = rng.integers(0, 256, size=(2, 3))
        cy, cx = rng.uniform(size * 0.3, size * 0.7, size=2)
        radius = rng.uniform(size * 0.15, size * 0.35)
        if i % 2:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        else:
            mask = (np.abs(yy - cy) <= radius) & (np.abs(xx - cx) <= radius)
        images[i] = np.where(mask[None], colour[:, None, None], background[:, None, None])
    return torch.from_numpy(images)


def test_tiny_glow_learns_generated_shapes() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        config = GlowConfig(image_size=16, levels=2, steps=4, hidden=32, n_bits=5)
        data = _shapes(64, 16)
        glow = Glow(config)
        gen = torch.Generator().manual_seed(0)

        def bpd(batch: torch.Tensor) -> torch.Tensor:
            x = preprocess(batch, config.n_bits, generator=gen)
            return bits_per_dim(glow.log_prob(x), config.num_dims, config.n_bits).mean()

        glow.initialize(preprocess(data, config.n_bits, generator=gen))
        with torch.no_grad():
            initial = bpd(data).item()
        opt = torch.optim.Adam(glow.parameters(), lr=2e-3)
        for step in range(300):
            idx = torch.randperm(64, generator=gen)[:16]
            loss = bpd(data[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            assert torch.isfinite(loss), f"loss became {loss.item()} at step {step}"
        with torch.no_grad():
            final = bpd(data).item()
    finally:
        torch.set_num_threads(threads)
    assert final < 8.0, f"bits/dim {final:.2f} after training"
    assert final < initial - 1.0, f"bits/dim went from {initial:.2f} only to {final:.2f}"
