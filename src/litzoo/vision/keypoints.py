"""Top-down keypoint geometry shared by the pose data pipeline and its decoding.

- the affine crop of a person box to the network input (:func:`get_affine_transform`),
- Gaussian heatmap targets with per-keypoint weights (:func:`encode_heatmaps`),
- argmax decoding with the quarter-pixel offset, mapped back to image coordinates through
  the inverse affine (:func:`decode_heatmaps`, :func:`heatmaps_to_image_keypoints`),
- mirrored heatmaps for flip testing (:func:`flip_back`).

Data (crops and targets) and models (decoding) both use these, so they live here and cannot
drift apart. Coordinates are pixel indices (the centre of pixel ``i`` is at ``i``), the
convention of torchvision's keypoint transforms and of the SimpleBaseline code. A heatmap
coordinate is an input coordinate divided by the stride, as in the paper's code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def box_to_center_scale(
    box_xywh: Sequence[float], aspect_ratio: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Centre and size ``(w, h)`` in pixels of the crop around a box, widened to ``aspect_ratio`` (w / h).

    The box is grown to the input's aspect ratio (so the crop is not distorted) and then
    padded by ``padding`` on both sides, as SimpleBaseline does (it keeps context around
    the person). Unlike the original code the size stays in pixels instead of units of 200.
    """
    x, y, w, h = (float(v) for v in box_xywh)
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float64)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return center, np.array([w * padding, h * padding], dtype=np.float64)


def get_affine_transform(
    center: Sequence[float],
    scale_wh: Sequence[float],
    rotation_deg: float,
    output_wh: Sequence[int],
    inverse: bool = False,
) -> np.ndarray:
    """2x3 matrix taking image points to crop points (or back with ``inverse=True``).

    The region of size ``scale_wh`` centred on ``center``, rotated by ``rotation_deg``
    (counter-clockwise as seen on screen), is mapped onto an ``output_wh`` crop.
    """
    cx, cy = float(center[0]), float(center[1])
    out_w, out_h = float(output_wh[0]), float(output_wh[1])
    sx, sy = out_w / float(scale_wh[0]), out_h / float(scale_wh[1])
    theta = math.radians(rotation_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    # Translate the centre to the origin, rotate (y points down, hence the signs), scale, then
    # move the origin to the crop centre.
    to_origin = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=np.float64)
    rotate = np.array([[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]], dtype=np.float64)
    scale = np.array([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], dtype=np.float64)
    to_crop = np.array([[1, 0, out_w * 0.5], [0, 1, out_h * 0.5], [0, 0, 1]], dtype=np.float64)
    matrix = to_crop @ scale @ rotate @ to_origin
    if inverse:
        matrix = np.linalg.inv(matrix)
    return matrix[:2]


def affine_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to points of shape ``(..., 2)``."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def crop_image(image: torch.Tensor, matrix: np.ndarray, output_wh: Sequence[int]) -> torch.Tensor:
    """Warp a float image ``(C, H, W)`` with the 2x3 image->crop ``matrix`` into ``(C, out_h, out_w)``.

    Bilinear sampling in float (no 8-bit rounding), zeros outside the image. Every crop
    pixel index is sent back through the inverse matrix; ``align_corners=True`` makes
    grid_sample's -1/+1 the centres of the corner pixels, i.e. the pixel-index convention.
    """
    out_w, out_h = int(output_wh[0]), int(output_wh[1])
    h, w = image.shape[-2:]
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    vs, us = np.mgrid[0:out_h, 0:out_w].astype(np.float64)
    xy = affine_points(np.stack([us, vs], axis=-1), inverse)
    grid = np.stack([2 * xy[..., 0] / max(w - 1, 1) - 1, 2 * xy[..., 1] / max(h - 1, 1) - 1], axis=-1)
    grid_t = torch.from_numpy(grid).to(image.dtype)[None]
    return F.grid_sample(image[None], grid_t, mode="bilinear", padding_mode="zeros", align_corners=True)[0]


def encode_heatmaps(
    keypoints: torch.Tensor,
    heatmap_wh: Sequence[int],
    stride: float,
    sigma: float = 2.0,
    unbiased: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian heatmap targets and per-keypoint weights for keypoints ``(K, 3)`` in input pixels.

    As in SimpleBaseline the peak sits on the nearest heatmap pixel and the Gaussian is cut
    at 3 sigma; keypoints with visibility 0, or whose Gaussian falls entirely outside the
    heatmap, get weight 0 so they add nothing to the loss. ``unbiased=True`` centres the
    Gaussian at the exact sub-pixel location instead (Zhang et al., DARK, 2020), which
    removes the rounding bias of the paper's targets.
    """
    w, h = int(heatmap_wh[0]), int(heatmap_wh[1])
    kps = torch.as_tensor(keypoints, dtype=torch.float32)
    mu = kps[:, :2] / stride
    if not unbiased:
        mu = torch.floor(mu + 0.5)
    radius = 3.0 * sigma
    inside = (
        (mu[:, 0] - radius < w)
        & (mu[:, 1] - radius < h)
        & (mu[:, 0] + radius >= 0)
        & (mu[:, 1] + radius >= 0)
    )
    weight = ((kps[:, 2] > 0) & inside).to(torch.float32)
    xs = torch.arange(w, dtype=torch.float32)
    ys = torch.arange(h, dtype=torch.float32)
    dx = xs[None, :] - mu[:, 0:1]  # (K, w)
    dy = ys[None, :] - mu[:, 1:2]  # (K, h)
    gx = torch.exp(-(dx**2) / (2 * sigma**2)) * (dx.abs() <= radius)
    gy = torch.exp(-(dy**2) / (2 * sigma**2)) * (dy.abs() <= radius)
    heatmaps = gy[:, :, None] * gx[:, None, :] * weight[:, None, None]
    return heatmaps, weight


def decode_heatmaps(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Peak locations ``(B, K, 2)`` in heatmap pixels and peak values ``(B, K)``.

    The argmax is moved a quarter pixel towards the higher neighbour in x and in y, the
    SimpleBaseline rule that recovers part of the precision lost to the 4x downsampling.
    """
    b, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, k, -1)
    maxvals, index = flat.max(dim=-1)
    coords = torch.stack(
        [(index % w).to(torch.float32), torch.div(index, w, rounding_mode="floor").float()], -1
    )
    px, py = coords[..., 0].long(), coords[..., 1].long()
    interior = (px > 0) & (px < w - 1) & (py > 0) & (py < h - 1)
    pxc, pyc = px.clamp(1, w - 2), py.clamp(1, h - 2)
    bi = torch.arange(b)[:, None].expand(b, k)
    ki = torch.arange(k)[None, :].expand(b, k)
    diff_x = heatmaps[bi, ki, py.clamp(0, h - 1), pxc + 1] - heatmaps[bi, ki, py.clamp(0, h - 1), pxc - 1]
    diff_y = heatmaps[bi, ki, pyc + 1, px.clamp(0, w - 1)] - heatmaps[bi, ki, pyc - 1, px.clamp(0, w - 1)]
    offset = torch.stack([torch.sign(diff_x), torch.sign(diff_y)], -1) * 0.25 * interior[..., None]
    coords = coords + offset
    # A non-positive peak means the network found nothing; mark it so callers can drop it.
    coords = torch.where((maxvals > 0)[..., None], coords, torch.zeros_like(coords))
    return coords, maxvals


def heatmaps_to_image_keypoints(
    heatmaps: torch.Tensor,
    centers: torch.Tensor | np.ndarray,
    scales: torch.Tensor | np.ndarray,
    rotations: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor:
    """Decode heatmaps ``(B, K, h, w)`` to keypoints ``(B, K, 3)`` = (x, y, peak) in original image pixels.

    Each sample's peaks go back through the inverse of the affine transform that produced
    its crop (built here directly for the heatmap size).
    """
    coords, maxvals = decode_heatmaps(heatmaps)
    h, w = heatmaps.shape[-2:]
    centers = np.asarray(torch.as_tensor(centers).cpu(), dtype=np.float64)
    scales = np.asarray(torch.as_tensor(scales).cpu(), dtype=np.float64)
    rot = np.zeros(len(centers)) if rotations is None else np.asarray(torch.as_tensor(rotations).cpu())
    out = np.empty((coords.shape[0], coords.shape[1], 3), dtype=np.float64)
    for i in range(coords.shape[0]):
        inv = get_affine_transform(centers[i], scales[i], float(rot[i]), (w, h), inverse=True)
        out[i, :, :2] = affine_points(coords[i].cpu().numpy(), inv)
    out[:, :, 2] = maxvals.detach().cpu().numpy()
    return torch.from_numpy(out).to(torch.float32)


def flip_back(heatmaps: torch.Tensor, flip_pairs: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Mirror heatmaps of a flipped image and swap left/right channels so they describe the original image."""
    flipped = heatmaps.flip(-1)
    order = list(range(heatmaps.shape[1]))
    for left, right in flip_pairs:
        order[left], order[right] = right, left
    return flipped[:, order]
