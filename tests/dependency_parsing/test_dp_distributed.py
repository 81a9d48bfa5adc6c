"""Slow: 2-process CPU DDP evaluation equals 1 process; a parser run killed with -9 resumes exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import read_json, run_cli
from test_resume import ENV, assert_same_run, kill_9_and_resume

from .conftest import FAST, TINY_PARSER, treebank_overrides

pytestmark = pytest.mark.slow


def base(root: Path) -> list[str]:
    return ["task=dependency_parsing", *FAST, *TINY_PARSER, *treebank_overrides(root)]


@pytest.fixture(scope="module")
def trained(treebank_root, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    result = run_cli(
        [*base(treebank_root), "trainer.limit_train_batches=8", f"hydra.run.dir={run_dir}"], env=ENV
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_two_cpu_ranks_score_the_whole_split_like_one_process(trained, treebank_root, tmp_path):
    checkpoint = read_json(trained / "run.json")["best_checkpoint"]
    evaluate = [*base(treebank_root), "train=false", f"ckpt_path={checkpoint}"]
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert run_cli([*evaluate, f"hydra.run.dir={single}"], env=ENV).returncode == 0
    result = run_cli([*evaluate, "trainer=ddp_cpu", f"hydra.run.dir={ddp}"], env=ENV, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(ddp / "run.json")["metrics"] == read_json(single / "run.json")["metrics"]
    # Every sentence parsed once, by one rank or the other, written in the treebank's order.
    assert (ddp / "parsed_test.conllu").read_bytes() == (single / "parsed_test.conllu").read_bytes()


def test_kill_9_then_resume_ends_like_the_uninterrupted_run(treebank_root, tmp_path):
    args = [
        *base(treebank_root),
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=6",
        "callbacks.step_checkpoint.every_n_train_steps=2",
    ]
    reference = tmp_path / "reference"
    assert run_cli([*args, f"hydra.run.dir={reference}"], env=ENV).returncode == 0
    run_dir = tmp_path / "killed"
    kill_9_and_resume(args, run_dir, 8, timeout=300)
    assert_same_run(run_dir, reference)
    assert (run_dir / "parsed_test.conllu").read_bytes() == (reference / "parsed_test.conllu").read_bytes()
