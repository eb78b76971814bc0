import torch

from factorflow.metrics.classifiers import (
    MOUTH_BOX,
    fit_linear_probe,
    mouth_crops,
    pearson,
    ridge_r2,
    train_mouth_regressor,
    train_word_classifier,
)

SIZE, T = 16, 8
# Three "words": mouth opening over 8 frames (rising, falling, open-close-open).
WORDS = torch.tensor(
    [
        [0.0, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8],
        [0.8, 0.7, 0.6, 0.5, 0.3, 0.2, 0.1, 0.0],
        [0.8, 0.8, 0.0, 0.0, 0.0, 0.0, 0.8, 0.8],
    ]
)


def _clips(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 clips [n,T,3,16,16]: a random flat 'face' colour per clip with a dark mouth bar whose
    height grows with the opening; word ids [n]; openings [n,T]."""
    g = torch.Generator().manual_seed(seed)
    words = torch.randint(0, 3, (n,), generator=g)
    opening = (WORDS[words] + 0.03 * torch.randn(n, T, generator=g)).clamp(0, 0.8)
    colour = torch.randint(120, 230, (n, 1, 3, 1, 1), generator=g)
    clips = colour.expand(n, T, 3, SIZE, SIZE).clone()
    top, bottom = round(MOUTH_BOX[0] * SIZE) + 1, round(MOUTH_BOX[1] * SIZE) - 1
    centre = (top + bottom) / 2
    for i in range(n):
        for t in range(T):
            half = 0.5 + opening[i, t].item() * (bottom - top) / 2
            rows = torch.arange(SIZE).float() + 0.5
            cover = ((half - (rows - centre).abs()).clamp(0, 1))[:, None]  # anti-aliased bar
            clips[i, t, :, :, 6:10] = (
                (clips[i, t, :, :, 6:10] * (1 - cover) + 30 * cover).round().to(torch.uint8)
            )
    return clips.to(torch.uint8), words, opening


def test_mouth_crops_take_the_lower_middle_box():
    frames = torch.zeros(1, 3, 64, 64, dtype=torch.uint8)
    frames[..., 40, 32] = 255  # inside the mouth box
    frames[..., 5, 5] = 255  # outside it
    crops = mouth_crops(frames)
    assert crops.shape == (1, 3, 24, 32)
    assert crops.max() > -0.5  # the mouth pixel is seen
    frames[..., 40, 32] = 0
    assert torch.allclose(mouth_crops(frames), torch.full_like(crops, -0.5))  # the other is not


def test_judges_learn_a_separable_task_on_unseen_clips():
    train, train_words, train_open = _clips(48, seed=0)
    test, test_words, test_open = _clips(24, seed=1)
    factors = train_open.flatten()[:, None]
    mouth = train_mouth_regressor(train.flatten(0, 1), factors, steps=150, seed=0)
    measured = mouth.predict(test.flatten(0, 1))[:, 0]
    assert pearson(measured, test_open.flatten()) > 0.9
    clf = train_word_classifier(mouth, train, train_words, 3, steps=200, seed=0)
    assert (clf.predict(test) == test_words).float().mean() > 0.9
    # deterministic for a seed, and the caller's RNG is left alone
    state = torch.get_rng_state()
    again = train_mouth_regressor(train.flatten(0, 1), factors, steps=150, seed=0)
    assert torch.equal(again.predict(test[:2].flatten(0, 1)), mouth.predict(test[:2].flatten(0, 1)))
    assert torch.equal(torch.get_rng_state(), state)


def test_linear_probe_and_ridge_read_what_is_there_and_not_more():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (400,), generator=g)
    centres = 3 * torch.randn(4, 20, generator=g)
    x = centres[labels] + torch.randn(400, 20, generator=g)
    probe = fit_linear_probe(x[:200], labels[:200], 4)
    assert (probe(x[200:]).argmax(1) == labels[200:]).float().mean() > 0.95
    noise = torch.randn(400, 20, generator=g)
    probe = fit_linear_probe(noise[:200], labels[:200], 4)
    assert (probe(noise[200:]).argmax(1) == labels[200:]).float().mean() < 0.45

    w = torch.randn(20, generator=g)
    y = x @ w + 0.1 * torch.randn(400, generator=g)
    assert ridge_r2(x[:200], y[:200], x[200:], y[200:]) > 0.95
    unrelated = torch.randn(400, generator=g)
    assert ridge_r2(x[:200], unrelated[:200], x[200:], unrelated[200:]) < 0.1


def test_pearson():
    a = torch.arange(10.0)
    assert abs(pearson(a, 2 * a + 1) - 1) < 1e-12
    assert abs(pearson(a, -a) + 1) < 1e-12
    assert pearson(a, torch.ones(10)) != pearson(a, torch.ones(10))  # NaN for a constant
