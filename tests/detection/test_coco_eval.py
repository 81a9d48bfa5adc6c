"""COCO evaluation parity: CocoEvaluator equals raw pycocotools (and faster_coco_eval) on the same predictions."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from litzoo.datamodules.detection.shapes import SHAPE_KPT_OKS_SIGMAS, generate_shapes_coco
from litzoo.errors import ConfigError
from litzoo.metrics.coco_eval import BOX_STAT_NAMES, KEYPOINT_STAT_NAMES, CocoEvaluator

# Shapes category ids are 1, 2, 4; contiguous labels 1, 2, 3 (written out by hand, not taken from the code).
LABEL_TO_CAT = {1: 1, 2: 2, 3: 4}
CAT_TO_LABEL = {v: k for k, v in LABEL_TO_CAT.items()}


def load(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


@pytest.fixture(scope="module")
def gt(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = generate_shapes_coco(
        tmp_path_factory.mktemp("eval") / "shapes",
        num_train=1,
        num_val=30,
        image_size=(96, 128),
        seed=5,
        crowd_fraction=0.3,
    )
    return {
        "instances": load(root / "annotations" / "instances_val2017.json"),
        "keypoints": load(root / "annotations" / "person_keypoints_val2017.json"),
        "instances_file": root / "annotations" / "instances_val2017.json",
    }


def noisy_predictions(coco: COCO, seed: int, keypoints: bool = False) -> dict[int, dict]:
    """torchvision-style outputs: jittered GT boxes/masks/keypoints, some misses, some false positives."""
    rng = np.random.default_rng(seed)
    outputs = {}
    for image_id in sorted(coco.getImgIds()):
        img = coco.imgs[image_id]
        h, w = img["height"], img["width"]
        boxes, labels, scores, masks, kps = [], [], [], [], []
        for ann in coco.imgToAnns[image_id]:
            if ann["iscrowd"] or rng.random() < 0.15:
                continue
            x, y, bw, bh = ann["bbox"]
            boxes.append(np.array([x, y, x + bw, y + bh]) + rng.normal(0, 2.0, 4))
            labels.append(1 if keypoints else CAT_TO_LABEL[ann["category_id"]])
            scores.append(rng.uniform(0.3, 1.0))
            masks.append(np.roll(coco.annToMask(ann), int(rng.integers(-3, 4)), axis=1))
            if keypoints:
                k = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
                kps.append(
                    np.concatenate([k[:, :2] + rng.normal(0, 1.5, (len(k), 2)), np.ones((len(k), 1))], 1)
                )
        for _ in range(int(rng.integers(0, 3))):  # false positives
            x1, y1 = rng.uniform(0, w - 20), rng.uniform(0, h - 20)
            boxes.append(np.array([x1, y1, x1 + rng.uniform(5, 20), y1 + rng.uniform(5, 20)]))
            labels.append(1 if keypoints else int(rng.integers(1, 4)))
            scores.append(rng.uniform(0.0, 0.6))
            m = np.zeros((h, w), dtype=np.uint8)
            m[int(y1) : int(y1) + 8, int(x1) : int(x1) + 8] = 1
            masks.append(m)
            if keypoints:
                kps.append(
                    np.concatenate([rng.uniform(0, w, (4, 1)), rng.uniform(0, h, (4, 1)), np.ones((4, 1))], 1)
                )
        out = {
            "boxes": torch.tensor(np.array(boxes).reshape(-1, 4), dtype=torch.float32),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "scores": torch.tensor(scores, dtype=torch.float32),
            "masks": torch.tensor(np.array(masks).reshape(-1, 1, h, w), dtype=torch.float32) * 0.9,
        }
        if keypoints:
            out["keypoints"] = torch.tensor(np.array(kps).reshape(-1, 4, 3), dtype=torch.float32)
        outputs[image_id] = out
    return outputs


def reference_results(outputs: dict[int, dict], iou_type: str, label_to_cat: dict[int, int]) -> list[dict]:
    """COCO results written independently of litzoo, the way the COCO results format documents them."""
    results = []
    for image_id, out in outputs.items():
        for i in range(len(out["boxes"])):
            entry = {
                "image_id": image_id,
                "category_id": label_to_cat[int(out["labels"][i])],
                "score": float(out["scores"][i]),
            }
            if iou_type == "bbox":
                x1, y1, x2, y2 = out["boxes"][i].tolist()
                entry["bbox"] = [x1, y1, x2 - x1, y2 - y1]
            elif iou_type == "segm":
                m = (out["masks"][i, 0].numpy() > 0.5).astype(np.uint8)
                rle = mask_utils.encode(np.asfortranarray(m))
                entry["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
            else:
                entry["keypoints"] = out["keypoints"][i].reshape(-1).tolist()
            results.append(entry)
    return results


def pycocotools_stats(coco: COCO, results: list[dict], iou_type: str, image_ids: list[int]) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        dt = coco.loadRes(results)
        e = COCOeval(coco, dt, iou_type)
        e.params.imgIds = image_ids
        if iou_type == "keypoints":
            e.params.kpt_oks_sigmas = np.array(SHAPE_KPT_OKS_SIGMAS)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e.stats


def run_evaluator(coco: COCO, outputs: dict[int, dict], iou_types, backend="pycocotools", **kwargs):
    ev = CocoEvaluator(coco, iou_types, backend=backend, **kwargs)
    ids = list(outputs)
    for start in range(0, len(ids), 4):  # batches of 4 images, as a validation loop would
        chunk = ids[start : start + 4]
        ev.update([outputs[i] for i in chunk], chunk)
    return ev.compute()


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_box_and_mask_ap_equal_pycocotools(gt: dict, iou_type: str) -> None:
    coco = gt["instances"]
    outputs = noisy_predictions(coco, seed=1)
    result = run_evaluator(coco, outputs, (iou_type,), label_to_cat_id=LABEL_TO_CAT)
    expected = pycocotools_stats(
        coco, reference_results(outputs, iou_type, LABEL_TO_CAT), iou_type, sorted(outputs)
    )
    got = [result.metrics[iou_type][name] for name in BOX_STAT_NAMES]
    np.testing.assert_array_equal(got, expected)
    assert 0.2 < result.metrics[iou_type]["map"] < 0.95  # a meaningful, imperfect score


def test_keypoint_ap_equals_pycocotools(gt: dict) -> None:
    coco = gt["keypoints"]
    outputs = noisy_predictions(coco, seed=2, keypoints=True)
    result = run_evaluator(
        coco, outputs, ("keypoints",), label_to_cat_id={1: 1}, kpt_oks_sigmas=SHAPE_KPT_OKS_SIGMAS
    )
    expected = pycocotools_stats(
        coco, reference_results(outputs, "keypoints", {1: 1}), "keypoints", sorted(outputs)
    )
    np.testing.assert_array_equal([result.metrics["keypoints"][n] for n in KEYPOINT_STAT_NAMES], expected)
    assert 0.1 < result.metrics["keypoints"]["map"] < 0.95


def perfect_predictions(coco: COCO, keypoints: bool = False) -> dict[int, dict]:
    outputs = {}
    for image_id in sorted(coco.getImgIds()):
        anns = [a for a in coco.imgToAnns[image_id] if not a["iscrowd"]]
        h, w = coco.imgs[image_id]["height"], coco.imgs[image_id]["width"]
        out = {
            "boxes": torch.tensor(
                [
                    [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                    for a in anns
                ],
                dtype=torch.float64,
            ).reshape(-1, 4),
            "labels": torch.tensor([1 if keypoints else CAT_TO_LABEL[a["category_id"]] for a in anns]),
            "scores": torch.ones(len(anns)),
            "masks": torch.tensor(np.array([coco.annToMask(a) for a in anns]).reshape(-1, h, w)),
        }
        if keypoints:
            out["keypoints"] = torch.tensor([a["keypoints"] for a in anns], dtype=torch.float64).reshape(
                -1, 4, 3
            )
        outputs[image_id] = out
    return outputs


@pytest.mark.parametrize("backend", ["pycocotools", "faster_coco_eval"])
def test_perfect_predictions_score_exactly_one(gt: dict, backend: str) -> None:
    boxes_masks = run_evaluator(
        gt["instances"],
        perfect_predictions(gt["instances"]),
        ("bbox", "segm"),
        backend,
        label_to_cat_id=LABEL_TO_CAT,
    )
    kps = run_evaluator(
        gt["keypoints"],
        perfect_predictions(gt["keypoints"], keypoints=True),
        ("keypoints",),
        backend,
        label_to_cat_id={1: 1},
        kpt_oks_sigmas=SHAPE_KPT_OKS_SIGMAS,
    )
    for metrics in (boxes_masks.metrics["bbox"], boxes_masks.metrics["segm"], kps.metrics["keypoints"]):
        assert metrics["map"] == 1.0 and metrics["map_50"] == 1.0 and metrics["map_75"] == 1.0
        # Every stat is perfect (or -1: no ground truth in that area range) except mar_1, which
        # cannot reach 1 on images holding more than one object of a class.
        assert all(v in (1.0, -1.0) for k, v in metrics.items() if k != "mar_1"), str(metrics)
    assert [row["ap"] for row in boxes_masks.per_class["bbox"]] == [1.0, 1.0, 1.0]
    num_gt = {
        c: sum(1 for a in gt["instances"].anns.values() if a["category_id"] == c and not a["iscrowd"])
        for c in (1, 2, 4)
    }
    assert {r["category_id"]: r["num_gt"] for r in boxes_masks.per_class["bbox"]} == num_gt
    assert boxes_masks.flat()["map"] == 1.0 and boxes_masks.flat()["segm_map"] == 1.0


def test_backends_agree_on_imperfect_predictions(gt: dict) -> None:
    outputs = noisy_predictions(gt["instances"], seed=4)
    ref = run_evaluator(gt["instances"], outputs, ("bbox", "segm"), label_to_cat_id=LABEL_TO_CAT)
    fast = run_evaluator(
        gt["instances"], outputs, ("bbox", "segm"), "faster_coco_eval", label_to_cat_id=LABEL_TO_CAT
    )
    for iou_type in ("bbox", "segm"):
        for name in BOX_STAT_NAMES:
            assert fast.metrics[iou_type][name] == pytest.approx(ref.metrics[iou_type][name], abs=1e-12), name
    kp_out = noisy_predictions(gt["keypoints"], seed=6, keypoints=True)
    kw = {"label_to_cat_id": {1: 1}, "kpt_oks_sigmas": SHAPE_KPT_OKS_SIGMAS}
    ref_kp = run_evaluator(gt["keypoints"], kp_out, ("keypoints",), **kw).metrics["keypoints"]
    fast_kp = run_evaluator(gt["keypoints"], kp_out, ("keypoints",), "faster_coco_eval", **kw).metrics[
        "keypoints"
    ]
    assert fast_kp == pytest.approx(ref_kp, abs=1e-12)


@pytest.mark.parametrize("backend", ["pycocotools", "faster_coco_eval"])
def test_no_detections_scores_zero(gt: dict, backend: str) -> None:
    empty = {
        "boxes": torch.zeros(0, 4),
        "labels": torch.zeros(0, dtype=torch.int64),
        "scores": torch.zeros(0),
        "masks": torch.zeros(0, 1, 96, 128),
    }
    ids = sorted(gt["instances"].getImgIds())
    result = run_evaluator(
        gt["instances"], dict.fromkeys(ids, empty), ("bbox", "segm"), backend, label_to_cat_id=LABEL_TO_CAT
    )
    assert result.metrics["bbox"]["map"] == 0.0 and result.metrics["segm"]["mar_100"] == 0.0
    assert result.detections == {"bbox": [], "segm": []}


def test_only_predicted_images_are_scored_and_duplicates_collapse(gt: dict) -> None:
    coco = gt["instances"]
    perfect = perfect_predictions(coco)
    ids = sorted(perfect)[:10]
    ev = CocoEvaluator(coco, ("bbox",), LABEL_TO_CAT)
    ev.update([perfect[i] for i in ids], ids)
    ev.update([perfect[ids[0]]], [torch.tensor(ids[0])])  # a DistributedSampler pad repeats an image
    result = ev.compute()
    assert result.image_ids == ids and result.metrics["bbox"]["map"] == 1.0
    assert len(result.detections["bbox"]) == sum(len(perfect[i]["boxes"]) for i in ids)


def test_saved_detections_rescore_identically(gt: dict, tmp_path: Path) -> None:
    coco = gt["instances"]
    outputs = noisy_predictions(coco, seed=8)
    result = run_evaluator(coco, outputs, ("bbox", "segm"), label_to_cat_id=LABEL_TO_CAT)
    paths = result.save_detections(tmp_path)
    assert [p.name for p in paths] == ["detections_bbox.json", "detections_segm.json"]
    saved = json.loads(paths[0].read_text())
    assert {d["category_id"] for d in saved} <= {1, 2, 4}  # ids mapped back, not contiguous labels
    rescored = pycocotools_stats(coco, saved, "bbox", sorted(outputs))
    np.testing.assert_array_equal(rescored, [result.metrics["bbox"][n] for n in BOX_STAT_NAMES])
    table = result.per_class_table("bbox")
    assert table.splitlines()[0].split() == ["class", "id", "AP", "AP50", "AP75", "#gt"]
    assert "triangle" in table


def test_bad_arguments(gt: dict) -> None:
    with pytest.raises(ConfigError, match="kpt_oks_sigmas"):
        CocoEvaluator(gt["keypoints"], ("keypoints",))
    with pytest.raises(ConfigError, match="one sigma per keypoint"):
        CocoEvaluator(gt["keypoints"], ("keypoints",), kpt_oks_sigmas=[0.1, 0.1])
    with pytest.raises(ConfigError, match="backend"):
        CocoEvaluator(gt["instances"], ("bbox",), backend="nope")
    ev = CocoEvaluator(gt["instances"], ("bbox",), LABEL_TO_CAT)
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        ev.update([{"boxes": torch.ones(1, 4), "labels": torch.tensor([7]), "scores": torch.ones(1)}], [1])


# --------------------------------------------------------------------------- DDP: two gloo processes


def _ddp_worker(
    rank: int,
    world: int,
    init_file: str,
    gt_file: str,
    out_dir: str,
    shards: list[list[int]],
    outputs: dict[int, dict],
) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        ev = CocoEvaluator(gt_file, ("bbox",), LABEL_TO_CAT)
        ev.update([outputs[i] for i in shards[rank]], shards[rank])
        result = ev.compute()
        Path(out_dir, f"rank{rank}.json").write_text(
            json.dumps({"local": ev.num_images, **result.metrics["bbox"]})
        )
    finally:
        dist.destroy_process_group()


def test_ddp_ranks_gather_before_scoring(gt: dict, tmp_path: Path) -> None:
    coco = gt["instances"]
    outputs = noisy_predictions(coco, seed=9)
    ids = sorted(outputs)
    # DistributedSampler-style interleaved shards, the shorter one padded with a repeat of the first image.
    shards = [ids[0::2], ids[1::2]]
    if len(shards[1]) < len(shards[0]):
        shards[1].append(ids[0])
    # The file, not coco.dataset: the raw-pycocotools reference runs above rewrote its polygons as RLE.
    gt_file = gt["instances_file"]
    mp.spawn(
        _ddp_worker,
        args=(2, str(tmp_path / "init"), str(gt_file), str(tmp_path), shards, outputs),
        nprocs=2,
        join=True,
    )
    expected = run_evaluator(coco, outputs, ("bbox",), label_to_cat_id=LABEL_TO_CAT).metrics["bbox"]
    shard_only = run_evaluator(
        coco, {i: outputs[i] for i in shards[0]}, ("bbox",), label_to_cat_id=LABEL_TO_CAT
    ).metrics["bbox"]
    for rank in range(2):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got.pop("local") == len(shards[rank])
        assert got == expected
    assert shard_only != expected  # the test would notice a rank scoring only its shard


def test_scoring_masks_leaves_the_datasets_ground_truth_untouched(gt: dict) -> None:
    coco = load(gt["instances_file"])
    before = json.dumps(coco.dataset, sort_keys=True)
    run_evaluator(coco, perfect_predictions(coco), ("segm",), label_to_cat_id=LABEL_TO_CAT)
    # COCOeval would have rewritten the polygons as RLE in place had it scored on this object.
    assert json.dumps(coco.dataset, sort_keys=True) == before


def test_per_box_results_of_an_image_are_scored_together_and_repeats_collapse(gt: dict) -> None:
    """Top-down pose adds one result per person box under its own key: an image's boxes all count,
    and a box seen twice (a distributed sampler's padding) counts once."""
    coco = gt["keypoints"]
    anns = [a for a in coco.anns.values() if not a["iscrowd"] and a["num_keypoints"] > 0]

    def result(ann: dict) -> dict:
        return {"image_id": ann["image_id"], "category_id": 1, "keypoints": ann["keypoints"], "score": 1.0}

    keyed = CocoEvaluator(coco, ("keypoints",), kpt_oks_sigmas=SHAPE_KPT_OKS_SIGMAS)
    for ann in [*anns, anns[0]]:
        keyed.add(ann["image_id"], {"keypoints": [result(ann)]}, key=(ann["image_id"], ann["id"]))
    scored = keyed.compute()
    assert len(scored.detections["keypoints"]) == len(anns)
    assert scored.metrics["keypoints"]["map"] == 1.0
    assert keyed.num_images == len({a["image_id"] for a in anns})
    # Keyed by image alone, each image would keep only its last box: a miss the test can see.
    per_image = CocoEvaluator(coco, ("keypoints",), kpt_oks_sigmas=SHAPE_KPT_OKS_SIGMAS)
    for ann in anns:
        per_image.add(ann["image_id"], {"keypoints": [result(ann)]})
    assert per_image.compute().metrics["keypoints"]["map"] < 1.0
