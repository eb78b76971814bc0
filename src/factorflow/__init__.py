"""factorflow: flow-based disentanglement for mouth reenactment."""

__version__ = "0.1.0"
