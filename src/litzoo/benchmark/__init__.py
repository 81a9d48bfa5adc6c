"""Inference benchmark: ``python -m litzoo.benchmark model=<name> [task=...] [trainer=gpu] [batch_size=8]``.

The model is composed and built exactly as ``train.py`` would build it (the same Hydra config
tree, the same validation, the same datamodule for a real input batch), then timed at a fixed
batch and input size with each backend: PyTorch eager, ``torch.compile`` and ONNX Runtime (the
task's forward exported with plain ``torch.onnx.export``). Each backend runs in a fresh
process by default, so its peak memory is its own and a backend that crashes cannot take the
others with it. One row per backend is appended to a CSV in the style of timm's benchmark files
(:mod:`litzoo.benchmark.results`); ``python -m litzoo.report --benchmark-csv`` draws them.

Nothing heavy is imported on the way to ``--help`` or to a config error.
"""
