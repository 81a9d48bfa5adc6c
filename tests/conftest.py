"""Shared helpers: compose configs in-process, run train.py in-process or as a subprocess.

In-process runs share this pytest process (one `import lightning` for the whole
suite); subprocess runs exercise the real command line where that matters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run: CI must not pass or fail by luck.
settings.register_profile("litzoo", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("litzoo")

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "conf"
FIXTURES = ROOT.parent / "shared" / "fixtures"

# Overrides that make any run take seconds: one epoch of a few batches, no progress output.
FAST_RUN = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]
# ... for image classification: small images and batches too.
TINY = [*FAST_RUN, "data.image_size=16", "data.batch_size=16"]


def compose(
    overrides: Sequence[str] = (), run_dir: Path | None = None, config_dirs: Sequence[Path] = ()
) -> Any:
    """The config `python train.py <overrides>` would run, with Hydra's runtime info set."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from litzoo.platform.configs import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    extra = [f"hydra.searchpath=[{','.join('file://' + str(d) for d in config_dirs)}]"] if config_dirs else []
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=[*overrides, *extra], return_hydra_config=True)
    if run_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir)
            cfg.hydra.job.num = 0
            cfg.hydra.job.id = "test"
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):  # the task function sees the config without its `hydra` node
        del cfg["hydra"]
    return cfg


def run_in_process(overrides: Sequence[str], run_dir: Path) -> tuple[int, dict]:
    """Run the platform on `overrides` in this process; returns (exit code, run.json)."""
    from litzoo.platform.runner import RunContext, run

    cfg = compose(overrides, run_dir=run_dir)
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    ctx = RunContext(run_dir=run_dir, config_dirs=[CONFIG_DIR], overrides=list(overrides))
    code = 0
    try:
        run(cfg, ctx)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    record = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    return code, record


def run_cli(
    args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 600, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    """`python train.py <args>` in a subprocess."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    environment.pop("HYDRA_FULL_ERROR", None)  # the tests check the short messages users see
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=environment,
    )


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not present in this checkout")
    return FIXTURES


# -- text: the embedded corpora and a tiny BERT checkpoint, made once per session ---------------


@pytest.fixture(scope="session")
def corpus_roots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The embedded sentiment (SST-2 format) and paraphrase (MRPC format) corpora."""
    from text_fixtures import corpora

    return corpora(tmp_path_factory.mktemp("corpora"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory, corpus_roots) -> Path:
    """A randomly initialised small BERT checkpoint directory whose vocabulary covers both corpora."""
    from text_fixtures import write_tiny_bert

    sentiment, paraphrase = corpus_roots
    return write_tiny_bert(
        tmp_path_factory.mktemp("bert") / "tiny", [(sentiment, "sst2"), (paraphrase, "mrpc")]
    )
