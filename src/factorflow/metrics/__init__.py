"""How factorflow is judged (EVALUATION.md): image metrics, classifiers trained on the fly,
leakage probes, reenactment baselines and `evaluate`, which puts them in one table.

`evaluate` is a list of steps, one module each: `clips` (splits and pairs), `judges` (judges and
ground truth), `methods` (model and baselines on every pair), `scoring`, `likelihood`, `sheet`
and `report`. Submodules import torch only; `evaluate` also loads models and the synthetic
dataset, so import it explicitly: `from factorflow.metrics.evaluate import evaluate`.
"""
