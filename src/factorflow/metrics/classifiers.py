"""Judges trained on the fly from a dataset's real clips, and linear probes.

- `MouthRegressor`: a small CNN per frame on the mouth crop -> the mouth factors (for the synthetic
  data the generator's opening, width, rounding, teeth, smile). Its `opening` output is the
  mouth-opening judge.
- `WordClassifier`: lip reading. A temporal conv over the regressor's per-frame factors, max over
  time -> word logits. Both are trained on real training clips only.
- `LinearProbe` / `ridge_r2`: linear read-outs of a representation (leakage probes).

The crop is the lower-middle box where LRW-style framing puts the mouth (`MOUTH_BOX`), resized to a
fixed `CROP_SIZE`, so the judges see the same region at any frame size. Training is deterministic
for a seed: weights and batches are drawn under `torch.random.fork_rng`, so the caller's global
RNG is left as it was. Everything runs on the CPU in seconds to a minute.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CROP_SIZE",
    "MOUTH_BOX",
    "RIDGE_ALPHAS",
    "FrameEncoder",
    "LinearProbe",
    "MouthRegressor",
    "WordClassifier",
    "all_crops",
    "fit_linear_probe",
    "mouth_crops",
    "pearson",
    "ridge_r2",
    "train_mouth_regressor",
    "train_word_classifier",
]

MOUTH_BOX = (0.42, 0.86, 0.22, 0.78)
"""(top, bottom, left, right) of the mouth crop, fractions of the frame side. On the synthetic
faces the mouth mask spans rows 0.48-0.79 and columns 0.30-0.69 over all poses."""
CROP_SIZE = (24, 32)
_SHIFT = 2  # training jitter of the crop in crop pixels (about the synthetic head-pose range)


def mouth_crops(frames: Tensor) -> Tensor:
    """uint8 [N,3,H,W] -> float [N,3,*CROP_SIZE] in [-0.5, 0.5]: the mouth box, resized."""
    if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(
            f"expected uint8 frames [N,3,H,W], got {frames.dtype} {tuple(frames.shape)}"
        )
    h, w = frames.shape[-2:]
    top, bottom, left, right = MOUTH_BOX
    box = frames[..., round(top * h) : round(bottom * h), round(left * w) : round(right * w)]
    x = box.float() / 255.0 - 0.5
    return F.interpolate(x, size=CROP_SIZE, mode="bilinear", align_corners=False, antialias=True)


def all_crops(frames: Tensor, chunk: int = 1024) -> Tensor:
    """`mouth_crops` of many uint8 frames [N,3,H,W], a chunk at a time to bound memory."""
    return torch.cat([mouth_crops(frames[i : i + chunk]) for i in range(0, len(frames), chunk)])


class FrameEncoder(nn.Module):
    """Mouth crop [N,3,*CROP_SIZE] -> features [N,features]."""

    def __init__(self, features: int = 64) -> None:
        super().__init__()
        ch, cw = CROP_SIZE
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * (ch // 4) * (cw // 4), features),
            nn.ReLU(),
        )

    def forward(self, crops: Tensor) -> Tensor:
        return self.net(crops)


class MouthRegressor(nn.Module):
    """Mouth crops [N,3,*CROP_SIZE] -> mouth factors [N,F] in the labels' own units.

    Trained on standardised targets; `mean`/`std` [F] map back. `predict` takes uint8 frames.
    """

    def __init__(self, mean: Tensor, std: Tensor, features: int = 64) -> None:
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())
        self.frames = FrameEncoder(features)
        self.head = nn.Linear(features, mean.numel())

    def forward(self, crops: Tensor) -> Tensor:
        return self.head(self.frames(crops)) * self.std + self.mean

    @torch.no_grad()
    def predict(self, frames: Tensor, batch_size: int = 256) -> Tensor:
        """uint8 frames [N,3,H,W] -> factors [N,F]."""
        self.eval()
        return torch.cat(
            [
                self(mouth_crops(frames[i : i + batch_size]))
                for i in range(0, len(frames), batch_size)
            ]
        )


class WordClassifier(nn.Module):
    """Lip reading: mouth-factor trajectories [B,T,F] -> word logits [B,n_words].

    A temporal conv over the per-frame factors read by a `MouthRegressor`, max over time. Reading
    the word from the mouth's measured shape, not from raw pixels, keeps it blind to who speaks.
    `predict` takes uint8 clips [B,T,3,H,W] and runs the regressor first.
    """

    def __init__(self, mouth: MouthRegressor, n_words: int, hidden: int = 32) -> None:
        super().__init__()
        self.mouth = mouth.requires_grad_(False)
        f = mouth.mean.numel()
        self.temporal = nn.Sequential(
            nn.Conv1d(f, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(hidden, hidden, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(hidden, n_words)

    def forward(self, trajectories: Tensor) -> Tensor:
        z = (trajectories - self.mouth.mean) / self.mouth.std
        return self.head(self.temporal(z.transpose(1, 2)).amax(2))

    def trajectories(self, clips: Tensor) -> Tensor:
        """uint8 clips [B,T,3,H,W] -> factors [B,T,F]."""
        b, t = clips.shape[:2]
        return self.mouth.predict(clips.flatten(0, 1)).view(b, t, -1)

    @torch.no_grad()
    def predict(self, clips: Tensor) -> Tensor:
        """uint8 clips [B,T,3,H,W] -> predicted word ids [B]."""
        self.eval()
        return self(self.trajectories(clips)).argmax(1)


def _augment(crops: Tensor, gen: torch.Generator) -> Tensor:
    """Jittered copies of crops [N,3,h,w]: a shift of up to `_SHIFT` pixels and a
    brightness/contrast change per crop."""
    shifts = torch.randint(-_SHIFT, _SHIFT + 1, (len(crops), 2), generator=gen)
    moved = torch.stack(
        [
            torch.roll(c, (int(dy), int(dx)), (1, 2))
            for c, (dy, dx) in zip(crops, shifts, strict=True)
        ]
    )
    gain = 1 + 0.2 * (torch.rand(len(crops), 1, 1, 1, generator=gen) - 0.5)
    bias = 0.1 * (torch.rand(len(crops), 1, 1, 1, generator=gen) - 0.5)
    return moved * gain + bias


def train_mouth_regressor(
    frames: Tensor,
    factors: Tensor,
    steps: int = 600,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
) -> MouthRegressor:
    """Fit a `MouthRegressor` on uint8 frames [N,3,H,W] with factors [N,F] (MSE on z-scores)."""
    if len(frames) != len(factors) or len(frames) == 0 or factors.dim() != 2:
        raise ValueError(
            f"need factors [N,F] for N frames, got {tuple(factors.shape)} for {len(frames)} frames"
        )
    factors = factors.float()
    mean, std = factors.mean(0), factors.std(0).clamp(min=1e-6)
    crops = all_crops(frames)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = MouthRegressor(mean, std)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(steps):
            idx = torch.randint(len(frames), (batch_size,), generator=gen)
            pred = model(_augment(crops[idx], gen))
            loss = F.mse_loss((pred - mean) / std, (factors[idx] - mean) / std)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def train_word_classifier(
    mouth: MouthRegressor,
    clips: Tensor,
    words: Tensor,
    n_words: int,
    steps: int = 1500,
    batch_size: int = 64,
    lr: float = 3e-3,
    noise: float = 0.1,
    seed: int = 0,
) -> WordClassifier:
    """Fit a `WordClassifier` on uint8 clips [N,T,3,H,W] with word ids [N].

    The regressor's readings of the training clips are fitted more closely than those of unseen
    clips will be, so Gaussian noise of `noise` (in z-score units) is added while training.
    """
    if len(clips) != len(words) or len(clips) == 0:
        raise ValueError(f"need as many word labels as clips, got {len(words)} for {len(clips)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = WordClassifier(mouth, n_words)
        traj = model.trajectories(clips)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
        model.train()
        for _ in range(steps):
            idx = torch.randint(len(clips), (batch_size,), generator=gen)
            jitter = noise * mouth.std * torch.randn(traj[idx].shape, generator=gen)
            loss = F.cross_entropy(model(traj[idx] + jitter), words[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def pearson(a: Tensor, b: Tensor) -> float:
    """Pearson correlation of two 1-D series (NaN when either is constant)."""
    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    denom = a.norm() * b.norm()
    return float(a @ b / denom) if denom > 0 else float("nan")


class LinearProbe(nn.Module):
    """Multinomial logistic regression on standardised features [N,D] -> logits [N,classes]."""

    def __init__(self, mean: Tensor, std: Tensor, n_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.linear = nn.Linear(mean.numel(), n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear((x - self.mean) / self.std)


def _standardiser(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-feature mean and scale of x [N,D]. The scale is floored at a tenth of the average one:
    a feature that hardly moves in training (a flat background) must not be blown up into a huge
    input on test rows where it moves a little."""
    std = x.std(0, unbiased=False)
    return x.mean(0), std.clamp(min=max(0.1 * float(std.mean()), 1e-12))


def fit_linear_probe(
    x: Tensor,
    y: Tensor,
    n_classes: int,
    steps: int = 300,
    weight_decay: float = 1e-2,
    lr: float = 0.05,
    seed: int = 0,
) -> LinearProbe:
    """Logistic regression of labels y [N] on features x [N,D], full batch, L2 penalty."""
    x = x.float()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = LinearProbe(*_standardiser(x), n_classes)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(probe(x), y) + weight_decay * probe.linear.weight.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return probe.eval()


RIDGE_ALPHAS = tuple(10.0**k for k in range(-2, 6))


class _Ridge:
    """Ridge regressions of y [N] on standardised x [N,D] for any penalty, from one
    eigendecomposition of the N x N Gram matrix (the dual form: cheap for wide features)."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.mean, self.std = _standardiser(x.double())
        self.a = (x.double() - self.mean) / self.std
        self.y0 = y.double().mean()
        eigval, self.eigvec = torch.linalg.eigh(self.a @ self.a.T)
        self.eigval = eigval.clamp(min=0)
        self.uy = self.eigvec.T @ (y.double() - self.y0)

    def predict(self, x: Tensor, alpha: float) -> Tensor:
        coef = self.a.T @ (self.eigvec @ (self.uy / (self.eigval + alpha)))
        return ((x.double() - self.mean) / self.std) @ coef + self.y0


def ridge_r2(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    groups: Tensor | None = None,
    folds: int = 5,
) -> float:
    """Test R^2 of a ridge regression y ~ x on standardised features.

    x [N,D], y [N]. The penalty is chosen from RIDGE_ALPHAS by `folds`-fold cross-validation on
    the training rows, whole `groups` (ids [N], e.g. the clip of each frame) kept in one fold:
    frames of one clip are near copies, and splitting them would reward overfitting. The
    standardisation is refitted in every fold, since it too sees the data. 0 means no better than
    predicting the training mean; it can go below 0.
    """
    y_train = y_train.double()
    groups = torch.arange(len(y_train)) if groups is None else groups
    fold = torch.unique(groups, return_inverse=True)[1] % folds
    errors = torch.zeros(len(RIDGE_ALPHAS), dtype=torch.float64)
    for k in range(folds):
        held = fold == k
        if held.all() or not held.any():
            continue
        ridge = _Ridge(x_train[~held], y_train[~held])
        for i, alpha in enumerate(RIDGE_ALPHAS):
            errors[i] += (ridge.predict(x_train[held], alpha) - y_train[held]).pow(2).sum()
    alpha = RIDGE_ALPHAS[int(errors.argmin())]
    pred = _Ridge(x_train, y_train).predict(x_test, alpha)
    y_test = y_test.double()
    total = (y_test - y_test.mean()).pow(2).sum()
    return float(1 - (y_test - pred).pow(2).sum() / total) if total > 0 else float("nan")
