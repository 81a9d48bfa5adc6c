"""Real run directories and a real benchmark CSV, made once per session for the report tests.

Three tiny digits runs, trained in this process as ``python train.py`` would train them: two in
a sweep-like folder (``sweep/0``, ``sweep/1``) and one on its own, each with the ``.hydra/``
files Hydra writes. The benchmark CSV is written by ``python -m litzoo.benchmark`` itself
(in-process: ``isolate=false``) for the runs' model at the runs' input size.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY, compose, run_in_process
from omegaconf import OmegaConf

RUNS = {
    "sweep/0": ["optim.lr=0.1"],
    "sweep/1": ["optim.lr=0.02"],
    "single": ["optim.lr=0.05", "seed=7"],
}
RUN_OVERRIDES = [*TINY, "callbacks.step_checkpoint=null", "trainer.limit_val_batches=3"]
BENCH = ["batch_size=4", "warmup=1", "repeats=3", "isolate=false", "data.image_size=16"]


def train(run_dir: Path, overrides: list[str]) -> dict:
    """A real run directory: .hydra/ as Hydra writes it, then the platform's run."""
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(compose(overrides, run_dir=run_dir), run_dir / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(list(overrides)), run_dir / ".hydra" / "overrides.yaml")
    code, record = run_in_process(overrides, run_dir)
    assert code == 0 and record["status"] == "completed", record.get("error")
    return record


@pytest.fixture(scope="session")
def run_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    for name, extra in RUNS.items():
        train(root / name, [*RUN_OVERRIDES, *extra])
    return {name: root / name for name in RUNS}


@pytest.fixture(scope="session")
def benchmark_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from litzoo.benchmark.cli import main

    path = tmp_path_factory.mktemp("bench") / "inference.csv"
    assert main([*BENCH, "backends=eager,onnx", f"csv={path}"]) == 0
    return path
