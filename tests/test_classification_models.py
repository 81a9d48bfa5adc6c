"""timm classifiers follow the data; pretrained weights load offline or fail with a clear message."""

from __future__ import annotations

import pytest
import torch
from conftest import CONFIG_DIR
from omegaconf import OmegaConf

from litzoo.errors import DependencyError
from litzoo.models.classification import create_classifier
from litzoo.platform.registry import build, entries_serving


@pytest.mark.parametrize("model", entries_serving("classification", "model", [CONFIG_DIR]))
def test_every_classifier_builds_for_small_grey_images(model):
    entry = OmegaConf.load(CONFIG_DIR / "model" / f"{model}.yaml")
    net = build(entry, num_classes=7, in_chans=1, image_size=32).eval()
    with torch.no_grad():
        logits = net(torch.randn(2, 1, 32, 32))
    assert logits.shape == (2, 7)


def test_local_pretrained_file_loads_backbone_and_replaces_the_head(tmp_path):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    source = timm.create_model("resnet18", num_classes=1000)
    path = tmp_path / "resnet18.safetensors"
    save_file(source.state_dict(), str(path))
    net = create_classifier("resnet18", num_classes=10, in_chans=3, pretrained=str(path))
    assert torch.equal(net.layer3[0].conv1.weight, source.layer3[0].conv1.weight)
    assert net.fc.out_features == 10
    # in_chans=1: timm sums the RGB filters of the first convolution.
    grey = create_classifier("resnet18", num_classes=10, in_chans=1, pretrained=str(path))
    assert torch.allclose(grey.conv1.weight, source.conv1.weight.sum(dim=1, keepdim=True), atol=1e-6)


def test_missing_local_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(DependencyError, match="model.pretrained=.*nope.pth does not exist"):
        create_classifier("resnet18", num_classes=10, pretrained=str(tmp_path / "nope.pth"))


def test_uncached_timm_weights_fail_without_touching_the_network(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(DependencyError) as error:
        create_classifier("efficientnet_b0", num_classes=10, pretrained=True)
    message = str(error.value)
    assert "not on this machine" in message and "model.pretrained=/path/to/efficientnet_b0" in message


def test_vit_is_built_for_the_data_image_size():
    net = create_classifier(
        "vit_tiny_patch16_224", num_classes=3, in_chans=1, image_size=64, fixed_input_size=True
    )
    assert net.patch_embed.img_size == (64, 64)


# --- every classifier learns on the default data ------------------------------------------------
# MobileNetV3 and EfficientNet stayed at chance on the default digits (val acc 0.10, test loss in the
# hundreds) at the ResNet learning rate with timm's BatchNorm momentum: their configs carry
# `lr_scale` (read by the task) and `bn_momentum` (timm's), checked here and in the slow run below.


def test_lr_scale_multiplies_the_configured_rate_and_leaves_the_model_arguments():
    from litzoo.models.classification import split_lr_scale

    entry = OmegaConf.load(CONFIG_DIR / "model" / "mobilenetv3_large_100.yaml")
    optim = {"_target_": "torch.optim.SGD", "lr": 0.1, "momentum": 0.9}
    net_cfg, run_optim = split_lr_scale(entry, optim)
    assert "lr_scale" not in net_cfg and net_cfg["bn_momentum"] == 0.5
    assert run_optim == {"_target_": "torch.optim.SGD", "lr": pytest.approx(0.01), "momentum": 0.9}
    assert optim["lr"] == 0.1  # the caller's config (saved as the task's hyper-parameters) is untouched
    resnet = OmegaConf.load(CONFIG_DIR / "model" / "resnet18.yaml")
    assert split_lr_scale(resnet, optim)[1] == optim  # ResNets train at optim.lr as given


def test_a_non_positive_lr_scale_is_a_config_error():
    from litzoo.errors import ConfigError
    from litzoo.models.classification import split_lr_scale

    with pytest.raises(ConfigError, match=r"model.lr_scale=0 must be a positive factor on optim.lr"):
        split_lr_scale({"arch": "efficientnet_b0", "lr_scale": 0}, {"lr": 0.1})


@pytest.mark.parametrize("model", ["mobilenetv3_large_100", "efficientnet_b0"])
def test_depthwise_nets_get_the_faster_batchnorm_statistics_from_their_config(model):
    entry = OmegaConf.load(CONFIG_DIR / "model" / f"{model}.yaml")
    net = build(entry, num_classes=10, in_chans=1, image_size=32)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) > 40 and {m.momentum for m in norms} == {0.5}


def _digits_tensors(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits upsampled to `size` and normalised as conf/data/digits.yaml does."""
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    return (images - 0.305) / 0.376, torch.tensor(digits.target)


# ViT-Tiny at 32 px (4 patches) with SGD 0.1 reached 0.170 here: not fixed yet, recorded rather than hidden.
_LEARNERS = [
    pytest.param(m, marks=pytest.mark.xfail(reason="ViT-Tiny at 32 px, SGD 0.1: 0.170 measured", strict=True))
    if m.startswith("vit_")
    else m
    for m in entries_serving("classification", "model", [CONFIG_DIR])
]


@pytest.mark.slow
@pytest.mark.parametrize("model", _LEARNERS)
def test_every_classifier_learns_the_default_digits_in_two_epochs(model):
    """Each classification model config, with the default optimizer (conf/optim/sgd.yaml) scaled by its
    own `lr_scale`, a cosine schedule and batch 64 at 32 px, beats chance (0.10) by far in eval mode."""
    import math

    from hydra.utils import instantiate

    from litzoo.models.classification import split_lr_scale
    from litzoo.tasks.base import split_decay_groups

    torch.manual_seed(0)
    images, labels = _digits_tensors(32)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    train, val = order[:1257], order[1257:1527]
    entry = OmegaConf.load(CONFIG_DIR / "model" / f"{model}.yaml")
    optim = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "optim" / "sgd.yaml"))
    for key in ("lr_scaling", "base_batch_size"):
        optim.pop(key)
    net_cfg, run_optim = split_lr_scale(entry, optim)
    net = build(net_cfg, num_classes=10, in_chans=1, image_size=32)
    optimizer = instantiate(run_optim)(split_decay_groups(net, run_optim["weight_decay"]))
    steps, step, base_lr = 2 * math.ceil(len(train) / 64), 0, run_optim["lr"]
    for _ in range(2):
        net.train()
        shuffled = train[torch.randperm(len(train))]
        for start in range(0, len(shuffled), 64):
            batch = shuffled[start : start + 64]
            for group in optimizer.param_groups:
                group["lr"] = base_lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            loss = torch.nn.functional.cross_entropy(net(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
    net.eval()
    with torch.no_grad():
        accuracy = (net(images[val]).argmax(dim=1) == labels[val]).float().mean().item()
    assert accuracy > 0.5, f"{model}: val accuracy {accuracy:.3f} after two epochs (chance 0.10)"
