"""A segmentation run killed with SIGKILL and resumed ends exactly like the run left alone (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli
from test_resume import ENV, assert_same_run, kill_9_and_resume

from .seg_fixtures import scenes_overrides


def arguments(scenes_root: Path) -> list[str]:
    # 2 epochs x 4 batches of augmented crops, a rolling checkpoint every 2 steps.
    return [
        "task=semantic_segmentation",
        *scenes_overrides(scenes_root),
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=4",
        "trainer.enable_progress_bar=false",
        "callbacks.progress_bar=null",
        "callbacks.model_summary=null",
        "trainer.log_every_n_steps=1",
        "callbacks.step_checkpoint.every_n_train_steps=2",
        "trainer.num_sanity_val_steps=0",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_step", [2, 6])
def test_kill_9_then_resume_ends_with_the_metrics_and_log_of_the_uninterrupted_run(
    kill_after_step, scenes_root, tmp_path
):
    reference = tmp_path / "reference"
    result = run_cli([*arguments(scenes_root), f"hydra.run.dir={reference}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]

    run_dir = tmp_path / "killed"
    kill_9_and_resume(arguments(scenes_root), run_dir, kill_after_step, timeout=600)
    assert_same_run(run_dir, reference)  # the metrics to every digit, each step logged once
