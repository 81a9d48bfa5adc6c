"""Write a task's export module in one format, and load it back as a runner for the parity check.

- ``onnx``: ``torch.onnx.export`` with the TorchScript-based exporter (``dynamo=False``, opset 17)
  by default: it is the path torchvision tests its R-CNN export on (dynamic image size, images
  with no detections) and it takes ``dynamic_axes`` as they are. ``--onnx-exporter dynamo`` uses
  the ``torch.export``-based one instead. The runner is an onnxruntime CPU session.
- ``torchscript``: ``torch.jit.trace`` (``torch.jit.script`` where the spec says the model has
  Python control flow: torchvision's detectors); the runner is ``torch.jit.load``.
- ``exported-program``: ``torch.export.export`` with the dynamic axes as ``Dim.AUTO`` (torch infers their
  valid ranges; an axis it must fix fails the parity check on other sizes), saved with
  ``torch.export.save`` (``.pt2``); the runner is ``torch.export.load(...).module()``.

Every runner takes a tuple of tensors and returns a list of numpy arrays, one per output name.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

FILE_NAMES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt", "exported-program": "model.pt2"}
ONNX_OPSET = 17

Runner = Callable[[Sequence[torch.Tensor]], list[np.ndarray]]


def as_arrays(outputs: Any) -> list[np.ndarray]:
    """A module's outputs (a tensor, or a tuple/list of them) as numpy arrays."""
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    return [o.detach().cpu().numpy() for o in outputs]


def eager_runner(module: torch.nn.Module) -> Runner:
    def run(inputs: Sequence[torch.Tensor]) -> list[np.ndarray]:
        with torch.no_grad():
            return as_arrays(module(*inputs))

    return run


def write(
    fmt: str, spec: Any, example: Sequence[torch.Tensor], folder: Path, onnx_exporter: str = "torchscript"
) -> tuple[Path, dict[str, Any]]:
    """Write `spec.module` in `fmt` into `folder`; returns the file and how it was made."""
    path = folder / FILE_NAMES[fmt]
    module = spec.module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter; the parity check is the judge
        if fmt == "onnx":
            how = write_onnx(module, spec, example, path, onnx_exporter)
        elif fmt == "torchscript":
            if spec.torchscript == "script":
                scripted = torch.jit.script(module)
            else:
                scripted = torch.jit.trace(module, tuple(example), check_trace=False)
            scripted.save(str(path))
            how = {"method": f"torch.jit.{spec.torchscript}"}
        else:
            dims = tuple(
                {axis: torch.export.Dim.AUTO for axis in spec.dynamic_axes.get(name, {})} or None
                for name in spec.input_names
            )
            program = torch.export.export(module, tuple(example), dynamic_shapes=dims, strict=False)
            torch.export.save(program, str(path))
            how = {"method": "torch.export.export (non-strict)"}
    return path, how


def write_onnx(
    module: torch.nn.Module, spec: Any, example: Sequence[torch.Tensor], path: Path, exporter: str
) -> dict[str, Any]:
    axes = {name: dict(axes) for name, axes in spec.dynamic_axes.items()}
    torch.onnx.export(
        module,
        tuple(example),
        str(path),
        input_names=list(spec.input_names),
        output_names=list(spec.output_names),
        dynamic_axes=axes,
        opset_version=ONNX_OPSET,
        dynamo=exporter == "dynamo",
        do_constant_folding=True,
        external_data=False,
    )
    return {"method": f"torch.onnx.export (dynamo={exporter == 'dynamo'})", "opset": ONNX_OPSET}


def onnx_session(path: Path, threads: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_runner(path: Path, input_names: Sequence[str], threads: int | None = None) -> Runner:
    session = onnx_session(path, threads)
    names = [i.name for i in session.get_inputs()]

    def run(inputs: Sequence[torch.Tensor]) -> list[np.ndarray]:
        feed = {name: tensor.detach().cpu().numpy() for name, tensor in zip(input_names, inputs)}
        return session.run(None, {name: feed[name] for name in names})

    return run


def load_runner(fmt: str, path: Path, input_names: Sequence[str]) -> Runner:
    """Run the written file the way a deployment would."""
    if fmt == "onnx":
        return onnx_runner(path, input_names)
    if fmt == "torchscript":
        return eager_runner(torch.jit.load(str(path)).eval())
    return eager_runner(torch.export.load(str(path)).module())
