"""Run orchestration: validate -> record -> build -> fit/test -> record.

`run_from_hydra` is the Hydra task function body. It validates the composed
config before importing anything heavy, writes `run.json` (status `running`),
builds the datamodule, task module, loggers, callbacks and Trainer from the
config, fits and tests, then completes the record, plots the curves and prints
the results. A user error (`LitzooError`) is shown as one paragraph and exits
non-zero; any failure keeps its full traceback in `train.log` and marks the run
`failed` (or `interrupted` on Ctrl-C).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from litzoo.errors import LitzooError
from litzoo.platform import trust
from litzoo.platform.ranks import JOB_ENV, global_rank, lightning_child
from litzoo.platform.record import (
    RunRecord,
    code_version,
    environment,
    merge_overrides,
    now_iso,
    reproduce_command,
)
from litzoo.platform.resume import config_fingerprint, process_alive, read_record
from litzoo.platform.secrets import redact
from litzoo.platform.validate import validate

log = logging.getLogger("litzoo")

BAD_SAMPLE_LOG = "bad_samples.jsonl"


@dataclass
class RunContext:
    """Where a run lives and how it was asked for (from Hydra, or built by tests)."""

    run_dir: Path
    config_dirs: list[Path]
    overrides: list[str] = field(default_factory=list)
    user_config_dirs: list[str] = field(default_factory=list)
    multirun: bool = False
    choices: dict[str, Any] = field(default_factory=dict)  # the option picked per config group


@dataclass
class RunResult:
    metrics: dict[str, float]
    best_checkpoint: str | None
    objective: float | list[float] | None
    global_batch_size: int | None = None


def context_from_hydra() -> RunContext:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    sources = hc.runtime.config_sources
    return RunContext(
        run_dir=Path(hc.runtime.output_dir),
        config_dirs=[Path(s.path) for s in sources if s.schema == "file"],
        overrides=list(hc.overrides.task),
        user_config_dirs=[s.path for s in sources if s.provider == "command-line" and s.schema == "file"],
        multirun=hc.mode == RunMode.MULTIRUN,
        choices=dict(OmegaConf.to_container(hc.runtime.choices)),
    )


def run_from_hydra(cfg: DictConfig) -> float | None:
    return run(cfg, context_from_hydra())


def run(cfg: DictConfig, ctx: RunContext) -> float | None:
    """Validate, train and/or test as `cfg` says; returns the sweep objective (or None)."""
    from litzoo.platform import console

    trust.SESSION = trust.Trust.from_overrides(ctx.overrides)
    record = RunRecord(ctx.run_dir, enabled=global_rank() == 0)
    console.install_console()  # where Hydra set up logging: quieter, progress-bar-safe terminal
    try:
        _note_nothing_to_resume()
        validate(cfg, ctx.config_dirs, trust.SESSION)
        _check_output_dir(cfg, ctx.run_dir)
        console.print_config_mode(cfg)  # a bad extras.print_config fails here, before anything runs
        previous = read_record(ctx.run_dir)
        resuming = _resumes(cfg, previous)
        seed = _seed(cfg, previous if resuming else None)
        if record.enabled:  # what the DDP children of this job must run (see cli.ddp_child_argv)
            overrides = [o for o in ctx.overrides if not o.startswith(("seed=", "resume="))] + [
                f"seed={seed}"
            ]
            if resuming:  # the children must not decide again: rank 0 has rewritten run.json by then
                overrides.append(f"resume={ctx.run_dir}")
            os.environ[JOB_ENV] = json.dumps(
                {"run_dir": str(ctx.run_dir), "overrides": overrides, "config_dirs": ctx.user_config_dirs}
            )
        if record.enabled:
            _redact_hydra_files(ctx.run_dir)
            _start_record(record, cfg, ctx, seed, previous if resuming else None)
            console.print_config(cfg, ctx.choices, ctx.overrides, ctx.run_dir)
        result = _fit_and_test(cfg, ctx, seed, record, previous if resuming else None)
    except BaseException as error:  # every ending is recorded, then exits (or, in a sweep, returns)
        _record_failure(record, error, ctx)
        if ctx.multirun:  # the sweep goes on; NaN tells an optimizing sweeper the trial failed
            return float("nan") if cfg.get("optimized_metric") else None
        raise
    record.finish(
        "completed",
        metrics=result.metrics,
        best_checkpoint=result.best_checkpoint,
        environment=environment(),
        global_batch_size=result.global_batch_size,
        objective=result.objective,
    )
    if record.enabled:
        _finish_outputs(cfg, ctx, result, record)
    return result.objective


def _check_output_dir(cfg: DictConfig, run_dir: Path) -> None:
    """`paths.output_dir` names the run directory Hydra made; pointed elsewhere, the checkpoints and
    metrics would go there and run.json here, one run split over two folders."""
    chosen = cfg.paths.get("output_dir")
    if chosen is not None and Path(str(chosen)).expanduser().resolve() != run_dir.resolve():
        from litzoo.errors import ConfigError

        raise ConfigError(
            f"paths.output_dir={chosen} differs from this run's directory {run_dir}: paths.output_dir only "
            "names the directory Hydra makes. Choose the run directory with hydra.run.dir=<dir> "
            "(hydra.sweep.dir=<dir> for -m sweeps), or paths.log_dir=<dir> for the root of all runs."
        )


def _note_nothing_to_resume() -> None:
    """Say (console and train.log, once) that resume=auto found no run to continue (see resume.py)."""
    from litzoo.platform.resume import NOTHING_TO_RESUME_ENV

    searched = os.environ.pop(NOTHING_TO_RESUME_ENV, None)
    if searched is not None and global_rank() == 0:
        log.warning("resume=auto: no unfinished run with this config under %s; starting a new run", searched)


def _seed(cfg: DictConfig, previous: dict[str, Any] | None) -> int:
    """The run's seed: the resumed run's, the configured one, or (seed=null) a fresh random one."""
    if previous is not None:
        return int(previous["seed"])
    if cfg.get("seed") is not None:
        return int(cfg.seed)
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        from litzoo.errors import ConfigError

        raise ConfigError(
            "seed=null draws a random seed per process, but this process is one rank of a job started by "
            "an external launcher (torchrun, SLURM): the ranks would shuffle differently and see overlapping "
            "data. Pass the same seed=<n> to every rank."
        )
    return random.SystemRandom().randrange(2**31)


def _resumes(cfg: DictConfig, previous: dict[str, Any]) -> bool:
    """Continue the run already in this directory? Asked for (resume=...), or a requeued job
    (SLURM/submitit re-run the same job in the same directory) whose run did not finish.

    A DDP child that Lightning started for this job does not decide: it finds the run.json its
    parent has just written (status running, same config), which is no unfinished run. Its parent
    passes `resume=<run_dir>` on when, and only when, it resumes itself (cli.ddp_child_argv).
    """
    if cfg.get("resume"):
        return bool(previous)
    if lightning_child():
        return False
    # Ranks other than 0 may read run.json after rank 0 of this very job rewrote it (alive).
    alive = process_alive(previous) and global_rank() == 0
    requeued = previous.get("status") in ("running", "interrupted") and not alive
    if requeued and previous.get("config_hash") == config_fingerprint(cfg):
        log.info("This run directory holds an unfinished run of the same config: resuming it in place")
        return True
    return False


def _start_record(
    record: RunRecord, cfg: DictConfig, ctx: RunContext, seed: int, previous: dict[str, Any] | None
) -> None:
    identity = {"pid": os.getpid(), "config_hash": config_fingerprint(cfg)}
    if previous is not None:
        # Overrides given beside resume= (e.g. a longer trainer.max_epochs) join the run's own, so a
        # later resume of this run continues with them too.
        original = list(previous.get("overrides") or [])
        extra = [o for o in ctx.overrides if o not in original and not o.startswith("resume=")]
        record.resume(
            previous,
            entry={"overrides": extra} if extra else None,
            overrides=merge_overrides(original, extra),
            **identity,
        )
        return
    root = Path(cfg.paths.root_dir)
    record.start(
        task=cfg.task.name,
        model=cfg.model.name,
        data=cfg.data.name,
        seed=seed,
        run_dir=str(ctx.run_dir),
        overrides=ctx.overrides,
        user_config_dirs=ctx.user_config_dirs,
        reproduce=reproduce_command(root, ctx.overrides, seed, ctx.user_config_dirs),
        code=code_version(root, ctx.run_dir),
        environment=environment(),
        metrics={},
        best_checkpoint=None,
        **identity,
    )


def _fit_and_test(
    cfg: DictConfig, ctx: RunContext, seed: int, record: RunRecord, previous: dict[str, Any] | None
) -> RunResult:
    import warnings

    import lightning.pytorch as pl
    from hydra.utils import instantiate

    from litzoo.platform.checkpointing import AtomicCheckpointIO
    from litzoo.platform.distributed import RankWatchdog
    from litzoo.platform.extras import without_requirements
    from litzoo.platform.guards import NonFiniteGuard, PreemptionCheckpoint, ResumeState
    from litzoo.platform.loggers import LogDataSummary
    from litzoo.platform.registry import build
    from litzoo.platform.scaling import resolve_precision, scale_learning_rate

    if logging.getLogger().handlers:  # Hydra's handlers already show and file Lightning's messages
        logging.getLogger("lightning").handlers.clear()
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*The number of training batches .* is smaller than.*")
    # The run directory always holds .hydra/ and run.json before the CSV logger starts.
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty.*")
    # Evaluating another run's checkpoint (train=false ckpt_path=...): its callbacks' bookkeeping of
    # that run's files is rightly not reloaded; the weights are, and that is all a test needs.
    warnings.filterwarnings("ignore", message=r"The dirpath has changed from .* won't be reloaded.*")
    trust.check_targets(OmegaConf.to_container(cfg, resolve=True), resolve=True)  # aliases, before building
    pl.seed_everything(seed, workers=True, verbose=False)

    checkpoint_dir = ctx.run_dir / "checkpoints"
    resume = _resume_point(checkpoint_dir) if previous is not None else None
    if previous is not None and previous.get("status") == "completed":
        _check_extends(cfg, ctx.run_dir, resume)
    if record.enabled:
        _probe_writable(checkpoint_dir)
        if previous is not None:
            record.data["resumes"][-1].update(
                checkpoint=str(resume.path) if resume else None, step=resume.step if resume else 0
            )
            record.update()

    datamodule = build(cfg.data, seed=seed)
    datamodule.bad_sample_log = str(ctx.run_dir / BAD_SAMPLE_LOG)
    guard = NonFiniteGuard(cfg.get("nonfinite", "stop"))
    preemption = PreemptionCheckpoint(checkpoint_dir)
    callbacks = [instantiate(c, _convert_="all") for c in (cfg.get("callbacks") or {}).values() if c]
    if not cfg.trainer.get("enable_progress_bar", True):  # honour the switch instead of refusing it
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.ProgressBar)]
    if not cfg.trainer.get("enable_model_summary", True):  # the same for the summary
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.ModelSummary)]
    # A summary callback of ours stands in for Lightning's default one (which would only say so).
    own_summary = any(isinstance(c, pl.callbacks.ModelSummary) for c in callbacks)
    callbacks += [ResumeState(), preemption, guard, LogDataSummary()]
    loggers = [
        instantiate(without_requirements(c), _convert_="all", **_logger_resume_kwargs(c, previous, resume))
        for c in (cfg.get("logger") or {}).values()
        if c
    ]
    precision = resolve_precision(cfg.trainer.get("precision"), cfg.trainer.get("accelerator", "auto"))
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        precision=precision,
        plugins=[AtomicCheckpointIO()],
        **({"enable_model_summary": False} if own_summary else {}),
        **datamodule.trainer_kwargs(),
        _convert_="all",
    )

    if trainer.world_size > 1 and not any(isinstance(c, RankWatchdog) for c in trainer.callbacks):
        trainer.callbacks.append(RankWatchdog())  # a dead rank must fail the job, not hang it
    batch = _real_batch_size(cfg, datamodule, trainer.world_size)
    global_batch = batch * trainer.world_size * trainer.accumulate_grad_batches
    log.info(
        "Batch size: %d per device x %d device(s) x %d accumulation = %d global",
        batch,
        trainer.world_size,
        trainer.accumulate_grad_batches,
        global_batch,
    )
    record.update(global_batch_size=global_batch, precision=str(precision), **_logger_ids(loggers))

    task = build(
        cfg.task,
        _recursive_=False,  # the task instantiates its model/optim/sched configs itself
        model=OmegaConf.to_container(cfg.model, resolve=True),
        data_info=datamodule.info(),
        optim=scale_learning_rate(OmegaConf.to_container(cfg.optim, resolve=True), global_batch),
        sched=OmegaConf.to_container(cfg.sched, resolve=True) if cfg.get("sched") else None,
    )
    if record.enabled:
        _check_disk_space(checkpoint_dir, task)

    launcher_env = {k: os.environ.get(k) for k in _LAUNCHER_VARIABLES}
    start_from = str(resume.path) if resume else cfg.get("ckpt_path")
    if cfg.train and start_from and resume is None:
        start_from = _start_from_weights_only(task, start_from)
    log.debug("Fitting starts from %s", start_from or "freshly initialised weights")
    try:
        return _fit_then_test(cfg, trainer, task, datamodule, global_batch, record, start_from)
    finally:
        if guard.skipped:
            record.update(nonfinite_skipped_steps=guard.skipped)
        skipped = _skipped_samples(ctx.run_dir, datamodule)
        if skipped["count"]:
            record.update(bad_samples=skipped)
        if preemption.saved:
            record.update(last_checkpoint=str(preemption.saved))
        _close_wandb()
        _end_distributed(launcher_env)


def _real_batch_size(cfg: DictConfig, datamodule: Any, world_size: int) -> int:
    """data.batch_size, or each device's share of the training split when that is smaller (warned):
    what the record and the linear lr scaling must use."""
    from litzoo.platform.scaling import real_batch_size

    configured = int(cfg.data.batch_size)
    samples = datamodule.train_samples() if cfg.train and hasattr(datamodule, "train_samples") else None
    batch = real_batch_size(configured, samples, world_size)
    if batch < configured:
        log.warning(
            "data.batch_size=%d is larger than the %d training samples (%d per device): every training "
            "batch holds %d, which run.json and the lr scaling use. Set data.batch_size<=%d to silence this.",
            configured,
            samples,
            batch,
            batch,
            batch,
        )
    return batch


def _fit_then_test(
    cfg: DictConfig,
    trainer: Any,
    task: Any,
    datamodule: Any,
    global_batch: int,
    record: RunRecord,
    start_from: str | None,
) -> RunResult:
    best, objective = None, None
    if cfg.train:
        with _checkpoint_must_fit(cfg, start_from):
            trainer.fit(task, datamodule=datamodule, ckpt_path=start_from, weights_only=True)
        _raise_if_interrupted(trainer)
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else None
        objective = _objective(cfg, trainer)
        record.update(best_checkpoint=best or None)
    metrics: dict[str, float] = {}
    if cfg.test:
        ckpt = (best or None) if cfg.train else cfg.ckpt_path
        log.debug("Testing with %s", ckpt or "the weights at the end of training (no best checkpoint)")
        # verbose=False: the results table at the end shows the test metrics (once)
        with _checkpoint_must_fit(cfg, ckpt):
            trainer.test(task, datamodule=datamodule, ckpt_path=ckpt, weights_only=True, verbose=False)
        _raise_if_interrupted(trainer)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        record.update(**task.record_fields())  # how the scores were computed, where a task says (sacreBLEU)
        if not cfg.train:
            best = str(Path(cfg.ckpt_path).expanduser().resolve())
    return RunResult(
        metrics=metrics, best_checkpoint=best or None, objective=objective, global_batch_size=global_batch
    )


@contextlib.contextmanager
def _checkpoint_must_fit(cfg: DictConfig, ckpt: str | None) -> Iterator[None]:
    """A checkpoint whose weights do not fit the network is a `CheckpointError` of one paragraph, not
    torch's list of every missing and unexpected key. (A checkpoint inside a run directory is checked
    against its run before anything is built; this catches the others.)"""
    try:
        yield
    except RuntimeError as error:
        text = str(error)
        if not ckpt or "Error(s) in loading state_dict" not in text:
            raise
        from litzoo.errors import CheckpointError

        counts = {
            kind: len(re.findall(r'"[^"]+"', line))
            for kind, line in (
                ("missing", next((x for x in text.splitlines() if "Missing key(s)" in x), "")),
                ("unexpected", next((x for x in text.splitlines() if "Unexpected key(s)" in x), "")),
            )
        }
        counts["of another shape"] = text.count("size mismatch for")
        found = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
        raise CheckpointError(
            f"ckpt_path={ckpt} does not fit the network this config builds (task={cfg.task.name} "
            f"model={cfg.model.name} data={cfg.data.name}): of its weights, {found or 'some differ'}. Evaluate it "
            "with the task, model and data it was trained with (a checkpoint inside its run directory, "
            "<run_dir>/checkpoints/, brings them by itself), or pick a checkpoint of this model."
        ) from error


@dataclass
class ResumePoint:
    path: Path
    step: int  # the logging step the checkpoint was taken at (later steps are logged again)
    state: dict[str, Any]  # what litzoo's ResumeState callback stored in the checkpoint
    epoch: int = 0  # the epoch it was taken in (0-based), as Lightning records it
    global_step: int = 0


def _resume_point(checkpoint_dir: Path) -> ResumePoint | None:
    from litzoo.platform.checkpointing import load_checkpoint_file, newest_intact_checkpoint

    path = newest_intact_checkpoint(checkpoint_dir, resumable=True)
    if path is None:
        log.warning(
            "No intact checkpoint in %s: the run starts again from the beginning, in place", checkpoint_dir
        )
        return None
    checkpoint = load_checkpoint_file(path)
    loops = checkpoint.get("loops", {})
    step = loops.get("fit_loop", {}).get("epoch_loop.state_dict", {}).get("_batches_that_stepped", 0)
    log.info("Resuming from %s (step %d)", path, step)
    return ResumePoint(
        path,
        int(step),
        checkpoint.get("litzoo", {}),
        int(checkpoint.get("epoch", 0)),
        int(checkpoint.get("global_step", 0)),
    )


def _check_extends(cfg: DictConfig, run_dir: Path, resume: ResumePoint | None) -> None:
    """A completed run is continued only to train it further (`resume=<run_dir> trainer.max_epochs=30`)."""
    from litzoo.errors import CheckpointError, ConfigError

    if resume is None:
        raise CheckpointError(
            f"resume={run_dir}: the run completed, but {run_dir / 'checkpoints'} holds no checkpoint with a "
            "training state (last.ckpt) to continue from. Start a new run (ckpt_path=<checkpoint> starts "
            "from its weights)."
        )
    epochs, steps = resume.epoch + 1, resume.global_step
    max_epochs, max_steps = cfg.trainer.get("max_epochs"), cfg.trainer.get("max_steps")
    more_epochs = max_epochs is not None and max_epochs > epochs
    more_steps = max_steps is not None and max_steps > steps
    no_epoch_limit = max_epochs in (None, -1)
    if not (more_epochs or more_steps or (no_epoch_limit and max_steps in (None, -1))):
        raise ConfigError(
            f"resume={run_dir}: the run completed {epochs} epochs ({steps} steps) and trainer.max_epochs="
            f"{max_epochs}, trainer.max_steps={max_steps} ask for no more. To train it further, give a larger "
            f"limit, e.g. `python train.py resume={run_dir} trainer.max_epochs={2 * epochs}`."
        )
    log.info(
        "Extending the completed run from %s (epoch %d, step %d) to trainer.max_epochs=%s",
        resume.path,
        epochs,
        steps,
        max_epochs,
    )


def _start_from_weights_only(task: Any, path: str) -> str | None:
    """`ckpt_path` for fitting: a checkpoint with a training state resumes it (Lightning); one with
    weights only (a best checkpoint superseded by last.ckpt, a pruned file) gives the model its
    weights and training starts afresh (epoch 0, new optimizer and schedule)."""
    from litzoo.platform.checkpointing import is_resumable, load_checkpoint_file

    checkpoint = load_checkpoint_file(path)
    if is_resumable(checkpoint):
        return path
    if "state_dict" not in checkpoint:
        from litzoo.errors import CheckpointError

        raise CheckpointError(
            f"ckpt_path={path} holds no state_dict: it is not a Lightning checkpoint of a "
            "litzoo run. Give a file from a run's checkpoints/ folder."
        )
    task.load_state_dict(checkpoint["state_dict"])
    log.info(
        "ckpt_path=%s holds weights only: training starts from them with a new optimizer and schedule", path
    )
    return None


def _logger_resume_kwargs(
    logger_cfg: Any, previous: dict[str, Any] | None, resume: ResumePoint | None
) -> dict[str, Any]:
    """Arguments that make a logger continue the run it logged before (same files, same run id)."""
    target = str(logger_cfg.get("_target_", ""))
    if previous is None:
        return {}
    if target.endswith("RunCSVLogger"):
        state = resume.state if resume else {}
        return {"resume_rows": state.get("csv_rows", 0), "pending_rows": state.get("csv_pending_rows")}
    if target.endswith("TensorBoardLogger"):
        return {"purge_step": resume.step + 1 if resume else 0}
    if target.endswith("WandbLogger") and previous.get("wandb_run_id"):
        return {"id": previous["wandb_run_id"], "resume": "allow"}
    return {}


def _skipped_samples(run_dir: Path, datamodule: Any) -> dict[str, Any]:
    """The samples left out under `data.bad_samples=skip`: read errors logged by the loaders plus
    the rows a datamodule dropped while reading its files (`skipped_samples()`, if it has one)."""
    from litzoo.data.bad_samples import read_log

    skipped = read_log(run_dir / BAD_SAMPLE_LOG)
    at_read_time = list(getattr(datamodule, "skipped_samples", list)())
    return {"count": skipped["count"] + len(at_read_time), "samples": at_read_time[:100] + skipped["samples"]}


def _logger_ids(loggers: list[Any]) -> dict[str, str]:
    ids = {}
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            ids["wandb_run_id"] = str(logger.version)
    return ids


def _probe_writable(folder: Path) -> None:
    """Fail before training if checkpoints cannot be written where they go."""
    from litzoo.errors import CheckpointError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise CheckpointError(
            f"Cannot write checkpoints to {folder}: {error.strerror or error}. Choose a writable location "
            "with hydra.run.dir=<dir> (or paths.log_dir=<dir>)."
        ) from error


def _check_disk_space(folder: Path, task: Any) -> None:
    """Fail before training if the disk cannot hold a few checkpoints of this model."""
    import shutil

    from litzoo.errors import CheckpointError

    weights = sum(p.numel() * p.element_size() for p in task.parameters())
    needed = 3 * weights * 3  # weights + optimizer state (~2x), a few files kept
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise CheckpointError(
            f"Only {free / 2**20:.0f} MiB free in {folder}, but this model's checkpoints need about "
            f"{needed / 2**20:.0f} MiB. Free some space or write the run elsewhere with hydra.run.dir=<dir>."
        )


# Set by Lightning's launcher in the parent process when it starts the other ranks.
_LAUNCHER_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def _end_distributed(launcher_env: dict[str, str | None]) -> None:
    """Leave the process as it was before the run, so the next job of a sweep can start its own ranks.

    Lightning keeps the process group and sets LOCAL_RANK & co. in the parent; a second
    DDP job in the same process would then reuse a dead group, or believe its ranks were
    started externally and wait for them forever.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for name, value in launcher_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _close_wandb() -> None:
    """End the W&B run (Lightning leaves it open), so the next run in this process starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def _objective(cfg: DictConfig, trainer: Any) -> float | list[float] | None:
    """The value of `optimized_metric`; one value per name when it is a list (a multi-objective search)."""
    names = cfg.get("optimized_metric")
    if not names:
        return None
    values = []
    for name in [names] if isinstance(names, str) else list(names):
        value = trainer.callback_metrics.get(name)
        if value is None:
            from litzoo.errors import ConfigError

            known = ", ".join(sorted(trainer.callback_metrics)) or "none"
            raise ConfigError(f"optimized_metric={name} was never logged. Logged metrics: {known}.")
        values.append(float(value))
    return values[0] if isinstance(names, str) else values


def _raise_if_interrupted(trainer: Any) -> None:
    if getattr(trainer, "interrupted", False):
        raise KeyboardInterrupt


def _finish_outputs(cfg: DictConfig, ctx: RunContext, result: RunResult, record: RunRecord) -> None:
    from litzoo.platform.console import human_bytes, print_results
    from litzoo.platform.plots import plot_curves
    from litzoo.platform.run_dir import RunDir

    try:
        plot = plot_curves(ctx.run_dir / "metrics.csv", ctx.run_dir / "curves.png")
    except Exception:  # a plot is a convenience; never fail a finished run over it
        log.warning("Could not plot the training curves", exc_info=True)
        plot = None
    disk = RunDir(ctx.run_dir).size_bytes()  # hard-linked checkpoints counted once
    record.update(disk_bytes=disk)
    print_results(
        f"{cfg.task.name} / {cfg.model.name} / {cfg.data.name}: test metrics",
        result.metrics,
        {
            "Run directory": f"{ctx.run_dir} ({human_bytes(disk)})",
            "Best checkpoint": result.best_checkpoint,
            "Curves": plot,
            "Reproduce": record.data.get("reproduce"),
        },
    )


def _redact_hydra_files(run_dir: Path) -> None:
    """Rewrite Hydra's saved configs without credentials (they are written before we run)."""
    for path in (run_dir / ".hydra").glob("*.yaml"):
        original = OmegaConf.load(path)
        cleaned = redact(OmegaConf.to_container(original, resolve=False))
        if cleaned != OmegaConf.to_container(original, resolve=False):
            OmegaConf.save(OmegaConf.create(cleaned), path)


def _log_to_file_only(message: str) -> None:
    """Write to train.log but not the terminal (which gets one paragraph instead of a traceback)."""
    record = logging.LogRecord("litzoo", logging.ERROR, __file__, 0, "%s", (message,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _is_signal_stop(error: BaseException) -> bool:
    lightning = sys.modules.get("lightning.pytorch.utilities.exceptions")
    return lightning is not None and isinstance(error, lightning.SIGTERMException)


def _record_failure(record: RunRecord, error: BaseException, ctx: RunContext) -> None:
    preempted = _is_signal_stop(error)
    # Lightning turns Ctrl-C into sys.exit(1); launchers (submitit) exit with codes of their own.
    interrupted = preempted or isinstance(error, (KeyboardInterrupt, SystemExit))
    status = "interrupted" if interrupted else "failed"
    message = str(error) if isinstance(error, LitzooError) else f"{type(error).__name__}: {error}"
    _log_to_file_only("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    if record.data:  # a run.json exists: mark it
        record.finish(status, error=None if interrupted else message)
    else:
        record.start(
            status=status,
            run_dir=str(ctx.run_dir),
            overrides=ctx.overrides,
            error=None if interrupted else message,
            ended_at=now_iso(),
        )
    if ctx.multirun and not interrupted:
        log.error("Job failed: %s (details in %s)", message, ctx.run_dir / "train.log")
        return
    if interrupted:
        log.warning("Run interrupted; continue it with `python train.py resume=%s`", ctx.run_dir)
        if preempted:
            sys.exit(143)
        if isinstance(error, SystemExit):
            raise error  # keep the exit code a launcher chose
        sys.exit(130)
    if isinstance(error, LitzooError):
        _log_to_file_only(message)
        print(f"\nError: {message}\n(run directory: {ctx.run_dir})", file=sys.stderr)
        sys.exit(error.exit_code)
    _log_to_file_only(f"Run failed: {message}")
    print(
        f"\nError: the run failed with {message}\nThe full traceback is in {ctx.run_dir / 'train.log'}",
        file=sys.stderr,
    )
    sys.exit(1)
