import math

import numpy as np
import pytest
import torch

from factorflow.metrics.image import psnr, region_scores, ssim, ssim_map


def _frames(seed: int, n: int = 2, size: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def _reference_ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Wang et al. SSIM, written out pixel by pixel: [3,H,W] uint8 x2 -> [H,W]."""
    r, sigma = 5, 1.5
    k = np.arange(-r, r + 1)
    g1 = np.exp(-(k**2) / (2 * sigma**2))
    win = np.outer(g1, g1) / np.outer(g1, g1).sum()
    c1, c2 = 0.01**2, 0.03**2
    out = np.zeros(a.shape[1:])
    for ch in range(3):
        x = np.pad(a[ch] / 255.0, r, mode="symmetric")
        y = np.pad(b[ch] / 255.0, r, mode="symmetric")
        for i in range(a.shape[1]):
            for j in range(a.shape[2]):
                px, py = (
                    x[i : i + 2 * r + 1, j : j + 2 * r + 1],
                    y[i : i + 2 * r + 1, j : j + 2 * r + 1],
                )
                mx, my = (win * px).sum(), (win * py).sum()
                vx = (win * (px - mx) ** 2).sum()
                vy = (win * (py - my) ** 2).sum()
                cxy = (win * (px - mx) * (py - my)).sum()
                out[i, j] += (
                    ((2 * mx * my + c1) * (2 * cxy + c2))
                    / ((mx**2 + my**2 + c1) * (vx + vy + c2))
                    / 3
                )
    return out


def test_identical_frames_give_inf_psnr_and_unit_ssim():
    a = _frames(0)
    assert torch.isinf(psnr(a, a)).all()
    assert torch.allclose(ssim(a, a), torch.ones(2, dtype=torch.float64))


def test_psnr_of_known_noise():
    a = torch.full((1, 3, 16, 16), 128, dtype=torch.uint8)
    sign = torch.where(torch.arange(16 * 16).reshape(16, 16) % 2 == 0, 10, -10)
    b = (a.int() + sign).to(torch.uint8)
    assert psnr(a, b).item() == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)


def test_masked_psnr_counts_only_mask_pixels():
    a = torch.full((1, 3, 16, 16), 100, dtype=torch.uint8)
    b = a.clone()
    b[..., 4:8, 4:8] = 110  # error of 10 levels on a 4x4 block only
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[4:8, 4:8] = True
    assert psnr(a, b, mask).item() == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)
    assert torch.isinf(psnr(a, b, ~mask)).all()
    # The full-frame MSE is diluted by the 240 exact pixels: 10 log10(256/16) dB higher.
    assert psnr(a, b).item() == pytest.approx(20 * math.log10(255 / 10) + 10 * math.log10(16))


def test_ssim_of_constant_frames_is_the_luminance_term():
    a = torch.full((1, 3, 16, 16), 200, dtype=torch.uint8)
    b = torch.full((1, 3, 16, 16), 50, dtype=torch.uint8)
    x, y, c1 = 200 / 255, 50 / 255, 0.01**2
    expected = (2 * x * y + c1) / (x * x + y * y + c1)
    assert ssim(a, b).item() == pytest.approx(expected, abs=1e-12)


def test_ssim_map_matches_pixelwise_reference():
    a, b = _frames(1, n=1), _frames(2, n=1)
    b = ((a.int() * 3 + b.int()) // 4).to(torch.uint8)  # correlated, so the map is not ~0
    ours = ssim_map(a, b)[0].numpy()
    ref = _reference_ssim_map(a[0].numpy().astype(np.float64), b[0].numpy().astype(np.float64))
    np.testing.assert_allclose(ours, ref, atol=1e-10)
    assert ours.min() < 0.9  # a non-trivial case


def test_ssim_map_matches_scikit_image_when_installed():
    metrics = pytest.importorskip("skimage.metrics")
    a, b = _frames(3, n=1), _frames(4, n=1)
    _, full = metrics.structural_similarity(
        a[0].permute(1, 2, 0).numpy(),
        b[0].permute(1, 2, 0).numpy(),
        channel_axis=2,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        full=True,
    )
    np.testing.assert_allclose(ssim_map(a, b)[0].numpy(), full.mean(2), atol=1e-8)


def test_region_scores_split_inside_and_outside():
    a = _frames(5)
    b = a.clone()
    b[:, :, 6:10, 6:10] = 255 - b[:, :, 6:10, 6:10]
    mask = torch.zeros(2, 16, 16, dtype=torch.bool)
    mask[:, 6:10, 6:10] = True
    scores = region_scores(b, a, mask)
    assert set(scores) == {"psnr", "psnr_mask", "psnr_outside", "ssim", "ssim_mask", "ssim_outside"}
    assert torch.isinf(scores["psnr_outside"]).all()
    assert (scores["psnr_mask"] < 15).all()
    assert (scores["ssim_mask"] < scores["ssim_outside"]).all()
    assert torch.equal(scores["psnr_mask"], psnr(b, a, mask))


def test_empty_mask_gives_nan_and_bad_input_is_named():
    a = _frames(6)
    assert torch.isnan(psnr(a, a, torch.zeros(16, 16, dtype=torch.bool))).all()
    with pytest.raises(ValueError, match="uint8"):
        psnr(a.float(), a)
    with pytest.raises(ValueError, match="mask has shape"):
        ssim(a, a, torch.ones(8, 8))


def test_ssim_agrees_with_torchmetrics_on_synth_frames(tmp_path):
    """The library check of benchmarks/ssim_compare.py: same map and scores to 1e-4 (it agrees to
    1e-12; factorflow's separable filter stays because it is ~6x faster there)."""
    tm = pytest.importorskip("torchmetrics.functional.image")
    from factorflow.data.dataset import ClipDataset
    from factorflow.data.readers import open_reader
    from factorflow.data.synth.generate import generate

    generate(tmp_path / "synth", size=32, frames=4, speakers=3, words=1)
    clips = ClipDataset(open_reader(tmp_path / "synth"), frames=4)
    video = torch.stack([clips[i]["frames"] for i in range(len(clips))])
    a, b = video[:, :-1].flatten(0, 1), video[:, 1:].flatten(0, 1)
    score, full = tm.structural_similarity_index_measure(
        a.double() / 255,
        b.double() / 255,
        gaussian_kernel=True,
        sigma=1.5,
        kernel_size=11,
        data_range=1.0,
        reduction="none",
        return_full_image=True,
    )
    np.testing.assert_allclose(ssim(a, b).numpy(), score.numpy(), atol=1e-4)
    np.testing.assert_allclose(ssim_map(a, b).numpy(), full.mean(1).numpy(), atol=1e-4)
    assert float(ssim(a, b).min()) < 0.999  # frames that differ
