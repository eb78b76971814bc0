"""Normalizing-flow core: the bijection contract, Glow layers, priors and the Glow model.

Imports nothing from the rest of factorflow.
"""

from factorflow.flows.actnorm import ActNorm
from factorflow.flows.base import Bijection, FlowSequence, zero_logdet
from factorflow.flows.coupling import AdditiveCoupling, AffineCoupling, coupling_net, zero_conv3x3
from factorflow.flows.glow import Glow, GlowConfig, GlowEncoding
from factorflow.flows.invconv import InvConv1x1, InvConv1x1LU
from factorflow.flows.likelihood import bits_per_dim, postprocess, preprocess
from factorflow.flows.prior import GaussianPrior, gaussian_log_prob, gaussian_sample
from factorflow.flows.squeeze import Squeeze, squeeze2x2, unsqueeze2x2

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "Bijection",
    "FlowSequence",
    "GaussianPrior",
    "Glow",
    "GlowConfig",
    "GlowEncoding",
    "InvConv1x1",
    "InvConv1x1LU",
    "Squeeze",
    "bits_per_dim",
    "coupling_net",
    "gaussian_log_prob",
    "gaussian_sample",
    "postprocess",
    "preprocess",
    "squeeze2x2",
    "unsqueeze2x2",
    "zero_conv3x3",
    "zero_logdet",
]
