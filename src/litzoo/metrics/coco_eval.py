"""COCO evaluation (box AP, mask AP, keypoint OKS AP) with the official ``COCOeval``.

:class:`CocoEvaluator` collects torchvision-style predictions image by image, turns them
into COCO results (xywh boxes, RLE masks, flattened keypoints, category ids mapped back
from contiguous labels) and scores them with ``pycocotools.cocoeval.COCOeval`` or, with
``backend="faster_coco_eval"``, with faster-coco-eval's C++ port of the same algorithm.

Under DDP each rank sees a shard; :meth:`CocoEvaluator.compute` gathers every rank's
results before scoring (rank 0 scores, the others receive its numbers), so no rank
scores only its own shard. Results are keyed by image id, which also removes the
duplicates that ``DistributedSampler`` adds to even out the shards.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from litzoo.errors import ConfigError, DependencyError

IOU_TYPES = ("bbox", "segm", "keypoints")
BACKENDS = ("pycocotools", "faster_coco_eval")
# Names of COCOeval.stats entries, in COCOeval's order (torchmetrics' names for boxes/masks).
BOX_STAT_NAMES = (
    "map",
    "map_50",
    "map_75",
    "map_small",
    "map_medium",
    "map_large",
    "mar_1",
    "mar_10",
    "mar_100",
    "mar_small",
    "mar_medium",
    "mar_large",
)
KEYPOINT_STAT_NAMES = (
    "map",
    "map_50",
    "map_75",
    "map_medium",
    "map_large",
    "mar",
    "mar_50",
    "mar_75",
    "mar_medium",
    "mar_large",
)


def stat_names(iou_type: str) -> tuple[str, ...]:
    return KEYPOINT_STAT_NAMES if iou_type == "keypoints" else BOX_STAT_NAMES


# --------------------------------------------------------------------------- prediction conversion


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def encode_masks(masks: Any, threshold: float = 0.5) -> list[dict]:
    """Binary or soft masks ``(N, [1,] H, W)`` -> COCO compressed RLE dicts with ``counts`` as str (JSON-ready)."""
    array = _to_numpy(masks)
    if array.ndim == 4:  # Mask R-CNN returns (N, 1, H, W) probabilities
        array = array[:, 0]
    if array.dtype != np.bool_ and array.dtype != np.uint8:
        array = array > threshold
    if len(array) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(array.transpose(1, 2, 0).astype(np.uint8)))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def predictions_to_coco_results(
    output: Mapping[str, Any],
    image_id: int,
    iou_types: Sequence[str],
    label_to_cat_id: Mapping[int, int] | None = None,
    mask_threshold: float = 0.5,
) -> dict[str, list[dict]]:
    """One image's torchvision output dict -> COCO results per IoU type (as torchvision's references write them)."""
    boxes = _to_numpy(output.get("boxes", np.zeros((0, 4)))).reshape(-1, 4).astype(np.float64)
    scores = _to_numpy(output.get("scores", np.zeros(0))).reshape(-1).astype(np.float64)
    labels = _to_numpy(output.get("labels", np.zeros(0))).reshape(-1).astype(np.int64)
    if label_to_cat_id is None:
        cat_ids = labels.tolist()
    else:
        unknown = sorted({int(x) for x in labels} - set(label_to_cat_id))
        if unknown:
            raise ValueError(
                f"Predicted labels {unknown} have no COCO category id (known labels: "
                f"{sorted(label_to_cat_id)}); the model's num_classes does not match the dataset."
            )
        cat_ids = [label_to_cat_id[int(x)] for x in labels]
    base = [
        {"image_id": int(image_id), "category_id": int(c), "score": float(s)} for c, s in zip(cat_ids, scores)
    ]
    results: dict[str, list[dict]] = {}
    for iou_type in iou_types:
        if iou_type == "bbox":
            xywh = boxes.copy()
            xywh[:, 2:] -= xywh[:, :2]
            results["bbox"] = [{**b, "bbox": [float(v) for v in box]} for b, box in zip(base, xywh)]
        elif iou_type == "segm":
            if "masks" not in output:
                raise ValueError("segm evaluation needs 'masks' in the model output (use Mask R-CNN).")
            rles = encode_masks(output["masks"], mask_threshold)
            results["segm"] = [{**b, "segmentation": rle} for b, rle in zip(base, rles)]
        elif iou_type == "keypoints":
            if "keypoints" not in output:
                raise ValueError("keypoints evaluation needs 'keypoints' in the model output.")
            kps = _to_numpy(output["keypoints"]).astype(np.float64)
            results["keypoints"] = [
                {**b, "keypoints": [float(v) for v in kp.reshape(-1)]} for b, kp in zip(base, kps)
            ]
        else:
            raise ValueError(f"Unknown IoU type '{iou_type}'; choose from {IOU_TYPES}.")
    return results


# --------------------------------------------------------------------------- scoring


def _quiet() -> contextlib.AbstractContextManager:
    return contextlib.redirect_stdout(io.StringIO())  # pycocotools prints progress and tables


def _as_coco(gt: COCO | Mapping | str | os.PathLike) -> COCO:
    if isinstance(gt, COCO):
        return gt
    if isinstance(gt, Mapping):
        coco = COCO()
        coco.dataset = dict(gt)
        with _quiet():
            coco.createIndex()
        return coco
    with _quiet():
        return COCO(os.fspath(gt))


def _faster_coco_eval() -> Any:
    try:
        import faster_coco_eval
    except ImportError as exc:
        raise DependencyError(
            "The 'faster_coco_eval' evaluation backend needs the faster-coco-eval package. Install it with "
            "`pip install faster-coco-eval` (or `pip install litzoo[fast]`), or use the pycocotools backend."
        ) from exc
    return faster_coco_eval


@dataclass
class ScoredType:
    """COCOeval's output for one IoU type."""

    stats: dict[str, float]
    per_class: list[dict]
    precision: np.ndarray | None = None


def score_coco(
    coco_gt: COCO,
    results: list[dict],
    iou_type: str,
    image_ids: Sequence[int] | None = None,
    backend: str = "pycocotools",
    kpt_oks_sigmas: Sequence[float] | None = None,
    class_names: Mapping[int, str] | None = None,
    gt_for_backend: Any | None = None,
) -> ScoredType:
    """Run COCOeval (evaluate, accumulate, summarize) on ``results`` and return named stats and per-class AP.

    ``image_ids`` restricts scoring to the images that were predicted on (torchvision's
    references do the same), so a partial validation pass is scored on its own images.
    ``gt_for_backend`` lets a caller reuse a faster_coco_eval ``COCO`` across calls.
    """
    if backend not in BACKENDS:
        raise ConfigError(
            f"Unknown COCO evaluation backend '{backend}'; choose one of {', '.join(BACKENDS)}."
        )
    results = [dict(r) for r in results]  # loadRes adds keys (area, id, bbox) to the dicts it gets
    if backend == "pycocotools":
        gt = coco_gt
        with _quiet():
            if results:
                dt = gt.loadRes(results)
            else:  # loadRes cannot take an empty list; an empty result set scores 0 AP as COCOeval defines it
                dt = COCO()
                dt.dataset = {
                    "images": list(gt.dataset["images"]),
                    "categories": copy.deepcopy(gt.dataset["categories"]),
                    "annotations": [],
                }
                dt.createIndex()
        evaluator = COCOeval(gt, dt, iou_type)
        if kpt_oks_sigmas is not None:
            evaluator.params.kpt_oks_sigmas = np.asarray(kpt_oks_sigmas, dtype=np.float64)
    else:
        fce = _faster_coco_eval()
        gt = gt_for_backend if gt_for_backend is not None else fce.COCO(copy.deepcopy(coco_gt.dataset))
        dt = gt.loadRes(results)
        kwargs = {"kpt_oks_sigmas": list(kpt_oks_sigmas)} if kpt_oks_sigmas is not None else {}
        evaluator = fce.COCOeval_faster(gt, dt, iou_type, **kwargs)
    if image_ids is not None:
        evaluator.params.imgIds = sorted(int(i) for i in image_ids)
    with _quiet():
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = {name: float(v) for name, v in zip(stat_names(iou_type), evaluator.stats)}
    precision = np.asarray(evaluator.eval["precision"])
    per_class = _per_class_ap(
        precision,
        list(evaluator.params.catIds),
        evaluator.params.iouThrs,
        coco_gt,
        class_names,
        evaluator.params.imgIds,
    )
    return ScoredType(stats=stats, per_class=per_class, precision=precision)


def _per_class_ap(
    precision: np.ndarray,
    cat_ids: list[int],
    iou_thresholds: np.ndarray,
    coco_gt: COCO,
    class_names: Mapping[int, str] | None,
    image_ids: Sequence[int],
) -> list[dict]:
    """Per-category AP from COCOeval's precision array [T, R, K, A, M] (all areas, most detections)."""
    image_set = set(image_ids)
    rows = []
    iou_50 = int(np.argmin(np.abs(np.asarray(iou_thresholds) - 0.5)))
    iou_75 = int(np.argmin(np.abs(np.asarray(iou_thresholds) - 0.75)))

    def mean_valid(p: np.ndarray) -> float:
        valid = p[p > -1]
        return float(valid.mean()) if valid.size else float("nan")

    num_gt: dict[int, int] = {}
    for ann in coco_gt.anns.values():
        if not ann.get("iscrowd", 0) and ann["image_id"] in image_set:
            num_gt[ann["category_id"]] = num_gt.get(ann["category_id"], 0) + 1
    for k, cat_id in enumerate(cat_ids):
        p = precision[:, :, k, 0, -1]
        name = (
            class_names.get(cat_id) if class_names else coco_gt.cats.get(cat_id, {}).get("name", str(cat_id))
        )
        rows.append(
            {
                "category_id": int(cat_id),
                "name": name,
                "ap": mean_valid(p),
                "ap_50": mean_valid(p[iou_50]),
                "ap_75": mean_valid(p[iou_75]),
                "num_gt": num_gt.get(cat_id, 0),
            }
        )
    return rows


# --------------------------------------------------------------------------- evaluator


@dataclass
class CocoEvalResult:
    """Scores of one evaluation pass.

    ``metrics[iou_type]`` maps stat names (``map``, ``map_50``, ...) to COCOeval's values;
    -1 means COCOeval had no ground truth for that area range. ``per_class[iou_type]`` is
    the per-category table and ``detections[iou_type]`` the COCO results that were scored.
    """

    metrics: dict[str, dict[str, float]]
    per_class: dict[str, list[dict]]
    detections: dict[str, list[dict]]
    image_ids: list[int] = field(default_factory=list)

    def flat(self, primary: str | None = None) -> dict[str, float]:
        """One dict for logging: the ``primary`` IoU type unprefixed, the others as ``<type>_<stat>``."""
        primary = primary or next(iter(self.metrics))
        out: dict[str, float] = {}
        for iou_type, stats in self.metrics.items():
            prefix = "" if iou_type == primary else f"{iou_type}_"
            out.update({f"{prefix}{k}": v for k, v in stats.items()})
        return out

    def save_detections(
        self, directory: str | os.PathLike, stem: str = "detections", primary: str | None = None
    ) -> list[Path]:
        """Write the scored results (COCO results format) for submission or re-scoring.

        One file per IoU type, ``<stem>_<iou_type>.json``; the ``primary`` type, if given, is
        written as plain ``<stem>.json`` (e.g. ``detections_test.json`` for boxes and
        ``detections_test_segm.json`` for masks). Written atomically, so a reader never sees
        half a file.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for iou_type, results in self.detections.items():
            name = f"{stem}.json" if iou_type == primary else f"{stem}_{iou_type}.json"
            path = directory / name
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_text(json.dumps(results))
            os.replace(tmp, path)
            paths.append(path)
        return paths

    def per_class_table(self, iou_type: str | None = None) -> str:
        """The per-class AP table as aligned text for the log, in percent (AP x100, as COCO's papers
        quote it; the logged metrics stay fractions), with the ground-truth count per class."""
        iou_type = iou_type or next(iter(self.per_class))
        rows = self.per_class[iou_type]
        width = max([len("class")] + [len(str(r["name"])) for r in rows])

        def fmt(v: float) -> str:
            return "   nan" if math.isnan(v) else f"{100 * v:6.2f}"

        lines = [f"{'class':<{width}}  {'id':>4}  {'AP':>6}  {'AP50':>6}  {'AP75':>6}  {'#gt':>6}"]
        for r in rows:
            lines.append(
                f"{str(r['name']):<{width}}  {r['category_id']:>4}  {fmt(r['ap'])}  "
                f"{fmt(r['ap_50'])}  {fmt(r['ap_75'])}  {r['num_gt']:>6}"
            )
        return "\n".join(lines)


def gather_across_ranks(obj: Any) -> list[Any]:
    """Every rank's ``obj`` as a list (rank order); ``[obj]`` when torch.distributed is not running."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def _sort_key(key: Hashable) -> tuple:
    return tuple(key) if isinstance(key, tuple) else (key,)


def _broadcast_from_rank0(obj: Any) -> Any:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class CocoEvaluator:
    """Accumulate torchvision detection outputs and score them with COCOeval.

    Args:
        coco_gt: the ground truth, as a ``pycocotools.COCO`` (e.g. ``CocoDetection.coco``; it is
            copied, not modified, when masks are scored), a COCO dataset dict or the path of a JSON.
        iou_types: any of ``"bbox"``, ``"segm"``, ``"keypoints"``.
        label_to_cat_id: contiguous label -> COCO category id; ``None`` if labels already are ids.
        backend: ``"pycocotools"`` (reference) or ``"faster_coco_eval"`` (same numbers, faster).
        kpt_oks_sigmas: per-keypoint OKS sigmas; required unless the keypoints are COCO's 17.
        mask_threshold: probability above which a soft mask pixel is foreground.
    """

    def __init__(
        self,
        coco_gt: COCO | Mapping | str | os.PathLike,
        iou_types: Sequence[str] = ("bbox",),
        label_to_cat_id: Mapping[int, int] | None = None,
        backend: str = "pycocotools",
        kpt_oks_sigmas: Sequence[float] | None = None,
        mask_threshold: float = 0.5,
    ) -> None:
        unknown = [t for t in iou_types if t not in IOU_TYPES]
        if unknown or not iou_types:
            raise ConfigError(f"Unknown COCO IoU type(s) {unknown}; choose from {', '.join(IOU_TYPES)}.")
        if backend not in BACKENDS:
            raise ConfigError(
                f"Unknown COCO evaluation backend '{backend}'; choose one of {', '.join(BACKENDS)}."
            )
        self.coco_gt = _as_coco(coco_gt)
        if "segm" in iou_types and self.coco_gt is coco_gt:
            # COCOeval's segm pass replaces the ground truth's polygons with RLE in place; score on a
            # private copy so a dataset sharing this COCO object keeps its annotations as loaded.
            self.coco_gt = _as_coco(copy.deepcopy(coco_gt.dataset))
        self.iou_types = tuple(iou_types)
        self.label_to_cat_id = dict(label_to_cat_id) if label_to_cat_id is not None else None
        self.backend = backend
        self.mask_threshold = mask_threshold
        self.kpt_oks_sigmas = self._check_sigmas(kpt_oks_sigmas) if "keypoints" in self.iou_types else None
        self._faster_gt: Any | None = None
        self.reset()

    def _check_sigmas(self, sigmas: Sequence[float] | None) -> list[float] | None:
        lengths = {len(c.get("keypoints", [])) for c in self.coco_gt.cats.values() if c.get("keypoints")}
        num_keypoints = lengths.pop() if len(lengths) == 1 else None
        if sigmas is None:
            if num_keypoints == 17:
                return None  # COCOeval's built-in person sigmas
            raise ConfigError(
                f"Keypoint evaluation needs one OKS sigma per keypoint; the ground truth has {num_keypoints} "
                "keypoints and only COCO's 17 person keypoints have built-in sigmas. Set kpt_oks_sigmas."
            )
        if num_keypoints is not None and len(sigmas) != num_keypoints:
            raise ConfigError(
                f"kpt_oks_sigmas has {len(sigmas)} values but the ground truth has {num_keypoints} "
                "keypoints per instance; give one sigma per keypoint."
            )
        return [float(s) for s in sigmas]

    def reset(self) -> None:
        """Forget accumulated predictions (call at the start of each evaluation pass)."""
        # key -> (image id, COCO results per IoU type). The key is the image id for whole-image
        # predictions; top-down pose adds one entry per person box under its own key.
        self._results: dict[Hashable, tuple[int, dict[str, list[dict]]]] = {}

    def update(self, outputs: Sequence[Mapping[str, Any]], image_ids: Sequence[int]) -> None:
        """Add one batch: model outputs (boxes xyxy, labels, scores, [masks], [keypoints]) and their image ids."""
        if len(outputs) != len(image_ids):
            raise ValueError(f"update() got {len(outputs)} outputs for {len(image_ids)} image ids.")
        for output, image_id in zip(outputs, image_ids):
            image_id = int(image_id.item() if isinstance(image_id, torch.Tensor) else image_id)
            self.add(
                image_id,
                predictions_to_coco_results(
                    output, image_id, self.iou_types, self.label_to_cat_id, self.mask_threshold
                ),
            )

    def add(self, image_id: int, results: Mapping[str, Sequence[dict]], key: Hashable | None = None) -> None:
        """Add ready COCO results of one image, or of one part of it under a unique ``key``.

        A second call with the same key replaces the first: that is how the duplicates a
        distributed sampler adds to even out the shards collapse. Top-down pose predicts one
        person box per sample, so it adds each box under its own key (e.g. ``(image_id, index)``);
        the image is scored once with all of its boxes.
        """
        image_id = int(image_id)
        self._results[image_id if key is None else key] = (
            image_id,
            {t: [dict(r) for r in results.get(t, ())] for t in self.iou_types},
        )

    @property
    def num_images(self) -> int:
        return len({image_id for image_id, _ in self._results.values()})

    def compute(self) -> CocoEvalResult:
        """Gather all ranks' predictions and score them; every rank gets the same result."""
        merged: dict[Hashable, tuple[int, dict[str, list[dict]]]] = {}
        for part in gather_across_ranks(self._results):
            merged.update(part)
        is_rank0 = not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
        result = self._score(merged) if is_rank0 else None
        return _broadcast_from_rank0(result)

    def _score(self, merged: dict[Hashable, tuple[int, dict[str, list[dict]]]]) -> CocoEvalResult:
        # A fixed order (by image, then key) makes the results, and so COCOeval's tie-breaking
        # between equal scores, independent of which rank predicted what.
        entries = [merged[k] for k in sorted(merged, key=lambda k: (merged[k][0], _sort_key(k)))]
        image_ids = sorted({image_id for image_id, _ in entries})
        metrics, per_class, detections = {}, {}, {}
        for iou_type in self.iou_types:
            results = [r for _, by_type in entries for r in by_type[iou_type]]
            if self.backend == "faster_coco_eval" and self._faster_gt is None:
                self._faster_gt = _faster_coco_eval().COCO(copy.deepcopy(self.coco_gt.dataset))
            scored = score_coco(
                self.coco_gt,
                results,
                iou_type,
                image_ids,
                self.backend,
                self.kpt_oks_sigmas if iou_type == "keypoints" else None,
                gt_for_backend=self._faster_gt,
            )
            metrics[iou_type] = scored.stats
            per_class[iou_type] = scored.per_class
            detections[iou_type] = results
        return CocoEvalResult(
            metrics=metrics, per_class=per_class, detections=detections, image_ids=image_ids
        )
