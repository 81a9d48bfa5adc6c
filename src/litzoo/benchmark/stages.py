"""The measurements themselves: build the model as training does, time it with one backend.

What is timed is the task's inference graph on one real batch of its test split (the batch
the datamodule builds at ``batch_size``, repeated when the split is smaller):

- the task's :meth:`~litzoo.tasks.base.TaskModule.export_spec` when it has one (the same module
  and inputs ``python -m litzoo.export`` deploys: one call per batch, or one per image for
  detection), else the task's ``forward`` on the batch's inputs (its first element, or the
  whole batch when it is a dict);
- ``eager``: that module under ``torch.no_grad()``; ``compile``: the same after
  ``torch.compile`` (the first call, which compiles, is setup and never timed);
  ``onnx``: the module exported with plain ``torch.onnx.export`` (TorchScript exporter, the
  dynamo exporter if that fails) into a temporary folder, run by an ONNX Runtime session with
  as many intra-op threads as torch uses, in a process that never imports torch.

Every backend gets the same warm-up calls and the same number of timed calls; each timed call
ends with a device synchronisation, so its latency is the batch's real latency. Throughput is
``batch_size * repeats / total timed seconds``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from litzoo.benchmark.config import Settings, device_of
from litzoo.benchmark.memory import CudaPeak, RssPeak
from litzoo.errors import ConfigError

INPUTS_FILE = "inputs.npz"
MODEL_FILE = "model.onnx"
EXPORT_INFO = "export.json"


@dataclass
class Timing:
    """Seconds of each timed call (one call = one batch)."""

    seconds: list[float]
    batch_size: int

    def summary(self) -> dict[str, float]:
        import numpy as np

        ms = np.asarray(self.seconds) * 1000.0
        return {
            "samples_per_sec": self.batch_size * len(ms) / (ms.sum() / 1000.0),
            "latency_ms_median": float(np.median(ms)),
            "latency_ms_p90": float(np.percentile(ms, 90)),
        }


def time_calls(call: Callable[[], Any], warmup: int, repeats: int, sync: Callable[[], None]) -> list[float]:
    """Warm up, then time `repeats` calls one by one (each ends with `sync`)."""
    for _ in range(warmup):
        call()
        sync()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        sync()
        seconds.append(time.perf_counter() - start)
    return seconds


# --- building the model and its inputs, as training does ---------------------------------------
def real_batch(cfg: DictConfig, settings: Settings) -> tuple[Any, Any]:
    """The datamodule the run would train with, and the first batch of its test split (val if none)
    with exactly ``batch_size`` samples."""
    from litzoo.platform.registry import build

    if "batch_size" in cfg.data:
        with open_dict(cfg):
            cfg.data.batch_size = settings.batch_size
    datamodule = build(cfg.data, seed=settings.seed)
    datamodule.prepare_data()
    for stage, loader in (("test", "test_dataloader"), ("validate", "val_dataloader")):
        try:
            datamodule.setup(stage)
            batch = next(iter(getattr(datamodule, loader)()))
            break
        except (StopIteration, AttributeError, TypeError, ValueError):
            continue
    else:
        raise ConfigError(
            f"data={cfg.data.get('name')} gives no test or validation batch to benchmark with; "
            "choose a dataset with a test or val split."
        )
    return datamodule, resize_batch(batch, settings.batch_size)


def resize_batch(batch: Any, size: int) -> Any:
    """`batch` with `size` samples: tensors cut or repeated along dim 0, per-sample lists cycled,
    tuples and dicts resized member by member."""
    import torch

    if isinstance(batch, torch.Tensor):
        if batch.ndim == 0 or len(batch) == 0:
            return batch
        repeats = -(-size // len(batch))
        return batch.repeat(repeats, *([1] * (batch.ndim - 1)))[:size] if repeats > 1 else batch[:size]
    if isinstance(batch, dict):
        return {key: resize_batch(value, size) for key, value in batch.items()}
    if isinstance(batch, tuple):
        return tuple(resize_batch(value, size) for value in batch)
    if isinstance(batch, list) and batch:
        return [batch[i % len(batch)] for i in range(size)]
    return batch


def build_task(cfg: DictConfig, datamodule: Any, seed: int) -> Any:
    """The task module `train.py` would train, freshly initialised (seeded), in eval mode."""
    import torch

    from litzoo.platform.registry import build

    torch.manual_seed(seed)
    task = build(
        cfg.task,
        _recursive_=False,
        model=OmegaConf.to_container(cfg.model, resolve=True),
        data_info=datamodule.info(),
        optim=OmegaConf.to_container(cfg.optim, resolve=True),
        sched=OmegaConf.to_container(cfg.sched, resolve=True) if cfg.get("sched") else None,
    )
    return task.eval()


@dataclass
class Graph:
    """What is timed: `module` called once per tuple in `calls` for one batch."""

    module: Any
    calls: list[tuple[Any, ...]]
    input_names: tuple[str, ...] | None
    source: str

    def params(self) -> int:
        return sum(p.numel() for p in {id(p): p for p in self.module.parameters()}.values())

    def input_size(self) -> str:
        import torch
        from torch.utils._pytree import tree_leaves

        first = next((t for t in tree_leaves(self.calls[0]) if isinstance(t, torch.Tensor)), None)
        if first is None:
            return ""
        shape = list(first.shape[1:]) if len(self.calls) == 1 else list(first.shape)
        return "x".join(str(s) for s in shape)


def inference_graph(task: Any, batch: Any) -> Graph:
    """The task's export graph and its inputs when it has one, else its forward on the batch."""
    spec = None
    export_spec = getattr(task, "export_spec", None)
    if callable(export_spec):
        try:
            spec = export_spec()
        except Exception:  # a task that cannot describe its export still has a forward to time
            spec = None
    if spec is not None:
        return Graph(spec.module.eval(), list(spec.calls(batch)), tuple(spec.input_names), "export_spec")
    inputs = batch if isinstance(batch, dict) else batch[0] if isinstance(batch, (tuple, list)) else batch
    return Graph(task, [(inputs,)], None, "forward")


def to_device(value: Any, device: str) -> Any:
    import torch
    from torch.utils._pytree import tree_map

    return tree_map(lambda t: t.to(device) if isinstance(t, torch.Tensor) else t, value)


def prepared(cfg: DictConfig, settings: Settings) -> tuple[Any, Any]:
    """The datamodule and one real batch, before any memory is counted."""
    import torch

    torch.manual_seed(settings.seed)
    return real_batch(cfg, settings)


# --- torch backends -----------------------------------------------------------------------------
def measure_torch(cfg: DictConfig, settings: Settings, backend: str) -> dict[str, Any]:
    """Eager or torch.compile: one row's measurements (without the identifying columns)."""
    import torch

    from litzoo.platform.scaling import resolve_precision

    device = device_of(cfg)
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer=gpu, but torch sees no CUDA device here; benchmark on CPU (trainer=cpu).")
    datamodule, batch = prepared(cfg, settings)
    precision = str(
        resolve_precision(cfg.trainer.get("precision", "32-true"), "gpu" if device == "cuda" else "cpu")
    )
    meter = CudaPeak() if device == "cuda" else RssPeak()
    meter.start()
    start = time.perf_counter()
    graph = inference_graph(build_task(cfg, datamodule, settings.seed), batch)
    graph.module.to(device)
    calls = to_device(graph.calls, device)
    module = graph.module
    if backend == "compile":
        module = torch.compile(
            module, mode=None if settings.compile_mode == "default" else settings.compile_mode
        )
    autocast = _autocast(precision, device)

    def call() -> None:
        with torch.no_grad(), autocast():
            for args in calls:
                module(*args)

    sync = (lambda: torch.cuda.synchronize()) if device == "cuda" else (lambda: None)
    call()  # compiles (torch.compile), allocates (eager): setup, never timed
    sync()
    setup_s = time.perf_counter() - start
    seconds = time_calls(call, settings.warmup, settings.repeats, sync)
    return {
        **Timing(seconds, settings.batch_size).summary(),
        "peak_mem_mb": meter.peak_mb(),
        "memory_measure": meter.measure,
        "params": graph.params(),
        "input_size": graph.input_size(),
        "threads": torch.get_num_threads(),
        "device": device,
        "precision": precision,
        "setup_s": setup_s,
        "runtime": f"torch {torch.__version__}"
        + (f" inductor ({settings.compile_mode})" if backend == "compile" else "")
        + (f" on {torch.cuda.get_device_name()}" if device == "cuda" else ""),
        "graph": graph.source,
    }


def _autocast(precision: str, device: str) -> Callable[[], Any]:
    import contextlib

    import torch

    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device, dtype=dtype)


# --- ONNX Runtime -------------------------------------------------------------------------------
def export_onnx(cfg: DictConfig, settings: Settings, folder: Path) -> dict[str, Any]:
    """Export the graph to `folder/model.onnx` and its inputs to `folder/inputs.npz`."""
    import numpy as np
    import torch

    datamodule, batch = prepared(cfg, settings)
    graph = inference_graph(build_task(cfg, datamodule, settings.seed), batch)
    if len(graph.calls) != 1:
        raise ConfigError(
            f"the model is called {len(graph.calls)} times per batch (once per sample); the ONNX benchmark "
            "times one call per batch"
        )
    flat = FlatInputs(graph.module, graph.calls[0], graph.input_names)
    folder.mkdir(parents=True, exist_ok=True)
    exporter = _export(flat, folder / MODEL_FILE)
    np.savez(
        folder / INPUTS_FILE, **{n: t.cpu().numpy() for n, t in zip(flat.names, flat.tensors, strict=True)}
    )
    info = {
        "params": graph.params(),
        "input_size": graph.input_size(),
        "threads": torch.get_num_threads(),
        "exporter": exporter,
        "graph": graph.source,
    }
    (folder / EXPORT_INFO).write_text(json.dumps(info))
    return info


def _export(module: Any, path: Path) -> str:
    import warnings

    import torch

    errors = []
    for dynamo in (False, True):
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    tuple(module.tensors),
                    str(path),
                    input_names=list(module.names),
                    dynamo=dynamo,
                    **({"verbose": False} if dynamo else {}),
                )
            return "dynamo" if dynamo else "torchscript"
        except Exception as error:  # the next exporter may manage; both failing is reported
            errors.append(
                f"{'dynamo' if dynamo else 'torchscript'} exporter: {str(error).splitlines()[0][:200]}"
            )
    raise RuntimeError("torch.onnx.export failed (" + "; ".join(errors) + ")")


def _flat_module_class() -> type:
    import torch
    from torch.utils._pytree import tree_flatten, tree_unflatten

    class _FlatInputs(torch.nn.Module):
        """`module(*args)` as a module of plain tensors (what an ONNX graph takes), with names."""

        def __init__(self, module: Any, args: tuple[Any, ...], names: Sequence[str] | None) -> None:
            super().__init__()
            self.module = module
            leaves, self.spec = tree_flatten(args)
            self.positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
            self.constants = leaves
            self.tensors = [leaves[i] for i in self.positions]
            if names is None or len(names) != len(self.tensors):
                only = args[0] if len(args) == 1 else None
                if isinstance(only, dict) and len(only) == len(self.tensors):
                    names = [str(k) for k in only]
                else:
                    names = [f"input_{i}" for i in range(len(self.tensors))]
            self.names = list(names)

        def forward(self, *tensors: Any) -> Any:
            leaves = list(self.constants)
            for position, tensor in zip(self.positions, tensors, strict=True):
                leaves[position] = tensor
            return self.module(*tree_unflatten(leaves, self.spec))

    return _FlatInputs


def FlatInputs(module: Any, args: tuple[Any, ...], names: Sequence[str] | None) -> Any:  # noqa: N802
    """A module of plain named tensors around `module(*args)` (torch is imported only when called)."""
    return _flat_module_class()(module, args, names)


def measure_onnx(cfg: DictConfig, settings: Settings, folder: Path) -> dict[str, Any]:
    """Time the exported graph with ONNX Runtime (this process needs no torch)."""
    import numpy as np

    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError("onnxruntime is not installed (pip install 'litzoo[export]')") from None
    info = json.loads((folder / EXPORT_INFO).read_text())
    device = device_of(cfg)
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ConfigError("this onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with np.load(folder / INPUTS_FILE) as stored:
        inputs = {name: stored[name] for name in stored.files}
    meter = RssPeak()  # GPU memory of a session is not visible to torch; the host's is measured
    meter.start()
    start = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(info["threads"])
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(folder / MODEL_FILE), options, providers=providers)
    wanted = [i.name for i in session.get_inputs()]
    missing = [name for name in wanted if name not in inputs]
    if missing:
        raise ConfigError(f"the exported graph asks for inputs {missing} the batch does not have")
    feed = {name: inputs[name] for name in wanted}

    def call() -> None:
        session.run(None, feed)

    call()
    setup_s = time.perf_counter() - start
    seconds = time_calls(call, settings.warmup, settings.repeats, lambda: None)
    return {
        **Timing(seconds, settings.batch_size).summary(),
        "peak_mem_mb": meter.peak_mb() if device == "cpu" else None,
        "memory_measure": meter.measure if device == "cpu" else "not measured (GPU session)",
        "params": info["params"],
        "input_size": info["input_size"],
        "threads": info["threads"],
        "device": device,
        "precision": "32-true",
        "setup_s": setup_s,
        "runtime": f"onnxruntime {ort.__version__} ({info['exporter']} export)",
        "graph": info["graph"],
    }
