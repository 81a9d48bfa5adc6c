"""Deploy a run's model outside Python: ``python -m litzoo.export <run_dir> --format onnx [--int8]``.

A run directory is a model; this package writes it as an ONNX graph, a TorchScript module or a
``torch.export`` program, with the preprocessing it needs (inside the graph where it can be:
image normalisation; beside it otherwise: ``preprocessing.json``, the tokenizer files), and proves
the export right before calling it done: a parity check against PyTorch eager on the run's own
val split, failing with a non-zero exit (never a warning) and the offending inputs saved. With
``--int8`` it also writes an int8 ONNX model (dynamic for transformers and LSTMs, calibrated
static for CNNs) and measures fp32 vs int8 latency and test accuracy side by side.

What a task exports is its business (``TaskModule.export_spec``, :class:`litzoo.tasks.base.ExportSpec`);
this package only writes, checks, quantizes and records. Nothing here is imported by the platform.
See docs/export.md.
"""

# The formats `--format` takes (here, not in formats.py, so that the command line refuses without torch).
FORMATS = ("onnx", "torchscript", "exported-program")
