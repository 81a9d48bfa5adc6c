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

from collections.abc import Hashable, Mapping, Sequence
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

    Targets need ``boxes``, ``labels`` and optionally ``difficult`` (bool) and ``image_id``;
    outputs need ``boxes``, ``labels``, ``scores``. ``compute()`` returns ``{"map": ...,
    "ap/<class>": ...}`` averaged over the classes that have at least one non-difficult object.

    Images are keyed by their target's ``image_id`` (a repeated image replaces the earlier
    entry, which collapses the duplicates a distributed sampler adds); targets without one get
    a running number. Under DDP, :meth:`compute` gathers every rank's images before scoring,
    so every rank gets the mAP of the whole set; that needs ``image_id`` in the targets.
    """

    def __init__(
        self, class_names: Sequence[str], use_07_metric: bool = True, iou_threshold: float = 0.5
    ) -> None:
        self.class_names = list(class_names)  # index 0 = label 1 (background is not a class here)
        self.use_07_metric = use_07_metric
        self.iou_threshold = iou_threshold
        self.reset()

    def reset(self) -> None:
        # key -> (gt boxes, gt labels, gt difficult, [(label, score, box)] detections)
        self._images: dict[Hashable, tuple[np.ndarray, np.ndarray, np.ndarray, list]] = {}
        self.scored_images: dict[Hashable, tuple[np.ndarray, np.ndarray, np.ndarray, list]] = {}
        self._next_key = 0

    def _key(self, target: Mapping[str, Any]) -> Hashable:
        image_id = target.get("image_id")
        if image_id is None:
            self._next_key += 1
            return ("unnamed", self._next_key - 1)
        return int(image_id.item()) if isinstance(image_id, torch.Tensor) else image_id

    def update(self, outputs: Sequence[Mapping[str, Any]], targets: Sequence[Mapping[str, Any]]) -> None:
        for output, target in zip(outputs, targets):
            boxes = _array(target["boxes"], np.float64).reshape(-1, 4)
            labels = _array(target["labels"], np.int64).reshape(-1)
            difficult = target.get("difficult")
            difficult = (
                np.zeros(len(labels), dtype=bool)
                if difficult is None
                else _array(difficult, bool).reshape(-1)
            )
            pboxes = _array(output["boxes"], np.float64).reshape(-1, 4)
            plabels = _array(output["labels"], np.int64).reshape(-1)
            pscores = _array(output["scores"], np.float64).reshape(-1)
            detections = [(int(c), float(p), b.tolist()) for b, c, p in zip(pboxes, plabels, pscores)]
            self._images[self._key(target)] = (boxes, labels, difficult, detections)

    def compute(self) -> dict[str, float]:
        from litzoo.metrics.coco_eval import gather_across_ranks

        images: dict[Hashable, tuple[np.ndarray, np.ndarray, np.ndarray, list]] = {}
        for part in gather_across_ranks(self._images):
            images.update(part)
        self.scored_images = images  # every rank's images, e.g. for writing the scored detections
        keys = sorted(images, key=repr)  # one order on every rank, whichever rank saw which image
        per_class: dict[str, float] = {}
        for label, name in enumerate(self.class_names, start=1):
            gt = {k: (images[k][0][images[k][1] == label], images[k][2][images[k][1] == label]) for k in keys}
            dets = [(k, s, box) for k in keys for lab, s, box in images[k][3] if lab == label]
            per_class[name] = evaluate_class(dets, gt, self.iou_threshold, self.use_07_metric).ap
        valid = [v for v in per_class.values() if not np.isnan(v)]
        result = {"map": float(np.mean(valid)) if valid else float("nan")}
        result.update({f"ap/{name}": v for name, v in per_class.items()})
        return result


def _array(value: Any, dtype: Any) -> np.ndarray:
    return np.asarray(torch.as_tensor(value).detach().cpu(), dtype=dtype)
