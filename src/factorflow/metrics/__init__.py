"""How factorflow is judged (EVALUATION.md): image metrics, classifiers trained on the fly,
leakage probes, reenactment baselines and `evaluate`, which puts them in one table.

Submodules import torch only; `evaluate` also loads models and the synthetic dataset, so import
it explicitly: `from factorflow.metrics.evaluate import evaluate`.
"""
