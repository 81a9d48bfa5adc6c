"""mIoU, mAcc and aAcc from one confusion matrix per split, checked against hand-computed values and torchmetrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from litzoo.metrics.segmentation import ConfusionMatrix, scores_from_confusion

NAMES = ("background", "cat", "dog", "bird")
TARGET = torch.tensor([[0, 0, 1, 1], [0, 2, 2, 255], [1, 1, 2, 255]])
# The ignored pixels are predicted as class 3, which appears nowhere else: it must not count.
PREDICTION = torch.tensor([[0, 1, 1, 1], [0, 2, 0, 3], [1, 2, 2, 3]])


def test_confusion_matrix_and_scores_match_the_hand_computed_ones():
    metric = ConfusionMatrix(4)
    metric.update(PREDICTION, TARGET)
    # Rows: truth, columns: prediction, over the 10 labelled pixels.
    expected = torch.tensor([[2, 1, 0, 0], [0, 3, 1, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
    assert torch.equal(metric.compute(), expected)
    scores = scores_from_confusion(metric.compute(), NAMES)
    assert scores.iou[:3] == pytest.approx((2 / 4, 3 / 5, 2 / 4))  # TP / (GT + prediction - TP)
    assert math.isnan(scores.iou[3]) and math.isnan(scores.acc[3])  # absent from both: no IoU, left out
    assert scores.miou == pytest.approx((0.5 + 0.6 + 0.5) / 3)
    assert scores.acc[:3] == pytest.approx((2 / 3, 3 / 4, 2 / 3))
    assert scores.macc == pytest.approx((2 / 3 + 3 / 4 + 2 / 3) / 3)
    assert scores.aacc == pytest.approx(7 / 10)
    assert scores.pixels == (3, 4, 3, 0)


def test_a_class_only_predicted_counts_as_iou_zero_but_has_no_accuracy():
    prediction = PREDICTION.clone()
    prediction[0, 1] = 3  # a background pixel predicted as bird, which is in no ground truth
    scores = scores_from_confusion(_matrix(prediction, TARGET, 4), NAMES)
    assert scores.iou[3] == 0.0 and math.isnan(scores.acc[3])
    # cat loses that false positive: 3 / (4 + 3 - 3); bird: 0 / (0 + 1 - 0).
    assert scores.iou == pytest.approx((0.5, 0.75, 0.5, 0.0))
    assert scores.miou == pytest.approx((0.5 + 0.75 + 0.5 + 0) / 4)
    assert scores.macc == pytest.approx((2 / 3 + 3 / 4 + 2 / 3) / 3)


def _matrix(prediction: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    metric = ConfusionMatrix(num_classes)
    metric.update(prediction, target)
    return metric.compute()


def test_per_class_iou_agrees_with_torchmetrics_jaccard_on_random_masks():
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, 6, (3, 40, 50), generator=generator)
    target[torch.rand(target.shape, generator=generator) < 0.1] = 255
    prediction = torch.where(
        torch.rand(target.shape, generator=generator) < 0.6,
        target.clamp(max=5),
        torch.randint(0, 6, target.shape, generator=generator),
    )
    ours = scores_from_confusion(_matrix(prediction, target, 6), [str(i) for i in range(6)])
    reference = MulticlassJaccardIndex(num_classes=6, average=None, ignore_index=255)(prediction, target)
    assert ours.iou == pytest.approx(reference.tolist(), abs=1e-6)


def test_the_matrix_of_a_split_is_the_sum_over_batches_not_a_mean_of_per_image_scores():
    generator = np.random.default_rng(1)
    targets = [torch.from_numpy(generator.integers(0, 3, (8, 8))) for _ in range(4)]
    predictions = [torch.from_numpy(generator.integers(0, 3, (8, 8))) for _ in range(4)]
    metric = ConfusionMatrix(3)
    for prediction, target in zip(predictions, targets):
        metric.update(prediction, target)
    whole = _matrix(torch.stack(predictions), torch.stack(targets), 3)
    assert torch.equal(metric.compute(), whole)
    metric.reset()
    assert int(metric.matrix.sum()) == 0


def test_binary_data_report_the_foreground_iou_and_dice():
    target = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 255]])
    prediction = torch.tensor([[0, 1, 1, 0], [0, 0, 1, 1]])
    flat = scores_from_confusion(_matrix(prediction, target, 2), ("background", "crack")).flat()
    # Foreground: TP 2, GT 3, predicted 3 -> IoU 2 / 4, Dice 2 * 2 / (3 + 3).
    assert flat["fg_iou"] == pytest.approx(0.5) and flat["fg_dice"] == pytest.approx(4 / 6)
    assert set(flat) == {"miou", "macc", "aacc", "fg_iou", "fg_dice"}


def test_the_table_shows_percentages_and_nan_for_undefined_classes():
    scores = scores_from_confusion(_matrix(PREDICTION, TARGET, 4), NAMES)
    header, *rows, mean = scores.table().splitlines()
    assert header.split() == ["class", "IoU", "Acc", "pixels%"]
    assert rows[1].split() == ["cat", "60.00", "75.00", "40.00"]
    assert rows[3].split() == ["bird", "nan", "nan", "0.00"]
    assert mean.split()[:3] == ["mean", "53.33", "69.44"]
