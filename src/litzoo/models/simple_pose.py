"""SimpleBaseline top-down pose estimation (Xiao, Wu and Wei, ECCV 2018).

The network is a backbone (any timm model, last feature stage) followed by three
deconvolutions (256 channels, 4x4 kernels, BN, ReLU) and a 1x1 convolution to one heatmap
per keypoint, at 1/4 of the input resolution.

Besides the network this module holds the geometry that the top-down pipeline shares
between data and decoding, so the two cannot drift apart:

- the affine crop of a person box to the network input (:func:`get_affine_transform`),
- Gaussian heatmap targets with per-keypoint weights (:func:`encode_heatmaps`),
- argmax decoding with the quarter-pixel offset, mapped back to image coordinates through
  the inverse affine (:func:`decode_heatmaps`, :func:`heatmaps_to_image_keypoints`),
- flip testing (:func:`flip_test`).

Coordinates are pixel indices (the centre of pixel ``i`` is at ``i``), the convention of
torchvision's keypoint transforms and of the SimpleBaseline code. A heatmap coordinate is
an input coordinate divided by the stride, as in the paper's code.

timm is imported when a network is built, not at module import, because the data
pipeline (often in DataLoader workers) uses the geometry here and should not pay for it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from litzoo.errors import DependencyError

# --------------------------------------------------------------------------- geometry


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


# --------------------------------------------------------------------------- heatmaps


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


def flip_test(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    flip_pairs: Sequence[tuple[int, int]],
    shift: bool = True,
) -> torch.Tensor:
    """Average the heatmaps of ``images`` and of their mirror image (flipped back), as in SimpleBaseline.

    ``shift`` moves the flipped-back heatmaps one pixel right (the paper's fix): mirroring
    the image sends heatmap coordinate x/s to w - 1/s - x/s, while mirroring the heatmap
    array sends it to w - 1 - x/s, leaving flipped-back peaks 1 - 1/s (3/4 at stride 4)
    heatmap pixels too far left.
    """
    heatmaps = model(images)
    flipped = flip_back(model(images.flip(-1)), flip_pairs)
    if shift:
        flipped = torch.cat([flipped[..., :1], flipped[..., :-1]], dim=-1)
    return (heatmaps + flipped) * 0.5


def keypoint_mse_loss(pred: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
    """SimpleBaseline's JointsMSELoss: 0.5 * MSE over heatmap pixels, each keypoint scaled by its weight."""
    weight = target_weight.reshape(*target_weight.shape[:2], 1, 1)
    return 0.5 * F.mse_loss(pred * weight, target * weight)


def keypoint_instance_score(
    maxvals: torch.Tensor, box_scores: torch.Tensor, threshold: float = 0.2
) -> torch.Tensor:
    """Instance score for COCO results: box score times the mean confident peak, SimpleBaseline's rescoring."""
    confident = maxvals > threshold
    count = confident.sum(-1).clamp(min=1)
    mean_peak = (maxvals * confident).sum(-1) / count
    return box_scores * mean_peak


# --------------------------------------------------------------------------- network


class SimpleBaseline(nn.Module):
    """Backbone + deconvolution head predicting one heatmap per keypoint at stride ``32 / 2**num_deconv``."""

    def __init__(
        self,
        num_keypoints: int,
        backbone: str = "resnet18",
        pretrained_backbone: str | os.PathLike | None = None,
        deconv_channels: int = 256,
        num_deconv: int = 3,
        deconv_kernel: int = 4,
    ) -> None:
        super().__init__()
        import timm  # deferred: see the module docstring

        kwargs: dict = {"features_only": True, "out_indices": (-1,)}
        if pretrained_backbone is not None:
            path = os.fspath(pretrained_backbone)
            if not os.path.isfile(path):
                raise DependencyError(
                    f"Pretrained backbone weights not found at {path}. Give the path of a local "
                    f"checkpoint for timm model '{backbone}' (a state dict file), or leave the "
                    "pretrained backbone unset to train from scratch."
                )
            kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": path})
        self.backbone = timm.create_model(backbone, **kwargs)
        in_channels = self.backbone.feature_info.channels()[-1]
        self.backbone_stride = self.backbone.feature_info.reduction()[-1]
        padding, output_padding = {4: (1, 0), 3: (1, 1), 2: (0, 0)}[deconv_kernel]
        layers: list[nn.Module] = []
        for _ in range(num_deconv):
            layers += [
                nn.ConvTranspose2d(
                    in_channels,
                    deconv_channels,
                    deconv_kernel,
                    stride=2,
                    padding=padding,
                    output_padding=output_padding,
                    bias=False,
                ),
                nn.BatchNorm2d(deconv_channels),
                nn.ReLU(inplace=True),
            ]
            in_channels = deconv_channels
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(in_channels, num_keypoints, kernel_size=1)
        self.stride = self.backbone_stride // (2**num_deconv)
        self._init_head()

    def _init_head(self) -> None:
        # The paper's initialisation: small normal weights so the initial heatmaps are near zero.
        for m in self.deconv.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.backbone(images)[-1]
        return self.final(self.deconv(features))


def build_simple_baseline(
    num_keypoints: int,
    backbone: str = "resnet18",
    pretrained_backbone: str | os.PathLike | None = None,
    deconv_channels: int = 256,
    num_deconv: int = 3,
) -> SimpleBaseline:
    """Build a SimpleBaseline pose network; weights load only from a local file, never from the network."""
    return SimpleBaseline(
        num_keypoints,
        backbone=backbone,
        pretrained_backbone=pretrained_backbone,
        deconv_channels=deconv_channels,
        num_deconv=num_deconv,
    )
