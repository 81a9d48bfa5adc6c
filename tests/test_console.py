"""What a user sees on every run: a short, quiet console; log lines clear of progress bars; warnings
that name the right file, once; the full detail in train.log."""

from __future__ import annotations

import io
import json
import logging
import re
import warnings
from pathlib import Path

import pytest
from conftest import compose, run_cli

from litzoo.errors import ConfigError
from litzoo.platform import console


@pytest.fixture
def hydra_like_logging(tmp_path):
    """The root logger as Hydra's job logging sets it up (a console StreamHandler and train.log),
    restored afterwards, with warnings.showwarning restored too."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    formatter = logging.Formatter("[%(name)s][%(levelname)s] - %(message)s")
    handlers = [logging.StreamHandler(stream), logging.FileHandler(tmp_path / "train.log")]
    for handler in handlers:
        handler.setFormatter(formatter)
    root.handlers[:] = handlers
    root.setLevel(logging.INFO)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        try:
            yield stream, tmp_path / "train.log"
        finally:
            handlers[1].close()
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)


def test_console_leaves_out_lightning_chatter_and_third_party_deprecations_which_train_log_keeps(
    hydra_like_logging,
):
    stream, train_log = hydra_like_logging
    assert console.install_console()
    lightning = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    lightning.info("💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]")
    lightning.info("Trainer already configured with model summary callbacks: [ModelSummary]. Skipping ...")
    lightning.info("GPU available: False, used: False")
    logging.getLogger("litzoo").info("Batch size: 16 per device x 1 device(s) x 1 accumulation = 16 global")
    site_packages = "/venv/lib/python3.11/site-packages/lightning/pytorch/utilities/_pytree.py"
    warnings.warn_explicit("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning, site_packages, 21)
    warnings.warn_explicit("some buckets are empty", UserWarning, "/work/src/litzoo/data/base.py", 248)
    shown, kept = stream.getvalue(), train_log.read_text()
    assert "Batch size: 16" in shown and "GPU available" in shown
    assert "Tip" not in shown and "already configured" not in shown and "LeafSpec" not in shown
    assert "/work/src/litzoo/data/base.py:248: UserWarning: some buckets are empty" in shown
    for line in (
        "Tip: For seamless",
        "already configured",
        "Batch size",
        f"{site_packages}:21: FutureWarning",
    ):
        assert line in kept
    assert console.install_console()  # a second call (the next job of a sweep) adds nothing
    ours = [
        h for h in logging.getLogger().handlers if type(h) in (console.ConsoleHandler, logging.FileHandler)
    ]
    assert [type(h) for h in ours] == [console.ConsoleHandler, logging.FileHandler]
    assert sum(isinstance(f, console.ConsoleFilter) for f in ours[0].filters) == 1


def test_ranks_other_than_0_show_only_their_warnings(hydra_like_logging, monkeypatch):
    stream, train_log = hydra_like_logging
    console.install_console()
    monkeypatch.setenv("RANK", "1")
    logging.getLogger("litzoo").info("Batch size: 16 per device x 2 device(s)")
    warnings.warn_explicit("a library notice", UserWarning, "/venv/lib/site-packages/x.py", 1)
    logging.getLogger("litzoo").warning("rank 1 lost its data")
    assert stream.getvalue().strip() == "[litzoo][WARNING] - rank 1 lost its data"
    assert "Batch size" in train_log.read_text() and "a library notice" in train_log.read_text()


def test_nothing_changes_where_hydra_did_not_set_up_logging():
    root = logging.getLogger()
    before = root.handlers[:]
    assert not console.install_console()  # pytest's own handlers are subclasses, never replaced
    assert root.handlers == before


def test_log_lines_are_written_between_progress_bar_redraws():
    from tqdm import tqdm

    stream = io.StringIO()
    handler = console.ConsoleHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    record = logging.LogRecord(
        "litzoo", logging.INFO, __file__, 1, "bbox AP per class (x100), val epoch 0", (), None
    )
    with tqdm(total=10, file=stream, desc="Epoch 0", mininterval=0, ascii=True) as bar:
        bar.update(3)
        handler.emit(record)
        bar.update(1)
    text = stream.getvalue()
    before, after = text.split("bbox AP per class", 1)
    assert before.endswith("\r"), "the bar must be cleared before the line is written"
    assert "Epoch 0" in after.split("\n", 1)[1], "and drawn again after it"
    assert not re.search(r"it/s\][^\r\n]*bbox", text)  # never on the same screen line as a bar

    plain = io.StringIO()  # without open bars it is a plain StreamHandler
    console.ConsoleHandler(plain).emit(record)
    assert plain.getvalue() == "bbox AP per class (x100), val epoch 0\n"


def test_the_bucketing_warning_names_the_code_that_built_the_sampler_and_comes_once():
    from hydra.utils import instantiate

    from litzoo.data.samplers import bucketing

    bucketing._WARNED.clear()
    factory = instantiate(
        {
            "_target_": "litzoo.data.samplers.FixedBucketSampler",
            "_partial_": True,
            "bucket_keys": [5, 10, 100],
        }
    )  # Hydra's wrapper stands between us and the class
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):  # train loader, then again for each time Lightning asks for it
            factory(lengths=[1, 2, 3, 4, 6, 7], batch_size=2)
    messages = [w for w in caught if "buckets are empty" in str(w.message)]
    assert len(messages) == 1
    assert messages[0].filename == __file__
    assert "unused bucket keys=[100]" in str(messages[0].message)


def test_compact_config_says_what_runs_in_a_few_lines(tmp_path):
    cfg = compose(["optim.lr=0.05", "trainer.max_epochs=3"])
    choices = {
        "task": "classification",
        "model": "resnet18",
        "data": "digits",
        "optim": "sgd",
        "sched": "cosine",
        "trainer": "default",
        "hydra/launcher": "basic",
        "experiment": None,
    }
    lines = console.compact_config_lines(
        cfg, choices, ["optim.lr=0.05", "trainer.max_epochs=3", "resume=x"], tmp_path
    )
    assert lines[0] == "[bold]classification / resnet18 / digits[/bold]  seed=42"
    assert lines[1] == "  options:   optim=sgd sched=cosine trainer=default"
    assert lines[2] == "  overrides: optim.lr=0.05 trainer.max_epochs=3"
    assert lines[3].startswith(f"  run dir:   {tmp_path}") and len(lines) == 4


@pytest.mark.parametrize(
    ("value", "mode"),
    [("compact", "compact"), ("full", "full"), ("false", "false"), ("null", "false"), ("off", "false")],
)
def test_print_config_switch(value, mode):
    assert console.print_config_mode(compose([f"extras.print_config={value}"])) == mode


def test_an_unknown_print_config_value_is_refused():
    with pytest.raises(ConfigError, match="extras.print_config='ful' is not a choice: use compact"):
        console.print_config_mode(compose(["extras.print_config=ful"]))


# A real `python train.py`, progress bar and model summary on, shortened like conftest.FAST_RUN.
SHORT = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "data.image_size=16",
    "data.batch_size=16",
]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> tuple[str, str, Path]:
    run_dir = tmp_path_factory.mktemp("console") / "run"
    result = run_cli([*SHORT, f"hydra.run.dir={run_dir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, result.stderr, run_dir


def test_a_default_run_prints_a_short_console_before_the_progress_bar(default_run):
    stdout, _, _ = default_run
    lines = stdout.split("\n")
    first_bar = next(i for i, line in enumerate(lines) if "\r" in line or "it/s]" in line)
    assert first_bar <= 40, "\n".join(lines[:first_bar])
    assert lines[0].startswith("classification / resnet18 / digits  seed=42")


def test_a_default_run_shows_no_tips_or_deprecations_and_the_results_once(default_run):
    stdout, stderr, run_dir = default_run
    for noise in ("Tip:", "litlogger", "deprecated", "already configured", "TPU available"):
        assert noise not in stdout and noise not in stderr, noise
    assert stdout.count("test/acc_top1") == 1  # litzoo's table, not Lightning's as well
    assert not re.search(r"it/s\][^\r\n]*\[\d{4}-\d\d-\d\d ", stdout), "a log line glued onto a progress bar"
    kept = (run_dir / "train.log").read_text()
    assert "Composed config:" in kept and "Tip: For seamless" in kept


def test_a_default_run_reports_its_size_on_disk(default_run):
    from litzoo.platform.run_dir import RunDir

    stdout, _, run_dir = default_run
    record = json.loads((run_dir / "run.json").read_text())
    assert abs(record["disk_bytes"] - RunDir(run_dir).size_bytes()) < 100  # run.json itself grew a little
    megabytes = f"{record['disk_bytes'] / 1e6:.1f} MB"
    assert f"Run directory: {run_dir} ({megabytes})" in stdout


def test_hydra_verbose_shows_litzoo_debug_lines_and_keeps_matplotlib_at_info(tmp_path):
    from types import SimpleNamespace

    from conftest import CONFIG_DIR
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import configure_log
    from omegaconf import open_dict

    from litzoo.platform.loggers import LogDataSummary

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=["hydra.verbose=true"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path)
        cfg.hydra.job.name = "train"
    root = logging.getLogger()
    names = ("matplotlib", "PIL", "fsspec", "litzoo")
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in names}
    try:
        configure_log(cfg.hydra.job_logging, cfg.hydra.verbose)
        logging.getLogger("matplotlib.font_manager").debug("findfont: score(FontEntry(...)) = 10.05")
        logging.getLogger("PIL.PngImagePlugin").debug("STREAM b'IHDR' 16 13")
        trainer = SimpleNamespace(
            datamodule=SimpleNamespace(
                train_set=[0] * 7, val_set=[0] * 2, test_set=None, batch_size=4, eval_batch_size=8
            ),
            world_size=2,
            num_devices=2,
            num_nodes=1,
            accumulate_grad_batches=3,
        )
        LogDataSummary().setup(trainer, None, "fit")
        for handler in root.handlers:
            handler.flush()
        text = (tmp_path / "train.log").read_text()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], level, levels = saved
        root.setLevel(level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)
    assert "findfont" not in text and "IHDR" not in text
    assert "[litzoo][DEBUG] - SimpleNamespace (fit): train 7, val 2 samples" in text
    assert "4 per device for training, 8 for evaluation" in text and "accumulate_grad_batches=3" in text
