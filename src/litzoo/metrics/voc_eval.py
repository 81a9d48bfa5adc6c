"""PASCAL VOC detection mAP at IoU 0.5, as the official devkit computes it.

Per class, detections over the whole test set are sorted by score; each is a true
positive if its best-overlapping ground truth (IoU >= 0.5, ``VOCevaldet.m``) in the same image is not yet
taken, a false positive otherwise, and ignored when that ground truth is marked
``difficult``. Difficult objects do not count as positives either. AP is then either the
VOC2007 11-point interpolated precision (``use_07_metric=True``) or the area under the
monotone precision envelope used from VOC2010 on.

Boxes are continuous XYXY, as litzoo's VOC loader produces them (it turns the devkit's
1-based inclusive pixel boxes into ``[xmin - 1, ymin - 1, xmax, ymax]``); a plain IoU on
those equals the devkit's ``+1`` IoU on the raw XML numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torchvision.ops import box_iou


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = False) -> float:
    """Average precision from a recall/precision curve (devkit's ``VOCap`` / 11-point rule)."""
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if use_07_metric:
        ap = 0.0
        for t in np.linspace(0.0, 1.0, 11):
            above = precision[recall >= t]
            ap += (above.max() if above.size else 0.0) / 11.0
        return float(ap)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # precision envelope, non-increasing in recall
    changes = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


@dataclass
class ClassResult:
    ap: float
    recall: np.ndarray
    precision: np.ndarray
    num_positives: int


def evaluate_class(
    detections: Sequence[tuple[Any, float, Sequence[float]]],
    ground_truth: Mapping[Any, tuple[np.ndarray, np.ndarray]],
    iou_threshold: float = 0.5,
    use_07_metric: bool = False,
) -> ClassResult:
    """AP of one class.

    Args:
        detections: ``(image_key, score, xyxy box)`` for every detection of this class.
        ground_truth: ``image_key -> (boxes (G, 4), difficult (G,) bool)`` for this class.
    """
    num_positives = int(sum(int((~np.asarray(d, dtype=bool)).sum()) for _, d in ground_truth.values()))
    taken = {key: np.zeros(len(boxes), dtype=bool) for key, (boxes, _) in ground_truth.items()}
    scores = np.array([d[1] for d in detections], dtype=np.float64)
    # Stable sort so equal scores keep their input order (MATLAB's sort, used by the devkit, is stable).
    order = np.argsort(-scores, kind="stable")
    tp = np.zeros(len(detections))
    fp = np.zeros(len(detections))
    for rank, index in enumerate(order):
        key, _, box = detections[index]
        gt_boxes, difficult = ground_truth.get(key, (np.zeros((0, 4)), np.zeros(0, dtype=bool)))
        if len(gt_boxes) == 0:
            fp[rank] = 1
            continue
        ious = box_iou(
            torch.as_tensor([box], dtype=torch.float64),
            torch.as_tensor(np.asarray(gt_boxes), dtype=torch.float64),
        )[0].numpy()
        best = int(ious.argmax())
        if ious[best] >= iou_threshold:
            if difficult[best]:
                continue  # neither true nor false positive
            if not taken[key][best]:
                tp[rank] = 1
                taken[key][best] = True
            else:
                fp[rank] = 1
        else:
            fp[rank] = 1
    tp_cum, fp_cum = np.cumsum(tp), np.cumsum(fp)
    recall = tp_cum / num_positives if num_positives > 0 else np.full_like(tp_cum, np.nan)
    precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    ap = voc_ap(recall, precision, use_07_metric) if num_positives > 0 else float("nan")
    return ClassResult(ap=ap, recall=recall, precision=precision, num_positives=num_positives)


class VOCMeanAP:
    """Accumulate torchvision-style predictions/targets over a test set and compute VOC mAP@0.5.

    Targets need ``boxes``, ``labels`` and optionally ``difficult`` (bool); outputs need
    ``boxes``, ``labels``, ``scores``. ``compute()`` returns ``{"map": ..., "ap/<class>": ...}``
    averaged over the classes that have at least one non-difficult object.
    """

    def __init__(
        self, class_names: Sequence[str], use_07_metric: bool = True, iou_threshold: float = 0.5
    ) -> None:
        self.class_names = list(class_names)  # index 0 = label 1 (background is not a class here)
        self.use_07_metric = use_07_metric
        self.iou_threshold = iou_threshold
        self.reset()

    def reset(self) -> None:
        self._detections: list[tuple[int, int, float, list[float]]] = []  # (image, label, score, box)
        self._gt: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._next_key = 0

    def update(self, outputs: Sequence[Mapping[str, Any]], targets: Sequence[Mapping[str, Any]]) -> None:
        for output, target in zip(outputs, targets):
            key = self._next_key
            self._next_key += 1
            boxes = np.asarray(torch.as_tensor(target["boxes"]).detach().cpu(), dtype=np.float64).reshape(
                -1, 4
            )
            labels = np.asarray(torch.as_tensor(target["labels"]).cpu(), dtype=np.int64).reshape(-1)
            difficult = target.get("difficult")
            difficult = (
                np.zeros(len(labels), dtype=bool)
                if difficult is None
                else np.asarray(torch.as_tensor(difficult).cpu(), dtype=bool).reshape(-1)
            )
            self._gt[key] = (boxes, labels, difficult)
            pboxes = np.asarray(torch.as_tensor(output["boxes"]).detach().cpu(), dtype=np.float64).reshape(
                -1, 4
            )
            plabels = np.asarray(torch.as_tensor(output["labels"]).cpu()).reshape(-1)
            pscores = np.asarray(torch.as_tensor(output["scores"]).detach().cpu(), dtype=np.float64).reshape(
                -1
            )
            for box, label, score in zip(pboxes, plabels, pscores):
                self._detections.append((key, int(label), float(score), box.tolist()))

    def compute(self) -> dict[str, float]:
        per_class: dict[str, float] = {}
        for label, name in enumerate(self.class_names, start=1):
            gt = {k: (b[lab == label], d[lab == label]) for k, (b, lab, d) in self._gt.items()}
            dets = [(k, s, box) for k, lab, s, box in self._detections if lab == label]
            per_class[name] = evaluate_class(dets, gt, self.iou_threshold, self.use_07_metric).ap
        valid = [v for v in per_class.values() if not np.isnan(v)]
        result = {"map": float(np.mean(valid)) if valid else float("nan")}
        result.update({f"ap/{name}": v for name, v in per_class.items()})
        return result
