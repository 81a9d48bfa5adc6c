"""COCO-format loading: real annotations, hand-checkable polygons/RLE/crowds, bad input, the shapes generator."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from torchvision import tv_tensors

from litzoo.datamodules.detection.coco import CocoDetection, check_coco_layout, has_coco_split
from litzoo.datamodules.detection.shapes import (
    MARKER_NAME,
    SHAPE_CATEGORIES,
    SHAPE_KEYPOINT_NAMES,
    generate_shapes_coco,
)
from litzoo.errors import DataError

REAL_COCO = (Path(__file__).parents[2] / ".." / "shared" / "fixtures" / "real" / "COCO").resolve()


def write_coco(
    root: Path,
    split: str,
    images: list[dict],
    annotations: list[dict],
    categories: list[dict],
    stem: str = "instances",
) -> tuple[Path, Path]:
    """Write a COCO dataset (annotation JSON + black JPEGs of the declared sizes) in COCO's layout."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / split).mkdir(parents=True, exist_ok=True)
    for img in images:
        Image.new("RGB", (img["width"], img["height"])).save(root / split / img["file_name"])
    ann_file = root / "annotations" / f"{stem}_{split}.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return ann_file, root / split


# --------------------------------------------------------------------------- the real COCO sample


@pytest.fixture(scope="module")
def real_coco(tmp_path_factory: pytest.TempPathFactory) -> CocoDetection:
    ann_src = REAL_COCO / "instances_val2017.json"
    if not ann_src.is_file():
        pytest.skip("the shared real COCO fixture is not present in this checkout")
    root = tmp_path_factory.mktemp("coco")
    (root / "annotations").mkdir()
    shutil.copy(ann_src, root / "annotations" / "instances_val2017.json")
    (root / "val2017").mkdir()
    # The fixture ships annotations only; a synthesized 640x480 image stands in for the photo.
    Image.new("RGB", (640, 480), (120, 90, 60)).save(root / "val2017" / "000000039769.jpg")
    ann_file, image_dir = check_coco_layout(root, "val2017", "masks")
    return CocoDetection(ann_file, image_dir, targets="masks")


def test_real_coco_instances_boxes_and_labels(real_coco: CocoDetection) -> None:
    raw = json.loads((REAL_COCO / "instances_val2017.json").read_text())
    image, target = real_coco[0]
    assert isinstance(image, tv_tensors.Image) and tuple(image.shape) == (3, 480, 640)
    assert target["image_id"] == 39769
    assert len(target["boxes"]) == 6
    assert isinstance(target["boxes"], tv_tensors.BoundingBoxes) and target["boxes"].format.value == "XYXY"
    by_order = sorted(
        raw["annotations"], key=lambda a: a["id"]
    )  # pycocotools keeps file order; ids ascend here
    expected = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in by_order)])
    torch.testing.assert_close(target["boxes"].as_subclass(torch.Tensor), expected, rtol=0, atol=1e-4)
    # Category ids 17 (cat), 63 (couch), 65 (bed), 75 (remote) become labels 1..4 in id order.
    assert real_coco.cat_id_to_label == {17: 1, 63: 2, 65: 3, 75: 4}
    assert real_coco.label_to_cat_id == {1: 17, 2: 63, 3: 65, 4: 75}
    assert real_coco.class_names == ["__background__", "cat", "couch", "bed", "remote"]
    assert real_coco.num_classes == 5
    assert target["labels"].tolist() == [real_coco.cat_id_to_label[a["category_id"]] for a in by_order]
    assert [real_coco.label_to_cat_id[int(x)] for x in target["labels"]] == [
        a["category_id"] for a in by_order
    ]


def test_real_coco_mask_pixels_match_areas(real_coco: CocoDetection) -> None:
    _, target = real_coco[0]
    masks = target["masks"]
    assert (
        isinstance(masks, tv_tensors.Mask)
        and masks.dtype == torch.uint8
        and tuple(masks.shape) == (6, 480, 640)
    )
    pixels = masks.flatten(1).sum(1).double()
    relative = (pixels - target["area"].double()).abs() / target["area"].double()
    assert relative.max() < 0.02, relative
    # Each mask lies inside its own box (polygon rasterisation may touch the box edge pixel).
    for mask, (x1, y1, x2, y2) in zip(masks, target["boxes"].tolist()):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        assert xs.min() >= int(x1) - 1 and xs.max() <= int(x2) + 1
        assert ys.min() >= int(y1) - 1 and ys.max() <= int(y2) + 1


# --------------------------------------------------------------------------- hand-checkable tiny datasets


CATS = [{"id": 7, "name": "a"}, {"id": 3, "name": "b"}]


def _tiny(tmp_path: Path, targets: str = "masks", **kwargs) -> CocoDetection:
    # Image 10 wide, 8 high. Annotation 1: polygon rectangle (2,2)-(6,5): pixels cols 2..5, rows 2..4.
    # Annotation 2: uncompressed RLE (column-major runs): 17 zeros then 3 ones = column 2, rows 1..3.
    # Annotation 3: compressed RLE of a known mask. Annotation 4: a crowd region.
    known = np.zeros((8, 10), dtype=np.uint8)
    known[5:7, 6:9] = 1
    compressed = mask_utils.encode(np.asfortranarray(known))
    crowd = np.zeros((8, 10), dtype=np.uint8)
    crowd[0:2, 0:2] = 1
    crowd_rle = mask_utils.encode(np.asfortranarray(crowd))
    anns = [
        {
            "id": 1,
            "image_id": 5,
            "category_id": 7,
            "segmentation": [[2, 2, 6, 2, 6, 5, 2, 5]],
            "area": 12.0,
            "bbox": [2, 2, 4, 3],
            "iscrowd": 0,
        },
        {
            "id": 2,
            "image_id": 5,
            "category_id": 3,
            "segmentation": {"counts": [17, 3, 60], "size": [8, 10]},
            "area": 3.0,
            "bbox": [2, 1, 1, 3],
            "iscrowd": 0,
        },
        {
            "id": 3,
            "image_id": 5,
            "category_id": 7,
            "segmentation": {"counts": compressed["counts"].decode(), "size": [8, 10]},
            "area": 6.0,
            "bbox": [6, 5, 3, 2],
            "iscrowd": 0,
        },
        {
            "id": 4,
            "image_id": 5,
            "category_id": 3,
            "segmentation": {"counts": crowd_rle["counts"].decode(), "size": [8, 10]},
            "area": 4.0,
            "bbox": [0, 0, 2, 2],
            "iscrowd": 1,
        },
    ]
    images = [
        {"id": 5, "file_name": "five.png", "width": 10, "height": 8},
        {"id": 9, "file_name": "nine.png", "width": 10, "height": 8},
    ]
    ann_file, image_dir = write_coco(tmp_path, "train2017", images, anns, CATS)
    return CocoDetection(ann_file, image_dir, targets=targets, **kwargs)


def test_polygon_and_rle_masks_decode_exactly(tmp_path: Path) -> None:
    ds = _tiny(tmp_path)
    assert ds.cat_id_to_label == {3: 1, 7: 2}
    assert ds.ids == [5, 9]
    _, target = ds[0]
    masks = target["masks"].numpy()
    assert len(masks) == 3  # the crowd region is not a training target
    rect = np.zeros((8, 10), dtype=np.uint8)
    rect[2:5, 2:6] = 1
    column = np.zeros((8, 10), dtype=np.uint8)
    column[1:4, 2] = 1
    known = np.zeros((8, 10), dtype=np.uint8)
    known[5:7, 6:9] = 1
    np.testing.assert_array_equal(masks[0], rect)
    np.testing.assert_array_equal(masks[1], column)
    np.testing.assert_array_equal(masks[2], known)
    assert target["labels"].tolist() == [2, 1, 2]
    assert target["boxes"].tolist() == [[2, 2, 6, 5], [2, 1, 3, 4], [6, 5, 9, 7]]
    assert target["iscrowd"].tolist() == [0, 0, 0]
    assert target["area"].tolist() == [12.0, 3.0, 6.0]


def test_crowd_kept_when_asked_and_always_in_the_coco_ground_truth(tmp_path: Path) -> None:
    ds = _tiny(tmp_path, include_crowd=True)
    _, target = ds[0]
    assert target["iscrowd"].tolist() == [0, 0, 0, 1]
    assert int(target["masks"][3].sum()) == 4
    default = CocoDetection(ds.ann_file, ds.image_dir)
    assert {a["id"] for a in default.coco.anns.values()} == {1, 2, 3, 4}  # COCOeval still sees the crowd


def test_images_without_annotations_removed_for_training(tmp_path: Path) -> None:
    ds = _tiny(tmp_path, remove_images_without_annotations=True)
    assert ds.ids == [5]
    _, empty = _tiny(tmp_path / "b", targets="boxes")[1]
    assert tuple(empty["boxes"].shape) == (0, 4) and empty["labels"].dtype == torch.int64


def test_degenerate_boxes_dropped_with_counted_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    anns = [
        {"id": 11, "image_id": 1, "category_id": 7, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0},
        {"id": 12, "image_id": 1, "category_id": 7, "bbox": [3, 3, 0, 5], "area": 0, "iscrowd": 0},
        {"id": 13, "image_id": 1, "category_id": 3, "bbox": [5, 5, 2, -1], "area": 0, "iscrowd": 0},
        {
            "id": 14,
            "image_id": 1,
            "category_id": 3,
            "bbox": [20, 2, 3, 3],
            "area": 9,
            "iscrowd": 0,
        },  # off-image
        {
            "id": 15,
            "image_id": 1,
            "category_id": 3,
            "bbox": [8, 6, 5, 5],
            "area": 25,
            "iscrowd": 0,
        },  # clamped
    ]
    ann_file, image_dir = write_coco(
        tmp_path, "val2017", [{"id": 1, "file_name": "x.png", "width": 10, "height": 8}], anns, CATS
    )
    with caplog.at_level(logging.WARNING, logger="litzoo.datamodules.detection.coco"):
        ds = CocoDetection(ann_file, image_dir, targets="boxes")
    assert ds.num_degenerate_boxes == 3
    assert "Dropped 3 annotation(s)" in caplog.text and "12, 13, 14" in caplog.text
    _, target = ds[0]
    assert target["boxes"].tolist() == [[1, 1, 5, 5], [8, 6, 10, 8]]


def test_unknown_category_names_the_annotation(tmp_path: Path) -> None:
    anns = [{"id": 4242, "image_id": 1, "category_id": 99, "bbox": [1, 1, 2, 2], "area": 4, "iscrowd": 0}]
    ann_file, image_dir = write_coco(
        tmp_path, "val2017", [{"id": 1, "file_name": "x.png", "width": 10, "height": 8}], anns, CATS
    )
    with pytest.raises(DataError, match=r"Annotation id 4242 .* category_id 99"):
        CocoDetection(ann_file, image_dir)


def test_undecodable_image_names_the_file(tmp_path: Path) -> None:
    ann_file, image_dir = write_coco(
        tmp_path, "val2017", [{"id": 1, "file_name": "bad.jpg", "width": 10, "height": 8}], [], CATS
    )
    (image_dir / "bad.jpg").write_bytes(b"this is not a jpeg")
    ds = CocoDetection(ann_file, image_dir)
    with pytest.raises(DataError, match=r"bad\.jpg cannot be decoded"):
        ds[0]


def test_image_size_disagreeing_with_annotation(tmp_path: Path) -> None:
    ann_file, image_dir = write_coco(
        tmp_path, "val2017", [{"id": 1, "file_name": "x.png", "width": 10, "height": 8}], [], CATS
    )
    Image.new("RGB", (8, 10)).save(image_dir / "x.png")
    with pytest.raises(DataError, match="8x10"):
        CocoDetection(ann_file, image_dir)[0]


def test_layout_errors_show_the_expected_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"annotations/instances_<split>\.json") as err:
        check_coco_layout(tmp_path, "val2017")
    assert "instances_val2017.json" in str(err.value)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "person_keypoints_val2017.json").write_text("{}")
    with pytest.raises(DataError, match=r"val2017"):
        check_coco_layout(tmp_path, "val2017", targets="keypoints")
    assert not has_coco_split(tmp_path, "test2017") and has_coco_split(tmp_path, "val2017", "keypoints")
    with pytest.raises(DataError, match="does not exist"):
        CocoDetection(tmp_path / "annotations" / "missing.json", tmp_path)
    with pytest.raises(DataError, match="lacks the 'images'"):
        CocoDetection(tmp_path / "annotations" / "person_keypoints_val2017.json", tmp_path)


# --------------------------------------------------------------------------- the generated shapes dataset


def test_shapes_dataset_is_coco_format_with_all_mask_kinds(shapes_root: Path) -> None:
    instances = json.loads((shapes_root / "annotations" / "instances_train2017.json").read_text())
    assert [c["id"] for c in instances["categories"]] == [c["id"] for c in SHAPE_CATEGORIES] == [1, 2, 4]
    kinds = {
        (
            "polygon"
            if isinstance(a["segmentation"], list)
            else "uncompressed"
            if isinstance(a["segmentation"]["counts"], list)
            else "compressed"
        )
        for a in instances["annotations"]
    }
    assert kinds == {"polygon", "uncompressed", "compressed"}
    assert any(a["iscrowd"] for a in instances["annotations"])
    assert all((shapes_root / "train2017" / img["file_name"]).is_file() for img in instances["images"])
    assert {(img["height"], img["width"]) for img in instances["images"]} == {(96, 128)}

    ds = CocoDetection(
        *check_coco_layout(shapes_root, "train2017", "masks"),
        targets="masks",
        include_crowd=True,
    )
    assert ds.label_to_cat_id == {1: 1, 2: 2, 3: 4}
    for index in range(len(ds)):
        image, target = ds[index]
        assert tuple(image.shape) == (3, 96, 128)
        pixels = target["masks"].flatten(1).sum(1).float()
        # The generator's area is the decoded mask's pixel count, so they agree exactly.
        torch.testing.assert_close(pixels, target["area"])


def test_shapes_pixels_are_drawn_where_the_masks_are(shapes_root: Path) -> None:
    ds = CocoDetection(*check_coco_layout(shapes_root, "val2017", "masks"), targets="masks")
    image, target = ds[0]
    pixels = image.float()
    for mask in target["masks"].bool():
        inside = pixels[:, mask]
        # A shape is one flat colour (plus noise and JPEG error), far more uniform than the image.
        assert inside.std(dim=1).mean() < 0.5 * pixels.flatten(1).std(dim=1).mean()


def test_shapes_keypoints_follow_coco_person_keypoints_format(shapes_root: Path) -> None:
    data = json.loads((shapes_root / "annotations" / "person_keypoints_val2017.json").read_text())
    (category,) = data["categories"]
    assert category["keypoints"] == list(SHAPE_KEYPOINT_NAMES)
    ds = CocoDetection(*check_coco_layout(shapes_root, "val2017", "keypoints"), targets="keypoints")
    assert ds.flip_pairs == [(1, 2)] and ds.num_classes == 2
    _, target = ds[0]
    kps = target["keypoints"]
    assert kps.shape[1:] == (4, 3) and set(kps[..., 2].unique().tolist()) <= {1.0, 2.0}
    boxes = target["boxes"].as_subclass(torch.Tensor)
    unoccluded = kps[..., 2].eq(2).all(dim=1)
    # top/left/right/bottom lie on the box of an unoccluded shape (polygon extent = box).
    for kp, box in zip(kps[unoccluded], boxes[unoccluded]):
        assert torch.allclose(kp[0, 1], box[1], atol=0.02) and torch.allclose(kp[1, 0], box[0], atol=0.02)
        assert torch.allclose(kp[2, 0], box[2], atol=0.02) and torch.allclose(kp[3, 1], box[3], atol=0.02)
    for ann in data["annotations"]:
        assert ann["num_keypoints"] == sum(v > 0 for v in ann["keypoints"][2::3])


def test_shapes_generation_is_deterministic_and_idempotent(tmp_path: Path) -> None:
    a = generate_shapes_coco(tmp_path / "a", num_train=4, num_val=2, image_size=64, seed=11)
    b = generate_shapes_coco(tmp_path / "b", num_train=4, num_val=2, image_size=64, seed=11)
    c = generate_shapes_coco(tmp_path / "c", num_train=4, num_val=2, image_size=64, seed=12)
    ann = "annotations/instances_train2017.json"
    assert (a / ann).read_bytes() == (b / ann).read_bytes() != (c / ann).read_bytes()
    assert (a / "val2017" / "000000000005.jpg").read_bytes() == (
        b / "val2017" / "000000000005.jpg"
    ).read_bytes()
    stamp = (a / MARKER_NAME).stat().st_mtime_ns
    generate_shapes_coco(tmp_path / "a", num_train=4, num_val=2, image_size=64, seed=11)
    assert (a / MARKER_NAME).stat().st_mtime_ns == stamp  # reused, not rewritten
    generate_shapes_coco(tmp_path / "a", num_train=5, num_val=2, image_size=64, seed=11)
    assert len(json.loads((a / ann).read_text())["images"]) == 5  # other parameters: regenerated


def test_shapes_refuses_to_overwrite_foreign_files(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="thesis.tex"):
        generate_shapes_coco(tmp_path / "mine", num_train=2, num_val=1)
