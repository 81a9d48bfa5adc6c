"""Semantic-segmentation scores as the benchmarks compute them: mIoU, mean class accuracy, pixel accuracy.

The standard evaluation (PASCAL VOC's devkit, Cityscapes' scripts, MMSegmentation's
``IoUMetric``) accumulates one confusion matrix over *all pixels of the whole split* and only
then divides; it does not average per-image scores. With ``C[i, j]`` the number of pixels of
true class ``i`` predicted as ``j`` (pixels whose truth is the ignore value are left out):

- IoU of class ``k``  = ``C[k, k] / (sum_j C[k, j] + sum_i C[i, k] - C[k, k])``;
- Acc of class ``k``  = ``C[k, k] / sum_j C[k, j]`` (the class's recall);
- ``miou`` / ``macc`` = the mean over classes of IoU / Acc, leaving out the classes whose value is
  undefined: a class absent from both prediction and ground truth has no IoU (0 / 0) and does not
  count, and a class absent from the ground truth has no Acc;
- ``aacc`` (pixel accuracy) = ``trace(C) / sum(C)``.
- binary data (two classes, 1 = foreground) also get ``fg_iou`` and ``fg_dice`` (= F1) of the
  foreground class, which ``miou`` (dominated by the background) hides.

:class:`ConfusionMatrix` is a torchmetrics ``Metric`` whose state is the matrix, summed across
DDP ranks when computed, so the scores are those of the whole split whichever rank saw which
image. Values are fractions (0-1); the per-class table shows percentages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torchmetrics import Metric

IGNORE_INDEX = 255


class ConfusionMatrix(Metric):
    """``num_classes x num_classes`` pixel counts (rows: truth, columns: prediction), ignore left out."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.num_classes, self.ignore_index = int(num_classes), int(ignore_index)
        self.add_state(
            "matrix", torch.zeros(self.num_classes, self.num_classes, dtype=torch.long), dist_reduce_fx="sum"
        )

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add the pixels of predicted labels `preds` and true labels `target` (same shape)."""
        if preds.shape != target.shape:
            raise ValueError(
                f"prediction {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape"
            )
        keep = target != self.ignore_index
        truth, predicted = target[keep].long(), preds[keep].long()
        if truth.numel() and int(truth.max()) >= self.num_classes:
            raise ValueError(
                f"target holds class {int(truth.max())} but there are {self.num_classes} classes"
            )
        index = truth * self.num_classes + predicted
        counts = torch.bincount(index, minlength=self.num_classes**2)
        self.matrix += counts.reshape(self.num_classes, self.num_classes)

    def compute(self) -> torch.Tensor:
        return self.matrix


@dataclass(frozen=True)
class SegmentationScores:
    """What one evaluation pass measured: per-class IoU/Acc (NaN where undefined) and the means."""

    class_names: tuple[str, ...]
    iou: tuple[float, ...]
    acc: tuple[float, ...]
    pixels: tuple[int, ...]
    miou: float
    macc: float
    aacc: float

    def flat(self) -> dict[str, float]:
        """The logged numbers: ``miou``, ``macc``, ``aacc`` (+ ``fg_iou``, ``fg_dice`` for binary data)."""
        metrics = {"miou": self.miou, "macc": self.macc, "aacc": self.aacc}
        if len(self.class_names) == 2:
            iou = self.iou[1]
            metrics["fg_iou"] = iou
            metrics["fg_dice"] = 2 * iou / (1 + iou) if not math.isnan(iou) else math.nan
        return metrics

    def table(self) -> str:
        """The per-class table written to train.log (percentages; ``nan`` = undefined, left out of the mean)."""
        width = max(len("class"), *(len(n) for n in self.class_names))
        total = max(sum(self.pixels), 1)
        rows = [f"{'class':<{width}}  {'IoU':>6}  {'Acc':>6}  {'pixels%':>7}"]
        for name, iou, acc, pixels in zip(self.class_names, self.iou, self.acc, self.pixels):
            rows.append(f"{name:<{width}}  {_percent(iou)}  {_percent(acc)}  {100 * pixels / total:7.2f}")
        rows.append(
            f"{'mean':<{width}}  {_percent(self.miou)}  {_percent(self.macc)}  aAcc {_percent(self.aacc)}"
        )
        return "\n".join(rows)

    def as_dict(self) -> dict[str, object]:
        return {
            **self.flat(),
            "per_class": {
                name: {"iou": iou, "acc": acc, "pixels": pixels}
                for name, iou, acc, pixels in zip(self.class_names, self.iou, self.acc, self.pixels)
            },
        }


def _percent(value: float) -> str:
    return "   nan" if math.isnan(value) else f"{100 * value:6.2f}"


def scores_from_confusion(matrix: torch.Tensor, class_names: Sequence[str]) -> SegmentationScores:
    """mIoU, mAcc, aAcc and the per-class values of a confusion matrix (see the module docstring)."""
    matrix = matrix.detach().to("cpu", torch.float64)
    true_positive = matrix.diagonal()
    in_truth, in_prediction = matrix.sum(dim=1), matrix.sum(dim=0)
    union = in_truth + in_prediction - true_positive
    nan = torch.tensor(math.nan, dtype=torch.float64)
    iou = torch.where(union > 0, true_positive / union.clamp(min=1), nan)
    acc = torch.where(in_truth > 0, true_positive / in_truth.clamp(min=1), nan)
    total = float(in_truth.sum())
    return SegmentationScores(
        class_names=tuple(str(n) for n in class_names),
        iou=tuple(float(v) for v in iou),
        acc=tuple(float(v) for v in acc),
        pixels=tuple(int(v) for v in in_truth),
        miou=_nanmean(iou),
        macc=_nanmean(acc),
        aacc=float(true_positive.sum()) / total if total else math.nan,
    )


def _nanmean(values: torch.Tensor) -> float:
    defined = values[~values.isnan()]
    return float(defined.mean()) if defined.numel() else math.nan
