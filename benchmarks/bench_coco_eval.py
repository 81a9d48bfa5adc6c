"""Box-AP scoring time: pycocotools vs faster_coco_eval on the same synthetic predictions, in one run.

    python benchmarks/bench_coco_eval.py [--images 500] [--repeats 3] [--seed 0]

Ground truth and predictions are generated in memory as COCO dicts (several categories,
objects of all three COCO area ranges, a few crowd regions); predictions are jittered
copies of the ground truth plus false positives, a few thousand boxes in all. Both
backends go through ``litzoo.metrics.coco_eval.CocoEvaluator``, so the timing covers what
a validation epoch pays (results conversion, loadRes, evaluate, accumulate, summarize).
The script exits non-zero if the two backends disagree on any COCO statistic.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from litzoo.metrics.coco_eval import BOX_STAT_NAMES, CocoEvaluator

CATEGORY_IDS = (1, 3, 5, 8, 13)


def synthetic_ground_truth(num_images: int, rng: np.random.Generator) -> dict:
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        w, h = int(rng.integers(480, 641)), int(rng.integers(360, 481))
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": w, "height": h})
        for _ in range(int(rng.integers(2, 13))):
            side = float(np.exp(rng.uniform(np.log(12), np.log(300))))  # small, medium and large objects
            bw, bh = side * rng.uniform(0.6, 1.4), side * rng.uniform(0.6, 1.4)
            x, y = rng.uniform(0, max(w - bw, 1)), rng.uniform(0, max(h - bh, 1))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "bbox": [x, y, bw, bh],
                    "area": bw * bh,
                    "category_id": int(rng.choice(CATEGORY_IDS)),
                    "iscrowd": int(rng.random() < 0.02),
                }
            )
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": f"class_{c}"} for c in CATEGORY_IDS],
    }


def synthetic_predictions(gt: dict, rng: np.random.Generator) -> dict[int, dict]:
    by_image: dict[int, list[dict]] = {img["id"]: [] for img in gt["images"]}
    for ann in gt["annotations"]:
        by_image[ann["image_id"]].append(ann)
    label_of = {c: i + 1 for i, c in enumerate(CATEGORY_IDS)}
    outputs = {}
    for img in gt["images"]:
        boxes, labels, scores = [], [], []
        for ann in by_image[img["id"]]:
            if rng.random() < 0.1:
                continue  # a miss
            x, y, bw, bh = ann["bbox"]
            noise = rng.normal(0, 0.08, 4) * [bw, bh, bw, bh]
            boxes.append([x + noise[0], y + noise[1], x + bw + noise[2], y + bh + noise[3]])
            labels.append(label_of[ann["category_id"]] if rng.random() > 0.05 else int(rng.integers(1, 6)))
            scores.append(rng.uniform(0.2, 1.0))
        for _ in range(int(rng.integers(0, 5))):  # false positives
            x, y = rng.uniform(0, img["width"] - 20), rng.uniform(0, img["height"] - 20)
            boxes.append([x, y, x + rng.uniform(8, 150), y + rng.uniform(8, 150)])
            labels.append(int(rng.integers(1, 6)))
            scores.append(rng.uniform(0.0, 0.7))
        outputs[img["id"]] = {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "scores": torch.tensor(scores, dtype=torch.float32),
        }
    return outputs


def score(gt: dict, outputs: dict[int, dict], backend: str) -> tuple[float, dict[str, float]]:
    label_to_cat = {i + 1: c for i, c in enumerate(CATEGORY_IDS)}
    evaluator = CocoEvaluator(gt, ("bbox",), label_to_cat, backend=backend)
    start = time.perf_counter()
    ids = list(outputs)
    evaluator.update([outputs[i] for i in ids], ids)
    stats = evaluator.compute().metrics["bbox"]
    return time.perf_counter() - start, stats


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    gt = synthetic_ground_truth(args.images, rng)
    outputs = synthetic_predictions(gt, rng)
    num_boxes = sum(len(o["boxes"]) for o in outputs.values())
    print(
        f"{args.images} images, {len(gt['annotations'])} ground-truth boxes, {num_boxes} predicted boxes, "
        f"{len(CATEGORY_IDS)} categories; best of {args.repeats} runs"
    )

    results = {}
    for backend in ("pycocotools", "faster_coco_eval"):
        times = []
        for _ in range(args.repeats):
            elapsed, stats = score(gt, outputs, backend)
            times.append(elapsed)
        results[backend] = (min(times), stats)

    ref_time = results["pycocotools"][0]
    print(f"\n{'backend':<18} {'time (s)':>9} {'speed-up':>9} {'AP':>8} {'AP50':>8} {'AP75':>8} {'AR100':>8}")
    for backend, (elapsed, s) in results.items():
        print(
            f"{backend:<18} {elapsed:9.3f} {ref_time / elapsed:8.1f}x {s['map']:8.4f} {s['map_50']:8.4f} "
            f"{s['map_75']:8.4f} {s['mar_100']:8.4f}"
        )

    ref, fast = results["pycocotools"][1], results["faster_coco_eval"][1]
    diffs = {name: abs(ref[name] - fast[name]) for name in BOX_STAT_NAMES}
    worst = max(diffs, key=diffs.get)
    if diffs[worst] > 1e-12:
        print(f"\nMISMATCH: the backends differ on {worst} by {diffs[worst]:.3g}")
        return 1
    print(f"\nAll 12 COCO statistics identical across backends (largest difference {diffs[worst]:.1g}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
