from pathlib import Path

import pytest
import torch

from factorflow.config import load_config
from factorflow.data.synth import MOUTH_FACTORS, SynthMeta, generate
from factorflow.flows.likelihood import dequantize
from factorflow.metrics.baselines import (
    CopyTarget,
    GlowAttribute,
    GlowResidual,
    PixelPaste,
)
from factorflow.metrics.clips import load_clips
from factorflow.models import build_model
from factorflow.models.glow import GlowModel


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "data"
    generate(root, size=16, frames=6, speakers=5, words=2, clips_per_pair=2, seed=3)
    return root


@pytest.fixture(scope="module")
def glow(tiny: Path) -> GlowModel:
    torch.manual_seed(0)
    config = load_config("tiny")
    model = build_model(config)
    frames = load_clips(SynthMeta.load(tiny), "train").frames.flatten(0, 1)[:32]
    model.flow.initialize(dequantize(frames, config.flow.n_bits, None))
    return model.eval()


def test_copy_target_pairs_driver_frames_with_target_frames():
    driver = torch.zeros(5, 3, 4, 4, dtype=torch.uint8)
    target = torch.arange(3, dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 3, 4, 4)
    out = CopyTarget().reenact(driver, target)
    assert out.shape == driver.shape
    assert out[:, 0, 0, 0].tolist() == [0, 1, 2, 2, 2]


def test_pixel_paste_of_a_clip_onto_itself_is_exact(tiny: Path):
    clips = load_clips(SynthMeta.load(tiny), "test")
    frames, masks = clips.frames[0], clips.masks[0]
    out = PixelPaste().reenact(frames, frames, driver_masks=masks, target_masks=masks)
    assert torch.equal(out, frames)


def test_pixel_paste_changes_the_mouth_and_keeps_the_rest(tiny: Path):
    clips = load_clips(SynthMeta.load(tiny), "test")
    speakers = [c.speaker for c in clips.clips]
    d = next(i for i, s in enumerate(speakers) if s != speakers[0])
    out = PixelPaste(grow=1).reenact(
        clips.frames[d], clips.frames[0], driver_masks=clips.masks[d], target_masks=clips.masks[0]
    )
    target = clips.frames[0]
    grown = torch.nn.functional.max_pool2d(clips.masks[0].float()[:, None], 9, 1, 4)[:, 0] > 0
    far = ~grown  # well away from the target's mouth: only the driver mouth's reach remains
    assert torch.equal(out.permute(0, 2, 3, 1)[far], target.permute(0, 2, 3, 1)[far])
    inside = clips.masks[0]
    assert not torch.equal(out.permute(0, 2, 3, 1)[inside], target.permute(0, 2, 3, 1)[inside])


def test_glow_attribute_leaves_a_frame_driven_by_itself_alone(tiny: Path, glow: GlowModel):
    clips = load_clips(SynthMeta.load(tiny), "train")
    factors = clips.mouth.clone()
    factors[..., 1] = 0.0  # a factor that never varies gets no direction
    attr = GlowAttribute.fit(glow, clips.frames[:8], factors[:8], list(MOUTH_FACTORS))
    assert "width" not in attr.factor_names and "opening" in attr.factor_names
    dims = sum(torch.Size(s).numel() for s in glow.flow.latent_shapes)
    assert attr.directions.shape == (len(attr.factor_names), dims)
    target = clips.frames[0]
    assert torch.equal(attr.reenact(target, target), glow.decode(glow.encode(target)))
    driven = attr.reenact(clips.frames[1], target)
    assert driven.shape == target.shape and not torch.equal(
        driven, glow.decode(glow.encode(target))
    )


def test_glow_residual_moves_the_target_by_the_drivers_latent_change() -> None:
    glow = build_model(load_config("tiny", ["model=glow"])).eval()
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 256, (3, 3, 16, 16), generator=gen, dtype=torch.uint8)
    driver = torch.randint(0, 256, (5, 3, 16, 16), generator=gen, dtype=torch.uint8)
    out = GlowResidual(glow).reenact(driver, target)
    zd, zt = glow.encode(driver), glow.encode(target)
    expected = [
        t.mean(0, keepdim=True) + d - d.mean(0, keepdim=True) for d, t in zip(zd, zt, strict=True)
    ]
    assert torch.equal(out, glow.decode(expected))
    # a still driver adds nothing: every frame is the decoded clip-mean latent of the target
    still = GlowResidual(glow).reenact(driver[:1].expand(4, -1, -1, -1), target)
    mean = glow.decode([t.mean(0, keepdim=True) for t in zt])
    assert torch.equal(still, mean.expand(4, -1, -1, -1))
