"""VOC: the devkit's AP rules on a hand-computed example, and the XML loader on files in the real format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from litzoo.datamodules.detection.voc import VOC_CLASSES, VOCDetection, check_voc_layout
from litzoo.errors import DataError
from litzoo.metrics.voc_eval import VOCMeanAP, evaluate_class, voc_ap


def test_voc_ap_rules_on_a_hand_computed_curve() -> None:
    recall = np.array([0.5, 0.5, 0.5, 0.5, 1.0])
    precision = np.array([1.0, 1.0, 0.5, 1 / 3, 0.5])
    # 11-point: thresholds 0..0.5 see precision 1, thresholds 0.6..1.0 only the last point (0.5).
    assert voc_ap(recall, precision, use_07_metric=True) == pytest.approx(8.5 / 11, abs=1e-12)
    # Area under the envelope: 0.5 * 1 + 0.5 * 0.5.
    assert voc_ap(recall, precision, use_07_metric=False) == pytest.approx(0.75, abs=1e-12)


def _example() -> tuple[list, dict]:
    # Image "a": one object and one difficult object; image "b": one object.
    gt = {
        "a": (np.array([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=float), np.array([False, True])),
        "b": (np.array([[0, 0, 10, 10]], dtype=float), np.array([False])),
    }
    dets = [
        ("a", 0.9, [0, 0, 10, 10]),  # true positive
        ("a", 0.8, [20, 20, 30, 30]),  # hits the difficult object: ignored
        ("a", 0.7, [0, 0, 10, 10]),  # duplicate: false positive
        ("b", 0.6, [50, 50, 60, 60]),  # no overlap: false positive
        ("b", 0.5, [0, 0, 10, 11]),  # IoU 100/110: true positive
    ]
    return dets, gt


def test_evaluate_class_hand_computed() -> None:
    dets, gt = _example()
    result = evaluate_class(dets, gt, use_07_metric=True)
    assert result.num_positives == 2  # the difficult object is not a positive
    np.testing.assert_allclose(result.recall, [0.5, 0.5, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(result.precision, [1.0, 1.0, 0.5, 1 / 3, 0.5])
    assert result.ap == pytest.approx(8.5 / 11, abs=1e-12)
    assert evaluate_class(dets, gt, use_07_metric=False).ap == pytest.approx(0.75, abs=1e-12)
    # Exactly IoU 0.5 counts (the devkit compares with >=): a box [0,0,10,20] on [0,0,10,10] has IoU 0.5.
    assert evaluate_class([("b", 1.0, [0, 0, 10, 20])], {"b": gt["b"]}).ap == pytest.approx(1.0)


def test_mean_ap_over_classes_with_positives() -> None:
    dets, gt = _example()
    metric = VOCMeanAP(["x", "y", "z"], use_07_metric=True)
    for key in ("a", "b"):
        boxes, difficult = gt[key]
        extra_y = key == "b"  # class y has one object (in b) and no detection -> AP 0
        tb = np.concatenate([boxes, [[70, 70, 80, 80]]]) if extra_y else boxes
        tl = [1] * len(boxes) + ([2] if extra_y else [])
        td = list(difficult) + ([False] if extra_y else [])
        mine = [d for d in dets if d[0] == key]
        pb = [d[2] for d in mine] + ([[0, 0, 5, 5]] if key == "a" else [])  # a class-z detection, z has no GT
        pl = [1] * len(mine) + ([3] if key == "a" else [])
        ps = [d[1] for d in mine] + ([0.95] if key == "a" else [])
        metric.update(
            [
                {
                    "boxes": torch.tensor(pb, dtype=torch.float32),
                    "labels": torch.tensor(pl),
                    "scores": torch.tensor(ps),
                }
            ],
            [
                {
                    "boxes": torch.tensor(tb, dtype=torch.float32),
                    "labels": torch.tensor(tl),
                    "difficult": torch.tensor(td),
                }
            ],
        )
    result = metric.compute()
    assert result["ap/x"] == pytest.approx(8.5 / 11, abs=1e-6)
    assert result["ap/y"] == 0.0 and np.isnan(result["ap/z"])
    assert result["map"] == pytest.approx((8.5 / 11 + 0.0) / 2, abs=1e-6)


# --------------------------------------------------------------------------- the XML loader


XML = """<annotation>
\t<folder>VOC2007</folder>
\t<filename>{name}.jpg</filename>
\t<source><database>The VOC2007 Database</database><annotation>PASCAL VOC2007</annotation></source>
\t<size><width>{w}</width><height>{h}</height><depth>3</depth></size>
\t<segmented>0</segmented>
{objects}</annotation>
"""
OBJ = """\t<object>
\t\t<name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{difficult}</difficult>
\t\t<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox>
\t</object>
"""


def write_voc(
    root: Path,
    images: dict[str, list[tuple[str, tuple[int, int, int, int], int]]],
    split: str = "test",
    size: tuple[int, int] = (60, 40),
) -> Path:
    base = root / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for name, objects in images.items():
        body = "".join(OBJ.format(name=n, b=b, difficult=d) for n, b, d in objects)
        (base / "Annotations" / f"{name}.xml").write_text(
            XML.format(name=name, w=size[0], h=size[1], objects=body)
        )
        Image.new("RGB", size).save(base / "JPEGImages" / f"{name}.jpg")
    (base / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{n}\n" for n in images))
    return root / "VOCdevkit"


def test_voc_loader_reads_boxes_labels_and_difficult(tmp_path: Path) -> None:
    root = write_voc(
        tmp_path,
        {
            "000005": [
                ("chair", (11, 21, 30, 35), 0),
                ("chair", (31, 1, 50, 20), 1),
                ("person", (1, 1, 10, 10), 0),
            ],
            "000007": [("car", (2, 3, 60, 40), 0)],
        },
    )
    train = VOCDetection(root, "2007", "test")
    assert train.ids == ["000005", "000007"] and train.num_classes == 21
    image, target = train[0]
    assert tuple(image.shape) == (3, 40, 60)
    # 1-based inclusive pixel boxes become continuous [xmin - 1, ymin - 1, xmax, ymax].
    assert target["boxes"].tolist() == [[10, 20, 30, 35], [0, 0, 10, 10]]
    assert (
        target["labels"].tolist()
        == [VOC_CLASSES.index("chair") + 1, VOC_CLASSES.index("person") + 1]
        == [9, 15]
    )
    assert target["area"].tolist() == [20 * 15, 100]
    full = VOCDetection(root / "VOC2007", "2007", "test", keep_difficult=True)
    _, target = full[0]
    assert target["difficult"].tolist() == [False, True, False]
    assert target["boxes"].tolist()[1] == [30, 0, 50, 20]
    # Perfect predictions on the flagged targets score mAP 1 whether or not the difficult one is found.
    metric = VOCMeanAP(VOC_CLASSES)
    for i in range(len(full)):
        _, t = full[i]
        keep = ~t["difficult"]
        metric.update(
            [{"boxes": t["boxes"][keep], "labels": t["labels"][keep], "scores": torch.ones(int(keep.sum()))}],
            [t],
        )
    result = metric.compute()
    assert result["map"] == pytest.approx(1.0) and result["ap/chair"] == pytest.approx(1.0)
    assert np.isnan(result["ap/dog"])


def test_voc_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"VOC<year>/Annotations"):
        check_voc_layout(tmp_path, "2007", "test")
    root = write_voc(tmp_path, {"000001": [("unicorn", (1, 1, 5, 5), 0)]})
    with pytest.raises(DataError, match=r"000001\.xml .* class 'unicorn'"):
        VOCDetection(root, "2007", "test")
    (root / "VOC2007" / "Annotations" / "000001.xml").write_text("<annotation><size>")
    with pytest.raises(DataError, match="not valid XML"):
        VOCDetection(root, "2007", "test")
    (root / "VOC2007" / "ImageSets" / "Main" / "test.txt").write_text("000001\n000404\n")
    (root / "VOC2007" / "Annotations" / "000001.xml").write_text(
        XML.format(name="000001", w=60, h=40, objects=OBJ.format(name="dog", b=(6, 5, 5, 9), difficult=0))
    )
    with pytest.raises(DataError, match="000404.xml is listed"):
        VOCDetection(root, "2007", "test")
    (root / "VOC2007" / "ImageSets" / "Main" / "test.txt").write_text("000001\n")
    ds = VOCDetection(
        root, "2007", "test"
    )  # xmax < xmin (zero width once made continuous): dropped, not fatal
    assert ds.num_files_with_degenerate_boxes == 1 and len(ds[0][1]["boxes"]) == 0
