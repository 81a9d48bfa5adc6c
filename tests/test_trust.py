"""Untrusted configs and checkpoints are refused before anything runs."""

from __future__ import annotations

import pytest
from conftest import TINY, read_json, run_cli

from litzoo.errors import CheckpointError, ConfigError
from litzoo.platform.trust import ALLOWED_PACKAGES, Trust, check_targets, target_problem


@pytest.mark.parametrize(
    "target",
    [
        "os.system",
        "subprocess.run",
        "builtins.eval",
        "logging.os.system",
        "torch.os.system",
        "lightning.pytorch.trainer.trainer.os.system",
        "torch.load",
        "torch.hub.load",
        "timm.models.load_checkpoint",
        "torchvision.datasets.utils.torch.load",
    ],
)
def test_dangerous_targets_are_refused(target):
    assert target_problem(target, ALLOWED_PACKAGES, resolve=True) is not None


@pytest.mark.parametrize(
    "target",
    [
        "torch.optim.SGD",
        "lightning.pytorch.Trainer",
        "timm.data.Mixup",
        "litzoo.platform.loggers.RunCSVLogger",
        "torch.utils.data.DataLoader",
        "lightning.pytorch.callbacks.ModelCheckpoint",
    ],
)
def test_library_targets_are_allowed(target):
    assert target_problem(target, ALLOWED_PACKAGES, resolve=True) is None


def test_trust_comes_from_the_command_line_only():
    assert Trust.from_overrides(["trust_config=true"], environ={}).everything
    assert Trust.from_overrides(["trust.allow=[mylab,other]"], environ={}).extra_packages == (
        "mylab",
        "other",
    )
    assert Trust.from_overrides([], environ={"LITZOO_TRUST_ALLOW": "mylab"}).extra_packages == ("mylab",)
    nested = {"a": [{"_target_": "mylab.Net"}]}
    with pytest.raises(ConfigError, match=r"`a\[0\]._target_: mylab.Net`.*trust.allow=\[mylab\]"):
        check_targets(nested, Trust())
    check_targets(nested, Trust(extra_packages=("mylab",)))
    with pytest.raises(ConfigError, match="trust_remote_code"):
        check_targets(
            {"model": {"_target_": "transformers.AutoModel.from_pretrained", "trust_remote_code": True}},
            Trust(),
        )


PAYLOADS = {
    "os_system": "_target_: os.system\n  command: touch {marker}",
    "alias": "_target_: logging.os.system\n  command: touch {marker}",
    "torch_alias": "_target_: torch.os.system\n  command: touch {marker}",
    "eval": "_target_: builtins.eval\n  _args_: [\"__import__('os').system('touch {marker}')\"]",
}


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_shared_config_with_a_payload_is_refused_and_nothing_runs(payload, tmp_path):
    marker = tmp_path / "pwned"
    team = tmp_path / "team"
    (team / "experiment").mkdir(parents=True)
    body = PAYLOADS[payload].format(marker=marker)
    (team / "experiment" / "evil.yaml").write_text(
        "# @package _global_\ntrust_config: true\ncallbacks:\n  evil:\n    "
        + body.replace("\n", "\n  ")
        + "\n"
    )
    result = run_cli(
        ["--config-dir", str(team), "experiment=evil", *TINY, f"hydra.run.dir={tmp_path / 'run'}"]
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Refusing to instantiate `callbacks.evil._target_" in result.stderr
    assert "trust_config=true" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()
    assert read_json(tmp_path / "run" / "run.json")["status"] == "failed"


def test_command_line_target_override_is_checked_too(tmp_path):
    marker = tmp_path / "pwned"
    result = run_cli(
        [
            "+callbacks.evil._target_=os.system",
            f"+callbacks.evil.command='touch {marker}'",
            *TINY,
            f"hydra.run.dir={tmp_path / 'run'}",
        ]
    )
    assert result.returncode == 2 and "Refusing to instantiate" in result.stderr
    assert not marker.exists()


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_malicious_pickle_checkpoint_is_refused_and_not_run(tmp_path):
    import torch

    from litzoo.platform.checkpointing import load_checkpoint_file

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match="Refusing to load .*evil.ckpt.*could run code"):
        load_checkpoint_file(evil)
    assert not marker.exists()
    # The same file handed to train.py for evaluation: a clear error, nothing executed.
    result = run_cli([*TINY, "train=false", f"ckpt_path={evil}", f"hydra.run.dir={tmp_path / 'run'}"])
    assert result.returncode == 4, result.stderr[-2000:]
    assert "Refusing to load" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()
