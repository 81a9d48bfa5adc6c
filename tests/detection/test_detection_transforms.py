"""Detection transforms: geometry moves boxes/masks/keypoints with the image; flips swap left/right keypoints."""

from __future__ import annotations

import torch
from torchvision import tv_tensors

from litzoo.vision.detection_transforms import (
    RandomHorizontalFlipWithKeypointSwap,
    detection_eval_transforms,
    detection_train_transforms,
    flip_pairs_from_names,
    sanitize_boxes,
)

COCO_KEYPOINTS = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
]


def sample(h: int = 40, w: int = 60) -> tuple[tv_tensors.Image, dict]:
    image = torch.zeros(3, h, w, dtype=torch.uint8)
    image[0, 5:15, 10:20] = 255  # a red block at the first box
    masks = torch.zeros(2, h, w, dtype=torch.uint8)
    masks[0, 5:15, 10:20] = 1
    masks[1, 20:30, 30:50] = 1
    # Keypoints (x, y, v): left at x=12, right at x=18 for the first instance; one unlabelled point.
    kps = torch.tensor(
        [
            [[15.0, 6.0, 2.0], [12.0, 10.0, 2.0], [18.0, 10.0, 1.0], [0.0, 0.0, 0.0]],
            [[40.0, 21.0, 2.0], [31.0, 25.0, 2.0], [49.0, 25.0, 2.0], [40.0, 29.0, 2.0]],
        ]
    )
    target = {
        "boxes": tv_tensors.BoundingBoxes(
            torch.tensor([[10.0, 5, 20, 15], [30, 20, 50, 30]]), format="XYXY", canvas_size=(h, w)
        ),
        "labels": torch.tensor([1, 2]),
        "masks": tv_tensors.Mask(masks),
        "keypoints": kps,
        "area": torch.tensor([100.0, 200.0]),
        "iscrowd": torch.tensor([0, 0]),
        "image_id": 7,
    }
    return tv_tensors.Image(image), target


def test_flip_pairs_from_coco_names() -> None:
    assert flip_pairs_from_names(COCO_KEYPOINTS) == [
        (1, 2),
        (3, 4),
        (5, 6),
        (7, 8),
        (9, 10),
        (11, 12),
        (13, 14),
        (15, 16),
    ]
    assert flip_pairs_from_names(["top", "left", "right", "bottom"]) == [(1, 2)]


def test_flip_moves_everything_and_swaps_left_right() -> None:
    image, target = sample()
    pipeline = detection_train_transforms(min_size=40, hflip_prob=1.0, flip_pairs=[(1, 2)], photometric=False)
    out_image, out = pipeline(image, target)
    w = 60
    # Boxes mirror as continuous coordinates: x -> W - x.
    assert out["boxes"].tolist() == [[40.0, 5.0, 50.0, 15.0], [10.0, 20.0, 30.0, 30.0]]
    # Keypoints mirror as pixel indices (x -> W - 1 - x) and left/right trade places, visibility included.
    kps = out["keypoints"]
    assert isinstance(kps, torch.Tensor) and not isinstance(kps, tv_tensors.TVTensor)
    assert kps[0].tolist() == [
        [w - 1 - 15.0, 6.0, 2.0],
        [w - 1 - 18.0, 10.0, 1.0],
        [w - 1 - 12.0, 10.0, 2.0],
        [0.0, 0.0, 0.0],
    ]
    # After the swap the "left" keypoint (index 1) is again the one with the smaller x.
    assert kps[1, 1, 0] < kps[1, 2, 0]
    assert torch.equal(out["masks"][0], sample()[1]["masks"][0].flip(-1))
    assert out_image.dtype == torch.float32 and out_image[0, 5:15, 40:50].eq(1.0).all()
    assert out_image[0].sum() == 100


def test_flip_without_pairs_only_mirrors() -> None:
    image, target = sample()
    flip = RandomHorizontalFlipWithKeypointSwap(p=1.0, flip_pairs=())
    _, out = flip(
        image,
        {**target, "keypoints": tv_tensors.KeyPoints(target["keypoints"][..., :2], canvas_size=(40, 60))},
    )
    assert out["keypoints"][0, 1].tolist() == [59 - 12.0, 10.0]


def test_flip_probability_zero_is_identity() -> None:
    image, target = sample()
    out_image, out = detection_train_transforms(min_size=40, hflip_prob=0.0, photometric=False)(image, target)
    assert out["boxes"].tolist() == target["boxes"].tolist()
    assert torch.equal(out["keypoints"], target["keypoints"])


def test_resize_keeps_aspect_ratio_and_scales_targets() -> None:
    image, target = sample()
    out_image, out = detection_train_transforms(min_size=80, max_size=200, hflip_prob=0.0, photometric=False)(
        image, target
    )
    assert tuple(out_image.shape[-2:]) == (80, 120)
    assert out["boxes"].tolist() == [[20.0, 10.0, 40.0, 30.0], [60.0, 40.0, 100.0, 60.0]]
    assert tuple(out["masks"].shape) == (2, 80, 120) and int(out["masks"][0].sum()) == 400
    assert out["keypoints"][1, 0, :2].tolist() == [80.0, 42.0]
    # max_size caps the longer side: 40x60 with shorter side 80 would be 120 long; cap at 90 -> 60x90.
    capped, _ = detection_train_transforms(min_size=80, max_size=90, hflip_prob=0.0, photometric=False)(
        image, target
    )
    assert tuple(capped.shape[-2:]) == (60, 90)


def test_sanitize_keeps_instance_fields_aligned() -> None:
    image, target = sample()
    boxes = torch.tensor([[10.0, 5, 20, 15], [30, 20, 30.5, 30]])  # second box is 0.5 px wide
    target["boxes"] = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(40, 60))
    _, out = detection_train_transforms(min_size=40, hflip_prob=0.0, photometric=False)(image, target)
    assert out["labels"].tolist() == [1]
    assert out["area"].tolist() == [100.0] and out["iscrowd"].tolist() == [0]
    assert out["keypoints"].shape == (1, 4, 3) and out["masks"].shape[0] == 1
    plain = sanitize_boxes()(image, {"boxes": target["boxes"], "labels": torch.tensor([3, 4])})
    assert plain[1]["labels"].tolist() == [3]


def test_photometric_jitter_changes_pixels_not_geometry() -> None:
    torch.manual_seed(0)
    image = tv_tensors.Image(torch.randint(0, 256, (3, 40, 60), dtype=torch.uint8))
    _, target = sample()
    changed = 0
    for _ in range(8):
        out_image, out = detection_train_transforms(min_size=40, hflip_prob=0.0, photometric=True)(
            image, target
        )
        changed += int(not torch.allclose(out_image, image.float() / 255))
        assert out["boxes"].tolist() == target["boxes"].tolist()
    assert changed > 0


def test_eval_transforms_keep_the_original_frame() -> None:
    image, target = sample()
    out_image, out = detection_eval_transforms()(image, target)
    assert out_image.dtype == torch.float32 and tuple(out_image.shape) == (3, 40, 60)
    assert out["boxes"].tolist() == target["boxes"].tolist() and torch.equal(
        out["keypoints"], target["keypoints"]
    )
