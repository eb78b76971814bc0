"""The four AF losses (METHOD.md section 3) as pure functions returning per-clip terms [B].

Shapes: one level's latents of a batch of clips are [B,T,C,H,W]. Every term is a mean over the
level's elements, so levels of different sizes count alike; callers sum over levels and weight.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = [
    "derangement",
    "random_pair_reconstruction",
    "sequence_classification",
    "source_structure",
    "target_structure",
]


def _mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error per leading index: [B,...] x [B,...] -> [B]."""
    return (a - b).pow(2).flatten(1).mean(1)


def source_structure(s: Tensor, z: Tensor) -> Tensor:
    """s_{t} ~= m, the clip's temporal mean latent (identity is static within a clip)."""
    m = z.mean(1, keepdim=True)
    return _mse(s, m.expand_as(s))


def random_pair_reconstruction(s: Tensor, r: Tensor, z: Tensor, perm: Tensor) -> Tensor:
    """s_{pi(t)} + r_t ~= z_t for a derangement pi of each clip's frames. perm: [B,T] indices."""
    index = perm.view(*perm.shape, 1, 1, 1).expand_as(s)
    return _mse(torch.gather(s, 1, index) + r, z)


def target_structure(
    r: Tensor, s_target: Tensor, z_target: Tensor, encoder: Callable[[Tensor], Tensor]
) -> Tensor:
    """Mix the source's r onto the target's structure; the structure read back must be the target's.

    z~_t = mean_t(s') + r_t;  (z~_t - E(z~_t)) ~= m' = mean_t(z'). The structure branch is penalised
    (the thesis code penalised the relevant branch, which contradicts the other losses).
    r, s_target, z_target: [B,T,C,H,W], the target of row b being another clip.
    """
    mixed = s_target.mean(1, keepdim=True) + r
    flat = mixed.flatten(0, 1)
    structure = (flat - encoder(flat)).view_as(mixed)
    m_target = z_target.mean(1, keepdim=True).expand_as(structure)
    return _mse(structure, m_target)


def sequence_classification(logits: Tensor, words: Tensor) -> Tensor:
    """Cross-entropy of the word predicted from the r sequence. logits [B,W], words [B] -> [B]."""
    return F.cross_entropy(logits, words, reduction="none")


def derangement(n: int, rows: int, rand_fn: Callable[[tuple[int, ...]], Tensor]) -> Tensor:
    """`rows` uniform-ish derangements of range(n): [rows, n], no element mapped to itself.

    A random permutation is turned into a derangement by following it as a single n-cycle of the
    shuffled order (Sattolo-style): order o, pi(o_i) = o_{i+1 mod n}. Every element moves.
    """
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 elements, got {n}")
    order = rand_fn((rows, n)).argsort(1)
    perm = torch.empty_like(order)
    perm.scatter_(1, order, order.roll(-1, dims=1))
    return perm
