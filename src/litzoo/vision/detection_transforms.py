"""Train/eval transforms for detection, instance segmentation and keypoints (torchvision.transforms.v2).

Samples are ``(image, target)`` pairs in torchvision's detection convention: a
``tv_tensors.Image`` and a dict with ``boxes`` (``tv_tensors.BoundingBoxes``, XYXY),
``labels``, optional ``masks`` (``tv_tensors.Mask``) and ``keypoints`` (``(N, K, 3)``:
x, y, visibility), plus per-instance ``area``/``iscrowd``. All geometry (resize, flip) is
done by torchvision's kernels on the tv_tensors; this module adds what torchvision
leaves out:

- keypoints travel as ``tv_tensors.KeyPoints`` (x, y only) during the pipeline, with the
  visibility column carried beside them and reattached at the end;
- a horizontal flip swaps left/right keypoint indices (torchvision mirrors the
  coordinates but cannot know that "left_eye" becomes "right_eye");
- box sanitising also drops the keypoints, areas and crowd flags of removed boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torchvision.transforms.v2 as T
from torchvision import tv_tensors

VISIBILITY_KEY = "keypoints_visibility"
_PER_INSTANCE_KEYS = ("labels", "area", "iscrowd", "difficult", "keypoints", VISIBILITY_KEY)


def flip_pairs_from_names(keypoint_names: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs of keypoints whose names differ only by ``left`` <-> ``right`` (e.g. COCO's 8 pairs)."""
    index = {name: i for i, name in enumerate(keypoint_names)}
    pairs = []
    for i, name in enumerate(keypoint_names):
        if "left" in name:
            j = index.get(name.replace("left", "right"))
            if j is not None:
                pairs.append((i, j))
    return pairs


def flip_permutation(num_keypoints: int, flip_pairs: Sequence[tuple[int, int]]) -> list[int]:
    """Keypoint order after a horizontal flip: ``new[i] = old[perm[i]]``."""
    perm = list(range(num_keypoints))
    for left, right in flip_pairs:
        perm[left], perm[right] = right, left
    return perm


def _split(inputs: tuple) -> tuple[Any, dict]:
    if len(inputs) != 2 or not isinstance(inputs[1], dict):
        raise TypeError("detection transforms take (image, target) with target a dict")
    return inputs[0], dict(inputs[1])


class KeypointsToTVTensor(T.Transform):
    """Split ``target["keypoints"]`` (N, K, 3) into ``tv_tensors.KeyPoints`` (N, K, 2) and a visibility tensor."""

    def forward(self, *inputs: Any) -> Any:
        image, target = _split(inputs)
        kps = target.get("keypoints")
        if kps is not None and not isinstance(kps, tv_tensors.KeyPoints):
            kps = torch.as_tensor(kps, dtype=torch.float32)
            canvas = tuple(image.shape[-2:])
            target["keypoints"] = tv_tensors.KeyPoints(kps[..., :2].clone(), canvas_size=canvas)
            target[VISIBILITY_KEY] = kps[..., 2].clone()
        return image, target


class KeypointsFromTVTensor(T.Transform):
    """Reattach the visibility column; points that left the image become invisible (0)."""

    def forward(self, *inputs: Any) -> Any:
        image, target = _split(inputs)
        if VISIBILITY_KEY in target:
            xy = target["keypoints"].as_subclass(torch.Tensor)
            vis = target.pop(VISIBILITY_KEY).clone()
            h, w = image.shape[-2:]
            outside = (xy[..., 0] < 0) | (xy[..., 0] > w - 1) | (xy[..., 1] < 0) | (xy[..., 1] > h - 1)
            vis[outside] = 0
            kps = torch.cat([xy, vis[..., None]], dim=-1)
            kps[vis == 0] = 0.0  # COCO writes unlabelled keypoints as (0, 0, 0)
            target["keypoints"] = kps
        return image, target


class RandomHorizontalFlipWithKeypointSwap(T.Transform):
    """Horizontal flip of image, boxes, masks and keypoints that also swaps left/right keypoint indices."""

    def __init__(self, p: float = 0.5, flip_pairs: Sequence[tuple[int, int]] = ()) -> None:
        super().__init__()
        self.p = p
        self.flip_pairs = [tuple(pair) for pair in flip_pairs]
        self._flip = T.RandomHorizontalFlip(p=1.0)

    def forward(self, *inputs: Any) -> Any:
        image, target = _split(inputs)
        if torch.rand(1).item() >= self.p:
            return image, target
        image, target = self._flip(image, target)
        if "keypoints" in target and self.flip_pairs:
            kps = target["keypoints"]
            perm = flip_permutation(kps.shape[-2], self.flip_pairs)
            target["keypoints"] = (
                tv_tensors.wrap(kps[:, perm], like=kps)
                if isinstance(kps, tv_tensors.KeyPoints)
                else kps[:, perm]
            )
            if VISIBILITY_KEY in target:
                target[VISIBILITY_KEY] = target[VISIBILITY_KEY][:, perm]
        return image, target

    def extra_repr(self) -> str:
        return f"p={self.p}, flip_pairs={self.flip_pairs}"


def _instance_fields(inputs: Any) -> tuple[torch.Tensor, ...]:
    """Everything SanitizeBoundingBoxes must filter together with the boxes."""
    target = inputs[1]
    return tuple(target[k] for k in _PER_INSTANCE_KEYS if isinstance(target.get(k), torch.Tensor))


def sanitize_boxes(min_size: float = 1.0) -> T.SanitizeBoundingBoxes:
    """SanitizeBoundingBoxes that keeps labels, areas, crowd flags and keypoints aligned with the boxes."""
    return T.SanitizeBoundingBoxes(min_size=min_size, labels_getter=_instance_fields)


def detection_train_transforms(
    min_size: int | Sequence[int] | None = 128,
    max_size: int | None = None,
    hflip_prob: float = 0.5,
    flip_pairs: Sequence[tuple[int, int]] = (),
    photometric: bool = True,
) -> T.Compose:
    """Training preset: photometric jitter, aspect-preserving resize, flip (with keypoint swap), sanitise, float.

    ``min_size`` is the shorter side after resizing; a sequence picks one at random per
    image (multi-scale training, torchvision's ``RandomShortestSize``). ``max_size`` caps
    the longer side. ``None`` keeps the image size: torchvision's R-CNN models resize
    internally (their own ``min_size``/``max_size``, multi-scale when given several).
    """
    steps: list[Any] = [KeypointsToTVTensor()]
    if photometric:
        steps.append(T.RandomPhotometricDistort(p=0.5))
    if isinstance(min_size, int):
        steps.append(T.Resize(min_size, max_size=max_size))
    elif min_size is not None:
        steps.append(T.RandomShortestSize(list(min_size), max_size=max_size))
    if hflip_prob > 0:
        steps.append(RandomHorizontalFlipWithKeypointSwap(hflip_prob, flip_pairs))
    steps += [sanitize_boxes(), KeypointsFromTVTensor(), T.ToDtype(torch.float32, scale=True)]
    return T.Compose(steps)


def detection_eval_transforms() -> T.Compose:
    """Evaluation preset: only conversion to float in [0, 1].

    No resize on purpose: torchvision's R-CNN models resize internally and map their
    predictions back to the size of the image they were given, so keeping the original
    size yields boxes, masks and keypoints in the annotation's pixel frame, as COCOeval needs.
    """
    return T.Compose([T.ToDtype(torch.float32, scale=True)])


def collate_detection(batch: Sequence[tuple[Any, dict]]) -> tuple[list, list[dict]]:
    """Batch detection samples as lists (images differ in size; the model batches them itself)."""
    images, targets = zip(*batch) if batch else ((), ())
    return list(images), list(targets)
