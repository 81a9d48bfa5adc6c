"""Real on-disk formats: VOC palette PNGs (+ SBD aug), ADE20K's 0 = other, Cityscapes ids, image + mask folders,
and the refusals of bad masks (values, sizes, colour masks) with the file named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIG_DIR, compose
from PIL import Image

from litzoo.datamodules.segmentation.convert_masks import main as convert_masks
from litzoo.datamodules.segmentation.datamodule import (
    ADE20KDataModule,
    CityscapesDataModule,
    SegFolderDataModule,
    VOCSegDataModule,
)
from litzoo.datamodules.segmentation.formats import ADE20K_CLASSES
from litzoo.errors import ConfigError, DataError
from litzoo.platform.validate import validate
from litzoo.vision.palette import voc_palette

from .seg_fixtures import write_image, write_label_mask, write_voc

LABELS = np.array([[0, 0, 15, 15, 255], [1, 1, 15, 255, 20], [0, 255, 20, 20, 20]], dtype=np.uint8)


def eval_masks(datamodule, split: str = "val") -> list[torch.Tensor]:
    datamodule.setup("validate" if split == "val" else "test")
    dataset = datamodule.dataset(split)
    return [dataset[i][1] for i in range(len(dataset))]


def test_voc_palette_pngs_give_class_indices_and_keep_255_as_ignore(tmp_path):
    root = write_voc(tmp_path, {"train": ["a"], "val": ["b"]}, {"a": LABELS, "b": LABELS[::-1].copy()})
    with Image.open(root / "VOC2012" / "SegmentationClass" / "b.png") as mask:
        assert mask.mode == "P" and mask.convert("RGB").getpixel((2, 0)) == tuple(voc_palette()[20])
    (mask,) = eval_masks(VOCSegDataModule(str(root), batch_size=1))
    assert mask.dtype == torch.int64 and torch.equal(mask, torch.from_numpy(LABELS[::-1].astype(np.int64)))
    (same,) = eval_masks(VOCSegDataModule(str(root / "VOC2012"), batch_size=1))  # root: VOCdevkit or VOC2012
    assert torch.equal(same, mask)


def test_voc_trains_on_the_sbd_augmented_list_when_it_is_there(tmp_path):
    labels = {name: LABELS for name in ("a", "b", "c")}
    root = write_voc(tmp_path, {"train": ["a"], "val": ["c"]}, labels, aug=("a", "b"))
    lists = root / "VOC2012" / "ImageSets" / "Segmentation"
    datamodule = VOCSegDataModule(str(root), batch_size=1)
    assert [p.stem for p in datamodule.split_files("train").images] == ["a"]  # no aug list yet: train.txt
    # DeepLab's train_aug.txt writes image/mask pairs relative to VOC2012.
    (lists / "train_aug.txt").write_text(
        "/JPEGImages/a.jpg /SegmentationClassAug/a.png\n/JPEGImages/b.jpg /SegmentationClassAug/b.png\n"
    )
    files = VOCSegDataModule(str(root), batch_size=1).split_files("train")
    assert [p.parent.name for p in files.masks] == ["SegmentationClassAug"] * 2 and len(files) == 2
    (lists / "train_aug.txt").write_text("a\nb\n")  # or one id per line
    assert len(VOCSegDataModule(str(root), batch_size=1, train_split="train_aug").split_files("train")) == 2


def test_a_missing_split_list_fails_validation_with_the_expected_layout(tmp_path):
    root = write_voc(tmp_path, {"train": ["a"]}, {"a": LABELS})
    with pytest.raises(DataError) as error:
        validate(compose(["task=semantic_segmentation", "data=voc_seg", f"data.root={root}"]), [CONFIG_DIR])
    message = str(error.value)
    assert "the split list VOC2012/ImageSets/Segmentation/val.txt is missing" in message
    assert "<root>/SegmentationClass/<id>.png" in message and "Expected layout" in message
    with pytest.raises(ConfigError, match="data.root"):
        validate(compose(["task=semantic_segmentation", "data=voc_seg"]), [CONFIG_DIR])


# Cityscapes label id -> train id, written out from cityscapesscripts' labels.py (trainId 255 or -1: ignored).
CITYSCAPES = {
    0: 255,
    1: 255,
    2: 255,
    3: 255,
    4: 255,
    5: 255,
    6: 255,
    7: 0,
    8: 1,
    9: 255,
    10: 255,
    11: 2,
    12: 3,
    13: 4,
    14: 255,
    15: 255,
    16: 255,
    17: 5,
    18: 255,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    29: 255,
    30: 255,
    31: 16,
    32: 17,
    33: 18,
}


def write_cityscapes(root: Path, label_ids: np.ndarray) -> Path:
    for split, city in (("train", "aachen"), ("val", "frankfurt")):
        stem = f"{city}_000000_000019"
        write_image(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", *label_ids.shape)
        write_label_mask(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", label_ids)
    return root


def test_cityscapes_label_ids_map_to_the_19_train_ids(tmp_path):
    label_ids = np.array([list(range(0, 17)) + [255], list(range(17, 34)) + [34]], dtype=np.uint8)
    root = write_cityscapes(tmp_path, label_ids)
    datamodule = CityscapesDataModule(str(root), batch_size=1)
    (mask,) = eval_masks(datamodule)
    expected = np.vectorize(lambda i: CITYSCAPES.get(int(i), 255))(label_ids)
    assert mask.tolist() == expected.tolist()
    assert datamodule.info()["num_classes"] == 19 and datamodule.info()["class_names"][18] == "bicycle"
    (test_mask,) = eval_masks(datamodule, "test")  # no public test labels: test is val
    assert torch.equal(test_mask, mask)


def write_ade(root: Path, annotation: np.ndarray) -> Path:
    base = root / "ADEChallengeData2016"
    for folder, stem in (("training", "ADE_train_00000001"), ("validation", "ADE_val_00000001")):
        write_image(base / "images" / folder / f"{stem}.jpg", *annotation.shape)
        write_label_mask(base / "annotations" / folder / f"{stem}.png", annotation)
    return root


def test_ade20k_ignores_label_0_and_shifts_the_150_classes_down_by_one(tmp_path):
    assert len(ADE20K_CLASSES) == 150
    annotation = np.array([[0, 1, 2], [150, 149, 0]], dtype=np.uint8)
    root = write_ade(tmp_path, annotation)
    datamodule = ADE20KDataModule(
        str(root), batch_size=1
    )  # root may be the folder holding ADEChallengeData2016
    (mask,) = eval_masks(datamodule)
    assert mask.tolist() == [[255, 0, 1], [149, 148, 255]]
    info = datamodule.info()
    assert info["num_classes"] == 150 and info["class_names"][:3] == ["wall", "building", "sky"]
    (kept,) = eval_masks(ADE20KDataModule(str(root), batch_size=1, reduce_zero_label=False))
    assert kept.tolist() == annotation.tolist()


def test_mask_values_outside_the_class_set_name_the_file_and_the_values(tmp_path):
    root = write_ade(tmp_path, np.array([[0, 151, 200], [3, 151, 1]], dtype=np.uint8))
    datamodule = ADE20KDataModule(str(root), batch_size=1)
    datamodule.setup("validate")
    with pytest.raises(DataError) as error:
        datamodule.dataset("val")[0]
    message = str(error.value)
    assert "ADE_val_00000001.png holds pixel value(s) 151, 200" in message
    assert "0 = other (ignored), classes 1-150" in message


def test_an_rgb_mask_is_refused_with_how_to_convert_it(tmp_path):
    labels = {"a": LABELS, "b": LABELS}
    root = write_voc(tmp_path, {"train": ["a"], "val": ["b"]}, labels)
    mask_path = root / "VOC2012" / "SegmentationClass" / "b.png"
    colours = voc_palette()[LABELS]
    Image.fromarray(colours).save(mask_path)  # what an annotation tool exporting colours writes
    with pytest.raises(DataError) as error:
        VOCSegDataModule(str(root), batch_size=1).setup("validate")  # found from the header, before training
    message = str(error.value)
    assert f"Mask {mask_path} is a RGB image" in message and "convert_masks" in message
    # The suggested conversion restores the label PNG exactly.
    assert convert_masks([str(mask_path.parent), str(mask_path.parent), "--palette", "voc"]) == 0
    (mask,) = eval_masks(VOCSegDataModule(str(root), batch_size=1))
    assert mask.tolist() == LABELS.tolist()


def test_image_and_mask_of_different_sizes_name_both_sizes_and_paths(tmp_path):
    root = write_voc(tmp_path, {"train": ["a"], "val": ["b"]}, {"a": LABELS, "b": LABELS})
    image_path = write_image(root / "VOC2012" / "JPEGImages" / "b.jpg", 4, 6)
    with pytest.raises(DataError) as error:
        VOCSegDataModule(str(root), batch_size=1).setup("validate")
    message = str(error.value)
    assert f"Image {image_path} is 6x4 (width x height) but its mask" in message
    assert "SegmentationClass/b.png is 5x3" in message


def write_folder(root: Path, classes: list[str], masks: dict[str, list[np.ndarray]]) -> Path:
    (root / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    for split, arrays in masks.items():
        for i, array in enumerate(arrays):
            write_image(root / "images" / split / f"{split}{i}.png", *array.shape, seed=i)
            write_label_mask(root / "masks" / split / f"{split}{i}.png", array)
    return root


def test_a_single_listed_class_is_binary_and_reads_0_255_masks_as_background_and_foreground(tmp_path):
    binary = np.array([[0, 255, 255], [0, 0, 1]], dtype=np.uint8)  # 255 and 1 both mean "crack"
    root = write_folder(tmp_path, ["crack"], {"train": [binary], "val": [binary]})
    datamodule = SegFolderDataModule(str(root), batch_size=1)
    (mask,) = eval_masks(datamodule)
    assert mask.tolist() == [[0, 1, 1], [0, 0, 1]]
    assert datamodule.info()["class_names"] == ["background", "crack"]
    (test_mask,) = eval_masks(datamodule, "test")  # no images/test/: test is val
    assert torch.equal(test_mask, mask)


def test_two_listed_classes_with_0_255_masks_are_refused_before_training(tmp_path):
    binary = np.array([[0, 255], [0, 0]], dtype=np.uint8)
    root = write_folder(tmp_path, ["background", "road"], {"train": [binary], "val": [binary]})
    with pytest.raises(DataError, match="255 is the ignore value: road would never be seen"):
        SegFolderDataModule(str(root), batch_size=1).setup("fit")


def test_folder_masks_use_the_class_list_and_the_ignore_value(tmp_path):
    labels = np.array([[0, 1, 2], [255, 2, 0]], dtype=np.uint8)
    root = write_folder(
        tmp_path, ["sky", "tree", "house"], {"train": [labels], "val": [labels], "test": [labels[::-1]]}
    )
    (mask,) = eval_masks(SegFolderDataModule(str(root), batch_size=1), "test")
    assert mask.tolist() == labels[::-1].tolist()
    (root / "masks" / "train" / "train0.png").unlink()
    with pytest.raises(
        DataError, match=r"1 image\(s\) of images/train/ have no mask in masks/train/ \(e.g. train0.png\)"
    ):
        validate(
            compose(["task=semantic_segmentation", "data=seg_folder", f"data.root={root}"]), [CONFIG_DIR]
        )
