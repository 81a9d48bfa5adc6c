"""CIFAR-10 read from its official python-pickle files (cifar-10-batches-py).

torchvision's CIFAR10 class insists on the official MD5 sums; this reader takes
the same format without that check, so subsets and re-packed copies work too.
Val is a deterministic hold-out of `val_size` training images; test is test_batch.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from litzoo.data.base import BaseDataModule
from litzoo.datamodules.classification.layouts import cifar10_dir
from litzoo.errors import DataError
from litzoo.vision.transforms import eval_preprocessing


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) from one pickled CIFAR-10 batch file."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="latin1")  # the official files are Python 2 pickles
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except Exception as error:
        raise DataError(f"{path} is not a CIFAR-10 python batch file ({error}).") from error
    if len(data) != len(labels):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels.")
    return data, labels


class ArrayImageDataset(Dataset):
    """HWC uint8 images in a numpy array with labels, transformed per sample.

    `sources[i]` names where sample i came from (file and position), for error messages.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        transform: Any,
        num_classes: int = 10,
        sources: list[str] | None = None,
    ) -> None:
        self.images, self.labels, self.transform = images, labels, transform
        self.num_classes, self.sources = num_classes, sources

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = int(self.labels[index])
        if not 0 <= label < self.num_classes:
            where = self.sources[index] if self.sources else f"sample {index}"
            raise DataError(f"{where}: label {label} is outside the label set 0..{self.num_classes - 1}.")
        image = torch.from_numpy(self.images[index]).permute(2, 0, 1)
        return self.transform(image), label


class Cifar10DataModule(BaseDataModule):
    """CIFAR-10 (10 classes, 32x32 RGB); see `conf/data/cifar10.yaml`.

    `loader_args` (eval_batch_size, pin_memory, persistent_workers, shuffle, sampler, collate, seed,
    ...) go to :class:`~litzoo.data.base.BaseDataModule`, which builds the loaders.
    """

    def __init__(
        self,
        root: str,
        batch_size: int = 128,
        num_workers: int | str = "auto",
        val_size: int = 5000,
        split_seed: int = 0,
        augment: bool = True,
        mean: Sequence[float] = (0.4914, 0.4822, 0.4465),
        std: Sequence[float] = (0.2470, 0.2435, 0.2616),
        **loader_args: Any,
    ) -> None:
        super().__init__(batch_size, num_workers, **loader_args)
        self.folder = cifar10_dir(Path(root).expanduser())
        self.val_size, self.split_seed, self.augment = val_size, split_seed, augment
        self.mean, self.std = list(mean), list(std)

    def info(self) -> dict[str, Any]:
        with open(self.folder / "batches.meta", "rb") as f:
            names = pickle.load(f, encoding="latin1")["label_names"]
        # preprocess: CIFAR's eval split is its 32 x 32 images as they are; other files are resized to that.
        return {
            "num_classes": len(names),
            "in_chans": 3,
            "image_size": 32,
            "class_names": list(names),
            "preprocess": eval_preprocessing(32, 3, self.mean, self.std, crop_pct=1.0),
        }

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        files = [self.folder / f"data_batch_{i}" for i in range(1, 6)]
        parts = [read_cifar_batch(f) for f in files]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        sources = np.array([f"{f} image {i}" for f, (_, lab) in zip(files, parts) for i in range(len(lab))])
        if not 0 < self.val_size < len(labels):
            raise DataError(
                f"data.val_size={self.val_size} must be between 1 and {len(labels) - 1} "
                f"(the training files hold {len(labels)} images)."
            )
        order = np.random.default_rng(self.split_seed).permutation(len(labels))
        val, train = np.sort(order[: self.val_size]), np.sort(order[self.val_size :])
        finish = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)]
        augment = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()] if self.augment else []
        eval_tf = v2.Compose(finish)
        self.train_set = ArrayImageDataset(
            images[train], labels[train], v2.Compose(augment + finish), sources=list(sources[train])
        )
        self.val_set = ArrayImageDataset(images[val], labels[val], eval_tf, sources=list(sources[val]))
        test_file = self.folder / "test_batch"
        test_images, test_labels = read_cifar_batch(test_file)
        self.test_set = ArrayImageDataset(
            test_images,
            test_labels,
            eval_tf,
            sources=[f"{test_file} image {i}" for i in range(len(test_labels))],
        )
