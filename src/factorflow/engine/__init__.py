"""Run infrastructure: training loop, checkpoints, distributed helpers, logs. No model math."""
