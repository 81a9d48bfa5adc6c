"""Classification datamodules on files written in the real formats."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from litzoo.datamodules.classification.cifar10 import Cifar10DataModule
from litzoo.datamodules.classification.digits import DigitsDataModule, split_indices
from litzoo.datamodules.classification.imagefolder import ImageFolderDataModule
from litzoo.errors import DataError


def write_imagefolder(root, layout):
    """layout: {split: {class: [(mode, (w, h)), ...]}}"""
    for split, classes in layout.items():
        for name, images in classes.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i, (mode, size) in enumerate(images):
                color = 200 if mode == "L" else (200, 30, 90)
                suffix = ".jpg" if i % 2 else ".png"
                Image.new(mode, size, color=color).save(folder / f"img{i}{suffix}")


def test_imagefolder_reads_grey_and_rgb_files_of_any_size(tmp_path):
    write_imagefolder(
        tmp_path,
        {
            "train": {
                "ant": [("RGB", (50, 30)), ("L", (17, 90))],
                "bee": [("RGBA", (33, 41)), ("L", (64, 64))],
            },
            "val": {"ant": [("RGB", (40, 40))], "bee": [("L", (10, 20))]},
        },
    )
    dm = ImageFolderDataModule(str(tmp_path), batch_size=2, num_workers=0, image_size=24, in_chans=3)
    info = dm.info()
    assert {k: info[k] for k in ("num_classes", "in_chans", "image_size", "class_names")} == {
        "num_classes": 2,
        "in_chans": 3,
        "image_size": 24,
        "class_names": ["ant", "bee"],
    }
    dm.setup("fit")
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (2, 3, 24, 24) and images.dtype == torch.float32
    assert sorted(dm.train_set.targets) == [0, 0, 1, 1]
    # No test/ folder: testing falls back to val.
    assert len(dm.test_set) == len(dm.val_set) == 2

    grey = ImageFolderDataModule(str(tmp_path), batch_size=4, num_workers=0, image_size=16, in_chans=1)
    grey.setup("fit")
    images, _ = next(iter(grey.val_dataloader()))
    assert images.shape == (2, 1, 16, 16)


def test_imagefolder_keeps_train_class_indices_when_val_lacks_a_class(tmp_path):
    write_imagefolder(
        tmp_path,
        {
            "train": {"a": [("RGB", (8, 8))], "b": [("RGB", (8, 8))], "c": [("RGB", (8, 8))]},
            "val": {"c": [("RGB", (8, 8))]},
            "test": {"b": [("RGB", (8, 8))]},
        },
    )
    dm = ImageFolderDataModule(str(tmp_path), batch_size=1, num_workers=0, image_size=8)
    dm.setup("fit")
    assert dm.val_set.targets == [2] and dm.test_set.targets == [1]


def test_imagefolder_undecodable_image_names_the_file(tmp_path):
    write_imagefolder(tmp_path, {"train": {"a": [("RGB", (8, 8))]}, "val": {"a": [("RGB", (8, 8))]}})
    broken = tmp_path / "train" / "a" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    dm = ImageFolderDataModule(str(tmp_path), batch_size=1, num_workers=0, image_size=8)
    dm.setup("fit")
    index = [p for p, _ in dm.train_set.samples].index(str(broken))
    with pytest.raises(DataError, match="broken.jpg"):
        dm.train_set[index]


def write_cifar(root, per_batch=6, test=4, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = test if name == "test_batch" else per_batch
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump(
                {
                    "batch_label": name,
                    "labels": labels,
                    "data": data,
                    "filenames": [f"{i}.png" for i in range(n)],
                },
                f,
                protocol=2,
            )
        images[name] = (data, labels)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}, f, protocol=2)
    return images


def test_cifar10_reads_the_official_pickle_format(tmp_path):
    written = write_cifar(tmp_path)
    dm = Cifar10DataModule(
        str(tmp_path), batch_size=4, num_workers=0, val_size=5, augment=False, mean=(0, 0, 0), std=(1, 1, 1)
    )
    info = dm.info()
    assert info["num_classes"] == 10 and info["class_names"][3] == "cat"
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (25, 5, 4)
    # Row-major CHW bytes in the file -> the same pixel values in the tensor.
    data, labels = written["test_batch"]
    image, label = dm.test_set[1]
    expected = torch.from_numpy(data[1].reshape(3, 32, 32).astype(np.float32) / 255.0)
    assert torch.allclose(image, expected) and label == labels[1]
    # Train and val partition the 30 training images.
    assert len(set(map(bytes, dm.train_set.images)) | set(map(bytes, dm.val_set.images))) == 30


def test_cifar10_rejects_a_file_in_another_format(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"garbage")
    dm = Cifar10DataModule(str(tmp_path), batch_size=4, num_workers=0, val_size=5)
    with pytest.raises(DataError, match="data_batch_3 is not a CIFAR-10 python batch file"):
        dm.setup("fit")


def test_digits_split_is_deterministic_stratified_and_disjoint():
    from sklearn.datasets import load_digits

    labels = load_digits().target.tolist()
    train, val, test = split_indices(labels, 0.15, 0.15, seed=0)
    assert (train, val, test) == split_indices(labels, 0.15, 0.15, seed=0)
    assert split_indices(labels, 0.15, 0.15, seed=1)[2] != test
    assert len(set(train) | set(val) | set(test)) == len(labels) == 1797
    assert not set(train) & set(test) and not set(val) & set(test) and not set(train) & set(val)
    assert (len(val), len(test)) == (270, 270)
    counts = np.bincount([labels[i] for i in test], minlength=10)
    assert counts.min() >= 26 and counts.max() <= 28  # stratified: ~27 of each digit


def test_digits_datamodule_shapes_and_normalisation():
    dm = DigitsDataModule(batch_size=8, image_size=32, augment=False)
    dm.setup("fit")
    images, labels = next(iter(dm.val_dataloader()))
    assert images.shape == (8, 1, 32, 32) and labels.dtype == torch.int64
    background = (0.0 - 0.305) / 0.376
    assert images.min().item() == pytest.approx(background, abs=1e-5)


# -- input size, crop scale and crop_pct chosen from the data when not set ------------------------


def test_small_images_train_at_their_own_size_with_mild_crops(tmp_path, caplog):
    import logging

    write_imagefolder(
        tmp_path,
        {
            "train": {"ant": [("L", (32, 32))] * 5 + [("L", (40, 30))], "bee": [("L", (32, 32))] * 6},
            "val": {"ant": [("L", (32, 32))], "bee": [("L", (32, 32))]},
        },
    )
    with caplog.at_level(logging.INFO, logger="litzoo"):
        dm = ImageFolderDataModule(
            str(tmp_path),
            batch_size=4,
            num_workers=0,
            in_chans=1,
            image_size="auto",
            scale="auto",
            crop_pct="auto",
        )
    assert (dm.image_size, tuple(dm.scale), dm.crop_pct) == (32, (0.5, 1.0), 1.0)
    assert dm.info()["image_size"] == 32
    assert (
        "data.image_size=auto: 32 px (the median shorter side of 12 training images is 32 px)" in caplog.text
    )
    assert "data.scale=auto: [0.5, 1.0]" in caplog.text and "data.crop_pct=auto: 1.0" in caplog.text
    dm.setup("fit")
    images, _ = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 1, 32, 32)
    val_images, _ = next(iter(dm.val_dataloader()))
    assert val_images.shape == (2, 1, 32, 32)


def test_large_images_get_the_imagenet_recipe(tmp_path):
    write_imagefolder(
        tmp_path,
        {
            "train": {"ant": [("RGB", (500, 375)), ("RGB", (640, 480))], "bee": [("RGB", (300, 260))]},
            "val": {"ant": [("RGB", (500, 375))], "bee": [("RGB", (500, 375))]},
        },
    )
    dm = ImageFolderDataModule(
        str(tmp_path), batch_size=2, num_workers=0, image_size="auto", scale="auto", crop_pct="auto"
    )
    assert (dm.image_size, tuple(dm.scale), dm.crop_pct) == (224, (0.08, 1.0), 0.875)
    # Mid-sized images keep their size (a multiple of 8) with ImageNet's crops.
    mid = tmp_path / "mid"
    write_imagefolder(mid, {"train": {"ant": [("L", (150, 161))] * 3}, "val": {"ant": [("L", (150, 161))]}})
    dm = ImageFolderDataModule(str(mid), batch_size=2, num_workers=0, image_size="auto", scale="auto")
    assert (dm.image_size, tuple(dm.scale)) == (152, (0.08, 1.0))


def test_values_the_user_sets_are_kept(tmp_path, caplog):
    import logging

    write_imagefolder(tmp_path, {"train": {"ant": [("L", (32, 32))] * 2}, "val": {"ant": [("L", (32, 32))]}})
    with caplog.at_level(logging.INFO, logger="litzoo"):
        dm = ImageFolderDataModule(
            str(tmp_path), batch_size=2, num_workers=0, image_size=64, scale=[0.2, 1.0], crop_pct=0.9
        )
    assert (dm.image_size, tuple(dm.scale), dm.crop_pct) == (64, (0.2, 1.0), 0.9)
    assert "=auto" not in caplog.text
    # The scale follows the images, not the input size asked for: 32-px photos upsampled stay mildly cropped.
    assert tuple(ImageFolderDataModule(str(tmp_path), batch_size=2, image_size=224, scale="auto").scale) == (
        0.5,
        1.0,
    )


def test_the_imagefolder_config_chooses_from_the_data(tmp_path):
    from conftest import compose

    write_imagefolder(tmp_path, {"train": {"ant": [("L", (32, 32))] * 2}, "val": {"ant": [("L", (32, 32))]}})
    data = compose(["data=imagefolder", f"data.root={tmp_path}"]).data
    assert (data.image_size, data.scale, data.crop_pct) == ("auto", "auto", "auto")
