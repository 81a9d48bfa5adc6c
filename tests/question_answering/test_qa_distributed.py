"""Slow: 2-process CPU DDP evaluation equals 1 process (whole split gathered, scored once)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import read_json, run_cli

from .conftest import qa_overrides

pytestmark = pytest.mark.slow
ENV = {"OMP_NUM_THREADS": "1"}


def test_two_cpu_ranks_score_the_whole_split_like_one_process(toy_root, tiny_qa_bert, tmp_path):
    base = qa_overrides(toy_root, tiny_qa_bert)
    trained = tmp_path / "trained"
    assert run_cli([*base, f"hydra.run.dir={trained}"], env=ENV).returncode == 0
    checkpoint = read_json(trained / "run.json")["best_checkpoint"]
    evaluate = [*base, "train=false", f"ckpt_path={checkpoint}"]
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert run_cli([*evaluate, f"hydra.run.dir={single}"], env=ENV).returncode == 0
    result = run_cli([*evaluate, "trainer=ddp_cpu", f"hydra.run.dir={ddp}"], env=ENV, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(ddp / "run.json")["metrics"] == read_json(single / "run.json")["metrics"]
    assert (ddp / "predictions.json").read_bytes() == (single / "predictions.json").read_bytes()
    assert Path(ddp / "null_odds.json").is_file()
