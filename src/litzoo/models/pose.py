"""SimpleBaseline top-down pose estimation (Xiao, Wu and Wei, ECCV 2018).

The network is a backbone (any timm model, last feature stage) followed by three
deconvolutions (256 channels, 4x4 kernels, BN, ReLU) and a 1x1 convolution to one heatmap
per keypoint, at 1/4 of the input resolution.

Besides the network: flip testing (:func:`flip_test`), the heatmap loss and instance scores.
The crop/heatmap geometry the data pipeline shares with decoding is in
:mod:`litzoo.vision.keypoints`. timm is imported when a network is built.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from litzoo.errors import DependencyError
from litzoo.vision.keypoints import flip_back

# --------------------------------------------------------------------------- heatmaps


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
