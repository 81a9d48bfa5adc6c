"""scikit-learn's bundled handwritten digits: the embedded default dataset.

1797 real 8x8 greyscale scans of handwritten digits (UCI ML hand-written digits,
shipped inside scikit-learn, so nothing is downloaded), split deterministically
and stratified into train/val/test and upsampled to `image_size` so standard
ImageNet-style backbones apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision.transforms import v2

from litzoo.data.base import BaseDataModule
from litzoo.vision.transforms import eval_preprocessing


class TensorImageDataset(Dataset):
    """Images held in one tensor (N, C, H, W) with integer labels and an optional per-sample transform."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]


def split_indices(
    labels: Sequence[int], val_fraction: float, test_fraction: float, seed: int
) -> tuple[list[int], list[int], list[int]]:
    """Stratified train/val/test index lists, identical for the same labels, fractions and seed."""
    from sklearn.model_selection import train_test_split

    indices = list(range(len(labels)))
    rest, test = train_test_split(indices, test_size=test_fraction, stratify=labels, random_state=seed)
    rest_labels = [labels[i] for i in rest]
    train, val = train_test_split(
        rest, test_size=val_fraction / (1 - test_fraction), stratify=rest_labels, random_state=seed
    )
    return sorted(train), sorted(val), sorted(test)


class DigitsDataModule(BaseDataModule):
    """Handwritten digits 0-9 as 1-channel `image_size` x `image_size` images; see `conf/data/digits.yaml`.

    `loader_args` (eval_batch_size, pin_memory, persistent_workers, shuffle, sampler, collate, seed,
    ...) go to :class:`~litzoo.data.base.BaseDataModule`, which builds the loaders.
    """

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int = 32,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        augment: bool = True,
        mean: Sequence[float] = (0.305,),
        std: Sequence[float] = (0.376,),
        **loader_args: Any,
    ) -> None:
        super().__init__(batch_size, num_workers, **loader_args)
        self.image_size = image_size
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.augment = augment
        self.mean, self.std = list(mean), list(std)
        self.normalize = v2.Normalize(self.mean, self.std)

    def info(self) -> dict[str, Any]:
        # preprocess: a new (grey, white-on-black) digit image is resized to image_size like the scans.
        return {
            "num_classes": 10,
            "in_chans": 1,
            "image_size": self.image_size,
            "class_names": [str(d) for d in range(10)],
            "preprocess": eval_preprocessing(self.image_size, 1, self.mean, self.std, crop_pct=1.0),
        }

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        images = F.interpolate(images, size=self.image_size, mode="bilinear", align_corners=False).clamp(0, 1)
        labels = torch.tensor(digits.target, dtype=torch.long)
        train, val, test = split_indices(
            digits.target.tolist(), self.val_fraction, self.test_fraction, self.split_seed
        )
        # Small shifts, rotations and scalings; flips would turn digits into other symbols.
        augment = v2.Compose(
            [v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)), self.normalize]
        )
        self.train_set = TensorImageDataset(
            images[train], labels[train], augment if self.augment else self.normalize
        )
        self.val_set = TensorImageDataset(images[val], labels[val], self.normalize)
        self.test_set = TensorImageDataset(images[test], labels[test], self.normalize)
