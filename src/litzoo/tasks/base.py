"""What every task module shares: optimizer groups, the lr schedule, weight EMA.

A task module is a LightningModule that owns the science of one task family
(forward, loss, metrics, decoding). The plumbing it inherits from here:

- `configure_optimizers` builds the optimizer from the `optim` config (a
  `_partial_` target such as `torch.optim.SGD`) over `param_groups()`, and the
  per-step lr schedule from the `sched` config with the run's length;
- `param_groups()` puts normalisation weights and biases in a group without
  weight decay when `no_decay_norm_bias` is set (override for layer-wise decay);
- an exponential moving average of the weights (`ema_decay`), updated after every
  optimizer step and used for validation and testing;
- gradient-norm clipping (`max_grad_norm`, unless `trainer.gradient_clip_val` is set);
- :class:`EvaluatingTask`: evaluation over a whole split, gathered across ranks and scored
  once (``make_metrics() -> reset/update/compute() -> Scores``), with tables and saved results.

All constructor arguments are plain data (dicts, numbers, strings) and are saved
as hyper-parameters, so checkpoints load with `weights_only=True` and a task can
be rebuilt from its checkpoint alone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

log = logging.getLogger("litzoo")

_NORM_TYPES = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
)


def split_decay_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two param groups: everything else with `weight_decay`, norm weights and biases without."""
    no_decay_ids = set()
    for sub in module.modules():
        if isinstance(sub, _NORM_TYPES) or "norm" in type(sub).__name__.lower():
            no_decay_ids.update(id(p) for p in sub.parameters(recurse=False))
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        if id(param) in no_decay_ids or name.endswith(".bias") or param.ndim <= 1:
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


class TaskModule(pl.LightningModule):
    """Base class of litzoo's task modules. Subclasses set `self.net` before calling `init_ema()`."""

    def __init__(
        self,
        optim: dict,
        sched: dict | None = None,
        no_decay_norm_bias: bool = True,
        ema_decay: float | None = None,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__()
        self.optim_cfg = dict(optim)
        self.sched_cfg = dict(sched) if sched else None
        self.no_decay_norm_bias = no_decay_norm_bias
        self.ema_decay = ema_decay
        self.max_grad_norm = max_grad_norm
        self.ema: AveragedModel | None = None

    # --- a run directory is a model --------------------------------------------------------------
    @staticmethod
    def from_run_dir(
        run_dir: str | Path, checkpoint: str | Path | None = None, map_location: str = "cpu"
    ) -> TaskModule:
        """The trained task of a run directory, with its preprocessing, ready to predict
        (like `from_pretrained(path)`): the run's task target, rebuilt from the checkpoint's
        hyper-parameters (weights-only, targets checked against the allowlist first), with
        whatever its run directory keeps for it (`restore_arguments`), in eval mode."""
        import importlib

        from litzoo.errors import CheckpointError
        from litzoo.platform.checkpointing import load_checkpoint_file
        from litzoo.platform.registry import build
        from litzoo.platform.run_dir import RunDir
        from litzoo.platform.trust import check_targets

        run = RunDir(run_dir)
        path = run.checkpoint(checkpoint)
        target = str(run.config().task._target_)
        state = load_checkpoint_file(path)
        if not isinstance(state, dict) or "state_dict" not in state:
            raise CheckpointError(
                f"{path} is not a litzoo checkpoint (it holds no state_dict and hyper-parameters). Give a "
                f"checkpoint of this run ({run.checkpoint_dir}), or leave --checkpoint out to use its best."
            )
        hparams = dict(state.get("hyper_parameters") or {})
        check_targets({"_target_": target, **hparams}, resolve=True)  # before anything named in them is built
        module_name, _, name = target.rpartition(".")
        restore = getattr(getattr(importlib.import_module(module_name), name), "restore_arguments", None)
        if restore is not None:
            hparams = restore(hparams, run)
        try:
            task = build({"_target_": target, **hparams}, _recursive_=False)
            task.load_state_dict(state["state_dict"])
        except (TypeError, RuntimeError, KeyError) as error:
            raise CheckpointError(
                f"The checkpoint {path} does not fit the task {target} of its run directory "
                f"({str(error).splitlines()[0]}). Use a checkpoint of this run, written by this version of litzoo."
            ) from None
        task.run_dir = run
        return task.eval().to(map_location)

    # --- prediction (python -m litzoo.predict <run_dir> <inputs>) ----------------------------------
    def predict_inputs(
        self, inputs: list[str], batch_size: int = 16, top_k: int | None = None
    ) -> list[dict[str, Any]]:
        """Predictions for raw inputs (image paths, texts, ...): one JSON-serialisable dict per input, in order.

        The task preprocesses each input as its evaluation split was (what it needs is in its
        hyper-parameters or its run directory, never in the training data). `top_k` asks for the
        k best answers per input where the task has a ranking (classes, detections).
        """
        from litzoo.errors import ConfigError

        raise ConfigError(f"{type(self).__name__} does not predict from raw inputs yet.")

    def format_prediction(self, prediction: dict[str, Any]) -> str:
        """One line of human-readable output for a prediction (`--json` prints the dict itself)."""
        import json

        return json.dumps(prediction, ensure_ascii=False)

    def predictions_file(self, predictions: list[dict[str, Any]]) -> Any:
        """What `python -m litzoo.predict --output FILE` writes as JSON: the predictions themselves,
        unless the family has a standard results format (detection: the COCO results list)."""
        return predictions

    def write_predictions(self, predictions: list[dict[str, Any]], path: str | Path) -> Path:
        """Write all predictions to `path` (`--output`), atomically: `predictions_file` as JSON, unless
        the family's results are a text format of its own (dependency parsing: CoNLL-U)."""
        from litzoo.platform.run_dir import write_json_atomic

        path = Path(path).expanduser()
        write_json_atomic(path, self.predictions_file(predictions))
        return path

    @classmethod
    def add_predict_arguments(cls, parser: Any) -> None:
        """Options of ``python -m litzoo.predict`` that only this family has (an ``argparse`` parser;
        question answering adds ``--question``/``--context``). None by default."""

    @classmethod
    def inputs_from_arguments(cls, args: Any) -> list[str]:
        """The inputs those options give (after the positional ones), as strings `predict_inputs` reads."""
        return []

    # --- export (python -m litzoo.export <run_dir> --format onnx|torchscript|exported-program) ----
    def export_spec(self) -> ExportSpec | None:
        """What deploying this task's model outside Python takes (:class:`ExportSpec`), or None: the
        family has no exporter yet, and ``python -m litzoo.export`` says so and lists those that do."""
        return None

    # --- the run record ---------------------------------------------------------------------------
    def record_fields(self) -> dict[str, Any]:
        """What run.json keeps beside the test metrics after testing (JSON-serialisable), e.g. how a score was
        computed (translation: sacreBLEU's signatures). Nothing by default."""
        return {}

    # --- weights used for evaluation -----------------------------------------------------------
    def init_ema(self) -> None:
        if self.ema_decay:
            self.ema = AveragedModel(
                self.net, multi_avg_fn=get_ema_multi_avg_fn(self.ema_decay), use_buffers=True
            )
            self.ema.requires_grad_(False)

    @property
    def eval_net(self) -> nn.Module:
        """The network to validate and test with: the EMA copy when enabled."""
        return self.ema.module if self.ema is not None else self.net

    def on_before_zero_grad(self, optimizer: torch.optim.Optimizer) -> None:
        # Called once per optimizer step (after accumulation), right after the step.
        if self.ema is not None and self.training:
            self.ema.update_parameters(self.net)

    # --- optimization ---------------------------------------------------------------------------
    def param_groups(self) -> list[dict[str, Any]] | Any:
        weight_decay = float(self.optim_cfg.get("weight_decay", 0.0) or 0.0)
        if self.no_decay_norm_bias:
            return split_decay_groups(self.net, weight_decay)
        return [p for p in self.net.parameters() if p.requires_grad]

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """The Trainer's clipping (trainer.gradient_clip_val) if set, else the task's `max_grad_norm`.

        Fine-tuning recipes (BERT: 1.0) clip the global gradient norm, and R-CNN models trained from
        scratch on small batches occasionally take one huge step early on and never recover;
        bounding the norm keeps those steps harmless and leaves the ordinary ones untouched.
        """
        if gradient_clip_val is None and self.max_grad_norm:
            gradient_clip_val, gradient_clip_algorithm = float(self.max_grad_norm), "norm"
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.optim_cfg, _convert_="all")(self.param_groups())
        if not self.sched_cfg:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)  # also sets num_training_batches
        batches = self.trainer.num_training_batches
        accumulate = self.trainer.accumulate_grad_batches
        steps_per_epoch = math.ceil(batches / accumulate) if math.isfinite(batches) else total_steps
        scheduler = instantiate(self.sched_cfg, _convert_="all")(
            optimizer, total_steps=total_steps, steps_per_epoch=steps_per_epoch
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


@dataclass(frozen=True)
class ExportSpec:
    """How a task's model leaves Python (``TaskModule.export_spec``; read by :mod:`litzoo.export`).

    The exported graph is ``module``: plain tensors in (``input_names``), plain tensors out
    (``output_names``), with the preprocessing a deployment cannot be trusted to repeat (image
    normalisation) inside it. ``calls(batch)`` turns one collated batch of the run's own data into
    the module's inputs, one tuple per call (detection: one call per image), so that parity,
    calibration and accuracy all run on real inputs. ``preprocessing`` is written as
    ``preprocessing.json`` beside the model, and ``files`` (name -> path) are copied there
    (a tokenizer, a vocabulary), so the export directory is all a deployment needs.
    """

    module: nn.Module
    calls: Callable[[Any], list[tuple[torch.Tensor, ...]]]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: Mapping[str, Mapping[int, str]]
    preprocessing: Mapping[str, Any]
    files: Mapping[str, str] = field(default_factory=dict)
    # Inputs deployments meet that a split may not hold (an image with nothing to detect), checked too.
    edge_cases: Callable[[], list[tuple[torch.Tensor, ...]]] | None = None
    # The class labels of a batch, in the order of the calls' first outputs concatenated (int8
    # accuracy on the test split); None: the task is not scored by accuracy.
    labels: Callable[[Any], torch.Tensor] | None = None
    # "dynamic" (weights only: transformers, LSTMs), "static" (calibrated: CNNs) or None (no --int8).
    int8: str | None = None
    # How torchscript is made: "trace" (shapes flow through tensors) or "script" (Python control flow).
    torchscript: str = "trace"
    formats: tuple[str, ...] = ("onnx", "torchscript", "exported-program")
    atol: float = 1e-4
    rtol: float = 1e-3
    # (atol, rtol) of outputs on another scale than the rest (detection boxes, in pixels).
    output_tolerances: Mapping[str, tuple[float, float]] = field(default_factory=dict)


class NormalizedInput(nn.Module):
    """``net((x - mean) / std)``: an exported image model takes pixels in [0, 1] and normalises them
    itself, so a deployment cannot feed it differently normalised images by mistake. `output`: the key
    of the tensor to return when the network returns a dict (torchvision segmentation: ``"out"``)."""

    def __init__(
        self, net: nn.Module, mean: list[float], std: list[float], output: str | None = None
    ) -> None:
        super().__init__()
        self.net, self.output = net, output
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.net((images - self.mean) / self.std)
        return out[self.output] if self.output is not None else out

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """The [0, 1] pixels a normalised eval batch was made from (the exported model's input)."""
        return images * self.std + self.mean


def split_model_config(model: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The builder's arguments and the model's ``input`` block (what it needs from the data, read by
    the data config through interpolation; never an argument of the builder)."""
    arguments = dict(model)
    return arguments, dict(arguments.pop("input", None) or {})


@dataclass
class Scores:
    """One evaluation pass: flat metrics to log, text tables for the log, results to save."""

    metrics: dict[str, float]
    tables: dict[str, str] = field(default_factory=dict)
    save: Any = None  # callable(directory, stem) -> list[Path], or None


class EvaluatingTask(TaskModule):
    """Validation/test bookkeeping for tasks scored over a whole split (COCOeval, VOC, ...).

    Subclasses implement :meth:`make_metrics` (an object with ``reset``, ``update`` and
    ``compute() -> Scores``) and call ``self.metrics_for(stage).update(...)`` in their
    evaluation steps; this class resets, gathers, logs and saves around them.
    """

    primary_metric = "map"
    # The log title of each table in Scores.tables ({name}: its key); the values are x100.
    table_title = "{name} AP per class (x100)"

    def __init__(
        self,
        optim: dict,
        sched: dict | None = None,
        no_decay_norm_bias: bool = True,
        ema_decay: float | None = None,
        save_detections: bool = True,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__(optim, sched, no_decay_norm_bias, ema_decay, max_grad_norm)
        self.save_detections = save_detections
        self._metrics: dict[str, Any] = {}

    def make_metrics(self, split: str) -> Any:
        raise NotImplementedError

    def metrics_for(self, stage: str) -> Any:
        if stage not in self._metrics:
            self._metrics[stage] = self.make_metrics(stage)
        return self._metrics[stage]

    @property
    def datamodule(self) -> Any:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            raise RuntimeError(
                f"{type(self).__name__} scores against the datamodule's ground truth; pass the data as "
                "trainer.fit/validate/test(task, datamodule=...)."
            )
        return datamodule

    def on_validation_epoch_start(self) -> None:
        self.metrics_for("val").reset()

    def on_test_epoch_start(self) -> None:
        self.metrics_for("test").reset()

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def on_test_epoch_end(self) -> None:
        self._finish("test")

    def _finish(self, stage: str) -> None:
        scores: Scores = self.metrics_for(stage).compute()  # collective: every rank calls it
        # Every rank holds the same numbers (rank 0 scored everything and broadcast them); the max
        # over ranks keeps them exact while satisfying Lightning's rule for epoch-level logging.
        values = {f"{stage}/{k}": float(v) for k, v in scores.metrics.items()}
        primary = f"{stage}/{self.primary_metric}"
        self.log(primary, values.pop(primary), prog_bar=True, sync_dist=True, reduce_fx="max")
        self.log_dict(values, sync_dist=True, reduce_fx="max")
        if self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        # "bbox AP per class (x100), val epoch 3": the tables print percentages while the logged
        # metrics (val/map, test/map_50, ...) are fractions, so the unit is said in the title.
        when = f"val epoch {self.current_epoch}" if stage == "val" else stage
        for name, table in scores.tables.items():
            log.info("%s, %s:\n%s", self.table_title.format(name=name), when, table)
        if self.save_detections and scores.save is not None:
            stem = f"detections_val_epoch{self.current_epoch:03d}" if stage == "val" else "detections_test"
            for path in scores.save(self.trainer.default_root_dir, stem):
                log.info("Saved %s detections to %s", stage, path)
