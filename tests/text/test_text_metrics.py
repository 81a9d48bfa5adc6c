"""Text metric collections against scikit-learn and scipy on the same predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from litzoo.datamodules.text_classification.glue import GLUE_TASKS
from litzoo.errors import ConfigError
from litzoo.metrics.text import build_text_metrics, predictions_from_outputs


def update_in_batches(
    collection, preds: torch.Tensor, target: torch.Tensor, size: int = 37
) -> dict[str, float]:
    for start in range(0, len(preds), size):
        collection.update(preds[start : start + size], target[start : start + size])
    return {key: float(value) for key, value in collection.compute().items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_accuracy_and_positive_f1(seed: int) -> None:
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 2, 500)
    preds = np.where(rng.random(500) < 0.7, target, 1 - target)  # 70% right, as a weak model would be
    values = update_in_batches(
        build_text_metrics(["f1", "accuracy"], 2, prefix="val/"),
        torch.from_numpy(preds),
        torch.from_numpy(target),
    )
    assert set(values) == {"val/f1", "val/accuracy"}
    assert values["val/accuracy"] == pytest.approx(accuracy_score(target, preds), abs=1e-6)
    assert values["val/f1"] == pytest.approx(f1_score(target, preds, pos_label=1), abs=1e-6)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_matthews_and_multiclass_accuracy(num_classes: int) -> None:
    rng = np.random.default_rng(num_classes)
    target = rng.integers(0, num_classes, 400)
    preds = np.where(rng.random(400) < 0.6, target, rng.integers(0, num_classes, 400))
    values = update_in_batches(
        build_text_metrics(["mcc", "accuracy"], num_classes),
        torch.from_numpy(preds),
        torch.from_numpy(target),
    )
    assert values["mcc"] == pytest.approx(matthews_corrcoef(target, preds), abs=1e-6)
    assert values["accuracy"] == pytest.approx(accuracy_score(target, preds), abs=1e-6)


def test_pearson_and_spearman_with_ties() -> None:
    rng = np.random.default_rng(0)
    target = np.round(rng.uniform(0, 5, 300) * 5) / 5  # STS-B-like scores with many ties
    preds = np.round(target + rng.normal(0, 1.0, 300), 1)  # ties in predictions too
    values = update_in_batches(
        build_text_metrics(GLUE_TASKS["stsb"].metrics, 1, is_regression=True),
        torch.from_numpy(preds),
        torch.from_numpy(target),
    )
    assert values["pearson"] == pytest.approx(pearsonr(preds, target).statistic, abs=1e-6)
    assert values["spearman"] == pytest.approx(spearmanr(preds, target).statistic, abs=1e-6)


def test_each_glue_task_builds_its_metrics() -> None:
    for task in GLUE_TASKS.values():
        collection = build_text_metrics(task.metrics, task.num_labels, is_regression=task.is_regression)
        assert set(collection.keys()) == set(task.metrics)


def test_predictions_from_outputs() -> None:
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    assert predictions_from_outputs(logits, is_regression=False).tolist() == [1, 0]
    assert predictions_from_outputs(torch.tensor([[0.5], [4.0]]), is_regression=True).tolist() == [0.5, 4.0]


def test_metric_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="positive-class F1"):
        build_text_metrics(["f1"], 3)
    with pytest.raises(ConfigError, match="mix classification and regression"):
        build_text_metrics(["accuracy", "pearson"], 2)
    with pytest.raises(ConfigError, match="do not fit a regression task"):
        build_text_metrics(["accuracy"], 2, is_regression=True)
    with pytest.raises(ConfigError, match="Unknown text metric"):
        build_text_metrics(["bleu"], 2)
