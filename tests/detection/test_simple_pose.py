"""SimpleBaseline: heatmap encode/decode, affine round trips, flip testing, the top-down crop dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from litzoo.datamodules.detection.coco import CocoTopDownPose
from litzoo.models.pose import build_simple_baseline, flip_test, keypoint_mse_loss
from litzoo.vision.keypoints import (
    affine_points,
    box_to_center_scale,
    decode_heatmaps,
    encode_heatmaps,
    flip_back,
    get_affine_transform,
    heatmaps_to_image_keypoints,
)

INPUT_WH = (96, 128)
HEATMAP_WH = (24, 32)
STRIDE = 4


def random_keypoints(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # At least 2 heatmap pixels from the border, where the quarter-offset rule applies.
    xy = torch.rand(n, 2, generator=g) * torch.tensor([INPUT_WH[0] - 17.0, INPUT_WH[1] - 17.0]) + 8
    return torch.cat([xy, torch.full((n, 1), 2.0)], dim=1)


@pytest.mark.parametrize(("unbiased", "tolerance"), [(False, 0.5), (True, 0.25)])
def test_encode_decode_round_trip(unbiased: bool, tolerance: float) -> None:
    kps = random_keypoints(200, seed=0)
    heatmaps, weight = encode_heatmaps(kps, HEATMAP_WH, STRIDE, sigma=2.0, unbiased=unbiased)
    assert heatmaps.shape == (200, 32, 24) and weight.eq(1).all()
    coords, maxvals = decode_heatmaps(heatmaps[None])
    error = (coords[0] - kps[:, :2] / STRIDE).abs()
    # Paper targets sit on the nearest heatmap pixel (error <= 0.5); sub-pixel targets decode within 1/4.
    assert error.max() <= tolerance + 1e-6
    assert maxvals.min() > 0.88  # a peak of 1 on (or next to) the grid


def test_invisible_or_outside_keypoints_get_no_weight() -> None:
    kps = torch.tensor([[40.0, 50.0, 0.0], [40.0, 50.0, 1.0], [-60.0, 50.0, 2.0], [95.0, 127.0, 2.0]])
    heatmaps, weight = encode_heatmaps(kps, HEATMAP_WH, STRIDE)
    assert weight.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert heatmaps[0].abs().sum() == 0 and heatmaps[2].abs().sum() == 0
    pred = torch.rand(1, 4, 32, 24)
    loss = keypoint_mse_loss(pred, heatmaps[None], weight[None])
    manual = 0.5 * ((pred - heatmaps[None]) ** 2 * weight.view(1, 4, 1, 1)).mean()
    torch.testing.assert_close(loss, manual)


@pytest.mark.parametrize("rotation", [0.0, 30.0])
def test_image_to_heatmap_and_back_through_the_affine(rotation: float) -> None:
    box = [210.0, 95.0, 60.0, 140.0]  # xywh of a person-like box in a large image
    image_kps = np.array([[240.0, 100.0], [215.0, 160.0], [265.0, 170.0], [238.0, 230.0]])
    center, scale = box_to_center_scale(box, INPUT_WH[0] / INPUT_WH[1])
    assert scale[0] / scale[1] == pytest.approx(INPUT_WH[0] / INPUT_WH[1])
    matrix = get_affine_transform(center, scale, rotation, INPUT_WH)
    crop_kps = affine_points(image_kps, matrix)
    inverse = get_affine_transform(center, scale, rotation, INPUT_WH, inverse=True)
    np.testing.assert_allclose(affine_points(crop_kps, inverse), image_kps, atol=1e-9)
    np.testing.assert_allclose(affine_points(center[None], matrix)[0], [INPUT_WH[0] / 2, INPUT_WH[1] / 2])

    kps = torch.tensor(np.concatenate([crop_kps, np.full((4, 1), 2.0)], 1), dtype=torch.float32)
    heatmaps, _ = encode_heatmaps(kps, HEATMAP_WH, STRIDE, unbiased=True)
    decoded = heatmaps_to_image_keypoints(
        heatmaps[None],
        torch.tensor(center[None]),
        torch.tensor(scale[None]),
        rotations=torch.tensor([rotation]),
    )
    pixels_per_heatmap_cell = scale[0] / HEATMAP_WH[0]
    assert np.abs(decoded[0, :, :2].numpy() - image_kps).max() <= 0.25 * pixels_per_heatmap_cell * 1.42
    assert decoded[0, :, 2].min() > 0.88


def test_flip_test_realigns_and_swaps_left_right() -> None:
    flip_pairs = [(1, 2)]
    kps = torch.tensor([[48.0, 20, 2], [30, 60, 2], [70, 64, 2], [50, 110, 2]])
    mirrored = kps.clone()
    mirrored[:, 0] = INPUT_WH[0] - 1 - kps[:, 0]  # pixel-index mirror, as torchvision and the dataset do
    mirrored = mirrored[[0, 2, 1, 3]]  # what was the left keypoint is now on the right, and vice versa
    image = torch.rand(1, 3, INPUT_WH[1], INPUT_WH[0])

    def ideal(batch: torch.Tensor) -> torch.Tensor:
        """A perfect model: the exact targets of whichever image it is shown."""
        seen = kps if torch.equal(batch, image) else mirrored
        assert torch.equal(batch, image) or torch.equal(batch, image.flip(-1))
        return encode_heatmaps(seen, HEATMAP_WH, STRIDE, unbiased=True)[0][None]

    averaged = flip_test(ideal, image, flip_pairs)
    # The flipped-back peak lands 1 - 1/stride pixels left; the 1-pixel shift leaves it 1/stride right,
    # i.e. one input pixel: the average is exactly the mean of the targets at x and at x + 1.
    shifted = kps.clone()
    shifted[:, 0] += 1
    expected = 0.5 * (
        encode_heatmaps(kps, HEATMAP_WH, STRIDE, unbiased=True)[0]
        + encode_heatmaps(shifted, HEATMAP_WH, STRIDE, unbiased=True)[0]
    )
    torch.testing.assert_close(averaged[0, :, :, 1:], expected[:, :, 1:], atol=1e-6, rtol=0)
    coords, _ = decode_heatmaps(averaged)
    assert (coords[0] * STRIDE - kps[:, :2]).abs().max() <= STRIDE * 0.5
    # Without swapping channels the "left" heatmap would peak at the right keypoint's mirror.
    unswapped = 0.5 * (ideal(image) + flip_back(ideal(image.flip(-1)), []))
    wrong, _ = decode_heatmaps(unswapped)
    assert (wrong[0, 1] * STRIDE - kps[1, :2]).abs().max() > 8


def test_simple_baseline_shapes_and_initial_heatmaps() -> None:
    torch.manual_seed(0)
    model = build_simple_baseline(num_keypoints=4, backbone="resnet18")
    assert model.stride == 4
    deconvs = [m for m in model.deconv if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in deconvs] == [(256, (4, 4), (2, 2))] * 3
    out = model(torch.rand(2, 3, 128, 96))
    assert out.shape == (2, 4, 32, 24)
    assert out.abs().max() < 0.05  # the paper's small initialisation starts near-empty heatmaps
    loss = keypoint_mse_loss(out, torch.rand(2, 4, 32, 24), torch.ones(2, 4))
    loss.backward()
    assert model.backbone.conv1.weight.grad is not None


# --------------------------------------------------------------------------- the top-down dataset


@pytest.fixture()
def gradient_pose_dataset(tmp_path: Path) -> tuple[Path, Path]:
    """One 200x150 PNG whose red channel is x and green channel is y, with one annotated instance."""
    xs, ys = np.meshgrid(np.arange(200), np.arange(150))
    pixels = np.stack([xs, ys, np.zeros_like(xs)], -1).astype(np.uint8)
    (tmp_path / "val2017").mkdir()
    Image.fromarray(pixels).save(tmp_path / "val2017" / "g.png")
    data = {
        "images": [{"id": 1, "file_name": "g.png", "width": 200, "height": 150}],
        "categories": [
            {"id": 1, "name": "shape", "keypoints": ["top", "left", "right", "bottom"], "skeleton": [[1, 2]]}
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [60, 40, 60, 70],
                "area": 4200,
                "iscrowd": 0,
                "num_keypoints": 3,
                "keypoints": [90, 42, 2, 62, 80, 2, 118, 84, 1, 0, 0, 0],
            }
        ],
    }
    ann = tmp_path / "person_keypoints_val2017.json"
    ann.write_text(json.dumps(data))
    return ann, tmp_path / "val2017"


def test_top_down_crop_samples_the_right_pixels(gradient_pose_dataset: tuple[Path, Path]) -> None:
    ds = CocoTopDownPose(
        *gradient_pose_dataset, input_size=(128, 96), train=False, mean=(0, 0, 0), std=(1, 1, 1)
    )
    assert len(ds) == 1 and ds.flip_pairs == [(1, 2)]
    crop, target = ds[0]
    assert crop.shape == (3, 128, 96) and target["heatmaps"].shape == (4, 32, 24)
    assert target["target_weight"].tolist() == [1.0, 1.0, 1.0, 0.0]
    inverse = get_affine_transform(
        target["center"].numpy(), target["scale"].numpy(), 0.0, (96, 128), inverse=True
    )
    # Crop keypoints map back onto the annotation.
    back = affine_points(target["keypoints"][:3, :2].numpy(), inverse)
    np.testing.assert_allclose(back, [[90, 42], [62, 80], [118, 84]], atol=1e-4)
    # And the crop's pixels are the image's pixels at the mapped positions (red = x, green = y).
    for u, v in [(48, 64), (10, 20), (80, 100)]:
        x, y = affine_points(np.array([[u, v]], dtype=float), inverse)[0]
        assert float(crop[0, v, u]) * 255 == pytest.approx(x, abs=1e-3)
        assert float(crop[1, v, u]) * 255 == pytest.approx(y, abs=1e-3)


def test_top_down_flip_augmentation_mirrors_and_swaps(gradient_pose_dataset: tuple[Path, Path]) -> None:
    plain = CocoTopDownPose(*gradient_pose_dataset, train=False, mean=(0, 0, 0), std=(1, 1, 1))
    flipped = CocoTopDownPose(
        *gradient_pose_dataset,
        train=True,
        flip_prob=1.0,
        scale_factor=0.0,
        rotation_factor=0.0,
        mean=(0, 0, 0),
        std=(1, 1, 1),
    )
    crop, target = plain[0]
    fcrop, ftarget = flipped[0]
    torch.testing.assert_close(fcrop, crop.flip(-1))
    expected = target["keypoints"][[0, 2, 1, 3]].clone()
    expected[:3, 0] = 96 - 1 - expected[:3, 0]
    torch.testing.assert_close(ftarget["keypoints"][:3], expected[:3])
    assert ftarget["target_weight"].tolist() == [1.0, 1.0, 1.0, 0.0]  # the weights moved with the swap too


def test_top_down_from_detections(gradient_pose_dataset: tuple[Path, Path]) -> None:
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [58, 38, 64, 74], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.1},
    ]
    ds = CocoTopDownPose(*gradient_pose_dataset, detections=dets, det_score_threshold=0.5)
    assert len(ds) == 1
    _, target = ds[0]
    assert float(target["score"]) == pytest.approx(0.9) and target["target_weight"].sum() == 0
    torch.testing.assert_close(target["center"], torch.tensor([90.0, 75.0]))


def test_top_down_crop_has_no_half_pixel_bias(gradient_pose_dataset: tuple[Path, Path]) -> None:
    # A small box blown up ~8x: a half-pixel convention slip would shift every sample by ~0.4 px.
    dets = [{"image_id": 1, "category_id": 1, "bbox": [95, 70, 9, 12], "score": 1.0}]
    ds = CocoTopDownPose(*gradient_pose_dataset, detections=dets, mean=(0, 0, 0), std=(1, 1, 1))
    crop, target = ds[0]
    inverse = get_affine_transform(
        target["center"].numpy(), target["scale"].numpy(), 0.0, (96, 128), inverse=True
    )
    vs, us = np.mgrid[8:120:4, 8:88:4]
    xy = affine_points(np.stack([us.ravel(), vs.ravel()], 1).astype(float), inverse)
    red = crop[0].numpy()[vs.ravel(), us.ravel()] * 255
    green = crop[1].numpy()[vs.ravel(), us.ravel()] * 255
    # Bilinear sampling of a linear ramp is exact, so any convention slip shows directly.
    assert np.abs(red - xy[:, 0]).max() < 1e-3 and np.abs(green - xy[:, 1]).max() < 1e-3
