"""Video models: an inflated I3D on a static clip reproduces its 2D ResNet's logits; TSN averages per-frame
logits; torchvision's video ResNets and their weights files; the small R(2+1)D."""

from __future__ import annotations

import copy

import pytest
import timm
import torch

from litzoo.errors import ConfigError, DependencyError
from litzoo.models.action_recognition import (
    I3D_RESNET50_INFLATE,
    build_i3d,
    build_small_r2plus1d,
    build_torchvision_video,
    build_tsn,
    inflate_resnet,
)
from litzoo.models.action_recognition_checks import check_weights


def static_clip(images: torch.Tensor, frames: int) -> torch.Tensor:
    return images[:, :, None].repeat(1, 1, frames, 1, 1)


@pytest.mark.parametrize(
    ("arch", "inflate"), [("resnet18", None), ("resnet50", I3D_RESNET50_INFLATE), ("resnet50d", None)]
)
def test_an_inflated_resnet_on_a_static_clip_gives_the_2d_logits(arch, inflate):
    torch.manual_seed(0)
    net2d = timm.create_model(arch, num_classes=7).eval()
    for module in net2d.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    net3d = inflate_resnet(
        copy.deepcopy(net2d), inflate, stem_time_stride=2, pool_time_stride=2, time_padding="replicate"
    ).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = net2d(images), net3d(static_clip(images, 8))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    stem = net3d.conv1 if arch != "resnet50d" else net3d.conv1[0]  # resnet50d: a deep stem of three convs
    assert stem.weight.shape[2] == 5 and isinstance(net3d.bn1, torch.nn.BatchNorm3d)
    if inflate is I3D_RESNET50_INFLATE:
        kernels = [[b.conv1.weight.shape[2] for b in getattr(net3d, f"layer{i}")] for i in range(1, 5)]
        assert kernels == [[3, 3, 3], [3, 1, 3, 1], [3, 1, 3, 1, 3, 1], [1, 3, 1]]
    # Zero temporal padding (the published I3D) differs at the clip's ends, so not exactly equal.
    zeros = inflate_resnet(copy.deepcopy(net2d), inflate).eval()
    with torch.no_grad():
        assert not torch.allclose(zeros(static_clip(images, 8)), expected, atol=1e-5)


def test_i3d_inflates_local_2d_imagenet_weights(tmp_path):
    torch.manual_seed(1)
    net2d = timm.create_model("resnet18", num_classes=1000).eval()
    torch.save(net2d.state_dict(), tmp_path / "resnet18.pth")
    i3d = build_i3d(
        5,
        arch="resnet18",
        pretrained=str(tmp_path / "resnet18.pth"),
        inflate=None,
        time_padding="replicate",
        dropout=0.0,
    ).eval()
    torch.testing.assert_close(i3d.conv1.weight.sum(dim=2), net2d.conv1.weight)  # repeated over time / 5
    features2d = net2d.forward_head(net2d.forward_features(torch.ones(1, 3, 32, 32)), pre_logits=True)
    features3d = i3d.forward_head(i3d.forward_features(torch.ones(1, 3, 4, 32, 32)), pre_logits=True)
    torch.testing.assert_close(features3d, features2d, rtol=1e-4, atol=1e-5)
    assert i3d.fc.out_features == 5


def mmaction_checkpoint(net: torch.nn.Module) -> dict:
    """`net`'s tensors as MMAction2 saves an I3D ResNet3d-18 (mmaction/models/backbones/resnet3d.py: every
    conv + norm is a ConvModule `<name>.conv` / `<name>.bn` under `backbone.`, the head `cls_head.fc_cls`),
    in its checkpoint layout ({"meta", "state_dict"})."""
    own = net.state_dict()
    state = {f"cls_head.fc_cls.{p}": own[f"fc.{p}"] for p in ("weight", "bias")}
    norm = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    state["backbone.conv1.conv.weight"] = own["conv1.weight"]
    state.update({f"backbone.conv1.bn.{p}": own[f"bn1.{p}"] for p in norm})
    for layer in range(1, 5):
        for block in range(2):
            ours, theirs = f"layer{layer}.{block}", f"backbone.layer{layer}.{block}"
            for conv in (1, 2):
                state[f"{theirs}.conv{conv}.conv.weight"] = own[f"{ours}.conv{conv}.weight"]
                state.update({f"{theirs}.conv{conv}.bn.{p}": own[f"{ours}.bn{conv}.{p}"] for p in norm})
            if f"{ours}.downsample.0.weight" in own:
                state[f"{theirs}.downsample.conv.weight"] = own[f"{ours}.downsample.0.weight"]
                state.update({f"{theirs}.downsample.bn.{p}": own[f"{ours}.downsample.1.{p}"] for p in norm})
    assert len(state) == len(own)
    return {"meta": {"mmaction2_version": "1.2.0"}, "state_dict": state}


def test_i3d_fine_tunes_from_an_mmaction2_checkpoint(tmp_path):
    torch.manual_seed(2)
    trained = build_i3d(6, arch="resnet18", inflate=None, dropout=0.0).eval()
    for module in trained.modules():  # non-default statistics, so a norm left unloaded shows
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.save(mmaction_checkpoint(trained), tmp_path / "i3d_mmaction.pth")
    torch.manual_seed(3)
    loaded = build_i3d(
        6, arch="resnet18", inflate=None, dropout=0.0, weights_path=str(tmp_path / "i3d_mmaction.pth")
    ).eval()
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(clip), trained(clip), rtol=0, atol=0)


def test_an_inflation_pattern_that_does_not_fit_the_backbone_is_refused():
    with pytest.raises(ConfigError, match="model.inflate stage 1 has 3 marks for 2 blocks"):
        build_i3d(4, arch="resnet18", inflate=[[1, 1, 1], 1, 1, 1])


def test_tsn_averages_the_2d_logits_of_its_frames():
    torch.manual_seed(0)
    tsn = build_tsn(4, arch="resnet18", dropout=0.0).eval()
    clip = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        expected = torch.stack([tsn.backbone(clip[:, :, t]) for t in range(3)]).mean(0)
        torch.testing.assert_close(tsn(clip), expected)


@pytest.mark.parametrize("arch", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_torchvision_video_resnets_fine_tune_from_a_local_weights_file(arch, tmp_path):
    from torchvision.models import video

    torch.manual_seed(0)
    kinetics = getattr(video, arch)(weights=None, num_classes=400)
    torch.save(kinetics.state_dict(), tmp_path / "k400.pth")
    net = build_torchvision_video(arch, 6, weights_path=str(tmp_path / "k400.pth"))
    assert net.fc.out_features == 6  # the 400-class classifier does not fit: fresh
    torch.testing.assert_close(net.stem[0].weight, kinetics.stem[0].weight)
    assert net(torch.randn(1, 3, 4, 32, 32)).shape == (1, 6)


def test_the_small_r2plus1d_sees_time_and_round_trips_its_weights(tmp_path):
    torch.manual_seed(0)
    net = build_small_r2plus1d(6).eval()
    clip = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(net(clip), net(clip.flip(2)), atol=1e-4)  # frame order matters
        torch.save(
            {"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "run.ckpt"
        )
        again = build_small_r2plus1d(6, weights_path=str(tmp_path / "run.ckpt")).eval()
        torch.testing.assert_close(again(clip), net(clip))


def test_weights_that_are_not_on_this_machine_are_refused_before_torch(tmp_path):
    with pytest.raises(DependencyError, match="model.weights_path=/nope/k400.pth does not exist"):
        check_weights({"weights_path": "/nope/k400.pth"})
    with pytest.raises(DependencyError, match="model.pretrained=/nope/r50.pth does not exist"):
        check_weights({"arch": "resnet50", "pretrained": "/nope/r50.pth"})
    check_weights({"arch": "resnet50", "pretrained": None, "weights_path": None})
