"""run.json pieces: secrets redaction, the reproduce command, atomic writes, the code version."""

from __future__ import annotations

import json
import subprocess

from litzoo.platform.record import RunRecord, code_version, reproduce_command
from litzoo.platform.run_dir import write_json_atomic
from litzoo.platform.secrets import REDACTED, is_secret_name, redact, redact_override


def test_credential_names_are_recognised():
    for name in ["WANDB_API_KEY", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "logger.wandb.api_key"]:
        assert is_secret_name(name), name
    for name in ["tokenizer", "max_tokens", "num_keypoints", "bucket_keys", "monitor", "lr"]:
        assert not is_secret_name(name), name


def test_redact_nested_structures_urls_and_env_values():
    record = {
        "config": {"logger": {"api_key": "abc", "project": "p"}, "data": {"root": "s3://me:pw@bucket/x"}},
        "overrides": ["logger.wandb.api_key=abc", "optim.lr=0.1"],
        "note": "token is hunter2hunter2",
        "empty_token": None,
    }
    cleaned = redact(record, secrets=["hunter2hunter2"])
    assert cleaned["config"]["logger"] == {"api_key": REDACTED, "project": "p"}
    assert cleaned["config"]["data"]["root"] == f"s3://{REDACTED}@bucket/x"
    assert cleaned["overrides"] == [f"logger.wandb.api_key={REDACTED}", "optim.lr=0.1"]
    assert cleaned["note"] == f"token is {REDACTED}"
    assert cleaned["empty_token"] is None
    assert redact_override("+hf_token=xyz") == f"+hf_token={REDACTED}"


def test_reproduce_command_quotes_and_pins_the_seed(tmp_path):
    command = reproduce_command(tmp_path / "my project", ["model=resnet50", "data.root=/data/with space",
                                                           "hydra.run.dir=/x", "seed=3"], seed=3,
                                config_dirs=["/team/conf"])
    assert command.startswith(f"cd '{tmp_path}/my project' && ")
    assert "--config-dir=/team/conf model=resnet50 'data.root=/data/with space' seed=3" in command
    assert "hydra.run.dir" not in command and command.count("seed=") == 1


def test_atomic_json_write_replaces_whole_file(tmp_path):
    path = tmp_path / "run.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary files left
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_record_lifecycle_and_rank_gate(tmp_path):
    record = RunRecord(tmp_path)
    record.start(task="classification", seed=1)
    assert json.loads(record.path.read_text())["status"] == "running"
    record.finish("completed", metrics={"test/acc_top1": 0.5})
    data = json.loads(record.path.read_text())
    assert data["status"] == "completed" and data["metrics"] == {"test/acc_top1": 0.5} and data["ended_at"]
    silent = RunRecord(tmp_path / "other", enabled=False)
    silent.start(task="x")
    assert not (tmp_path / "other").exists()


def test_code_version_saves_the_diff_of_a_dirty_tree(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    clean = code_version(repo, run_dir)
    assert clean["dirty"] is False and len(clean["commit"]) == 40 and not (run_dir / "code.diff").exists()
    (repo / "a.py").write_text("x = 2\n")
    (repo / "new.py").write_text("y = 1\n")
    dirty = code_version(repo, run_dir)
    assert dirty["dirty"] is True and dirty["untracked"] == ["new.py"]
    assert "+x = 2" in (run_dir / "code.diff").read_text()
    assert code_version(tmp_path / "not_a_repo", run_dir)["commit"] is None
