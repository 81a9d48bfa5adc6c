"""Metric collections for text classification and regression, as GLUE scores them (torchmetrics).

Metric names used in dataset specs (`GlueTask.metrics`) and logged keys:

==========  ====================================================  ======================
name        what                                                  GLUE tasks
==========  ====================================================  ======================
accuracy    share of correct predictions                          all classification
f1          F1 of the positive class (label index 1), binary      MRPC, QQP
mcc         Matthews correlation coefficient                      CoLA
pearson     Pearson correlation of predicted and gold scores      STS-B
spearman    Spearman rank correlation                             STS-B
==========  ====================================================  ======================

Contract: classification metrics are updated with predicted class indices
(int64 `[N]`), regression metrics with predicted scores (float `[N]`);
`predictions_from_outputs` turns model outputs into either.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import BinaryF1Score, MatthewsCorrCoef, MulticlassAccuracy
from torchmetrics.regression import PearsonCorrCoef, SpearmanCorrCoef

from litzoo.errors import ConfigError

CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "f1", "mcc")
REGRESSION_METRICS: tuple[str, ...] = ("pearson", "spearman")
TEXT_METRICS: tuple[str, ...] = CLASSIFICATION_METRICS + REGRESSION_METRICS


def _make_metric(name: str, num_classes: int) -> Metric:
    if name == "accuracy":
        # micro average = plain share of correct predictions, as GLUE reports it
        return MulticlassAccuracy(num_classes=num_classes, average="micro")
    if name == "f1":
        if num_classes != 2:
            raise ConfigError(
                f"metric f1 is the positive-class F1 of a binary task; this task has {num_classes} classes."
            )
        return BinaryF1Score()
    if name == "mcc":
        return MatthewsCorrCoef(task="multiclass", num_classes=num_classes)
    if name == "pearson":
        return PearsonCorrCoef()
    if name == "spearman":
        # Ranks need every prediction, so the buffer warning is expected; eval sets are small (STS-B dev: 1,500).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*will save all targets and predictions.*")
            return SpearmanCorrCoef()
    raise ConfigError(f"Unknown text metric {name!r}; available: {', '.join(TEXT_METRICS)}.")


def build_text_metrics(
    metrics: Sequence[str], num_classes: int, prefix: str = "", is_regression: bool | None = None
) -> MetricCollection:
    """A `MetricCollection` of the named metrics; keys are `prefix + name` (e.g. `val/accuracy`).

    `num_classes` is the number of classes (ignored for regression metrics).
    Mixing classification and regression metrics is refused: they take different inputs.
    """
    if not metrics:
        raise ConfigError("A text task needs at least one metric (e.g. accuracy).")
    regression = [name in REGRESSION_METRICS for name in metrics]
    if any(regression) and not all(regression):
        raise ConfigError(
            f"Metrics {list(metrics)} mix classification and regression; a task is one or the other."
        )
    if is_regression is not None and is_regression != all(regression):
        kind = "regression" if is_regression else "classification"
        raise ConfigError(
            f"Metrics {list(metrics)} do not fit a {kind} task; use "
            f"{list(REGRESSION_METRICS if is_regression else CLASSIFICATION_METRICS)}."
        )
    if not all(regression) and num_classes < 2:
        raise ConfigError(f"A classification task needs at least 2 classes, got {num_classes}.")
    return MetricCollection(
        {name: _make_metric(name, num_classes) for name in metrics}, prefix=prefix or None
    )


def predictions_from_outputs(outputs: torch.Tensor, is_regression: bool) -> torch.Tensor:
    """Class indices (argmax of logits `[N, C]`) or scores (`[N, 1]` or `[N]` squeezed to `[N]`)."""
    if is_regression:
        return outputs.reshape(-1).float()
    return outputs.argmax(dim=-1)
