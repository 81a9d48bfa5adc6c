"""The joint training transforms keep image and mask aligned; evaluation resizes the image only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from litzoo.vision.segmentation_transforms import (
    RandomCropWithIgnore,
    collate_segmentation,
    eval_image_transform,
    rescaled_size,
    train_transforms,
)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def block_scene(seed: int, height: int = 60, width: int = 84) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """A mask of 12 x 12 blocks of classes 0-3 and an image *drawn from it* (red = 40 + 60 * class)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 4, size=(height // 12 + 1, width // 12 + 1))
    labels = np.kron(blocks, np.ones((12, 12), dtype=np.int64))[:height, :width]
    pixels = np.stack([40 + 60 * labels, 255 - 60 * labels, np.full_like(labels, 128)]).astype(np.uint8)
    return tv_tensors.Image(torch.from_numpy(pixels)), tv_tensors.Mask(
        torch.from_numpy(labels.astype(np.uint8))
    )


def labels_from_image(image: torch.Tensor) -> torch.Tensor:
    """Undo the normalisation and read the class back from the red channel."""
    red = (image[0] * STD[0] + MEAN[0]) * 255
    return ((red - 40) / 60).round().long()


@pytest.mark.parametrize("seed", range(6))
def test_without_resampling_the_mask_drawn_from_the_image_matches_it_after_crop_and_flip(seed):
    torch.manual_seed(seed)
    image, mask = block_scene(seed)
    transform = train_transforms(
        (48, 100), MEAN, STD, ratio_range=(1.0, 1.0), cat_max_ratio=1.0, hflip_prob=0.5, photometric=False
    )
    out_image, out_mask = transform(image, mask)
    assert out_image.shape == (3, 48, 100) and out_mask.shape == (48, 100) and out_mask.dtype == torch.int64
    labelled = out_mask != 255  # the crop is wider than the image: the rest is padding
    assert int((~labelled).sum()) == 48 * (100 - 84)
    assert torch.equal(labels_from_image(out_image)[labelled], out_mask[labelled])
    padding = (out_image[0] * STD[0] + MEAN[0])[~labelled]
    assert torch.allclose(padding, torch.zeros_like(padding), atol=1e-6)  # image padded with 0, mask with 255


@pytest.mark.parametrize("seed", range(6))
def test_random_rescale_crop_flip_and_photometric_keep_image_and_mask_aligned(seed):
    torch.manual_seed(seed)
    image, mask = block_scene(seed)
    transform = train_transforms(
        (40, 40), MEAN, STD, ratio_range=(0.5, 2.0), cat_max_ratio=0.75, photometric=False
    )
    out_image, out_mask = transform(image, mask)
    labelled = out_mask != 255
    agree = (labels_from_image(out_image) == out_mask)[labelled].float().mean()
    # Bilinear image vs nearest mask differ only on block boundaries.
    assert float(agree) > 0.9
    # Photometric distortion changes the image only: the mask is the same with and without it.
    torch.manual_seed(seed)
    with_colour = train_transforms(
        (40, 40), MEAN, STD, ratio_range=(0.5, 2.0), cat_max_ratio=0.75, photometric=True
    )(image, mask)[1]
    assert torch.equal(with_colour, out_mask)


def test_a_crop_of_one_class_is_drawn_again():
    mask = torch.zeros(1, 100, 100, dtype=torch.uint8)
    mask[:, :, 90:] = 1  # class 1 only in the last 10 columns
    crop = RandomCropWithIgnore((20, 20), cat_max_ratio=0.75)
    assert not crop._balanced(tv_tensors.Mask(mask[0]), 0, 0)
    assert crop._balanced(tv_tensors.Mask(mask[0]), 0, 80)
    torch.manual_seed(0)
    lefts = [crop.make_params([tv_tensors.Mask(mask[0])])["left"] for _ in range(50)]
    # A uniform left edge lands in 76-80 (the balanced crops) 5 times in 81; re-drawn, far more often.
    assert sum(76 <= left <= 80 for left in lefts) > 10


def test_rescale_keeps_the_aspect_ratio_as_mmsegmentation():
    assert rescaled_size(375, 500, (2048, 512)) == (512, 683)  # short side to 512
    assert rescaled_size(1024, 2048, (2048, 1024)) == (1024, 2048)
    assert rescaled_size(1024, 2048, (2048, 1024), ratio=0.5) == (512, 1024)
    assert rescaled_size(120, 160, None, ratio=1.5) == (180, 240)


def test_evaluation_resizes_only_the_image():
    image, mask = block_scene(0, 75, 100)
    out = eval_image_transform(MEAN, STD, scale=(2048, 512))(image)
    assert out.shape == (3, 512, 683)
    assert eval_image_transform(MEAN, STD)(image).shape == (3, 75, 100)
    batch = collate_segmentation(
        [(out.as_subclass(torch.Tensor), mask.long()), (torch.zeros(3, 8, 8), torch.zeros(8, 8))]
    )
    assert isinstance(batch[0], list) and batch[1][0].shape == (75, 100)  # full-resolution masks, as a list
