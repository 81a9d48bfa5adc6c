"""Multi-process training: strategies built from plain config values, and a watchdog for dead ranks.

Strategy factories (`ddp_strategy`, `fsdp_strategy`, `deepspeed_strategy`) let a YAML file
say `timeout_s: 300` or `auto_wrap_layers: [timm.models.vision_transformer.Block]` instead
of building `datetime.timedelta` or class objects, which the config allowlist would refuse
(and which YAML cannot express). They return Lightning's own strategy classes.

`RankWatchdog` fixes what Lightning does when a rank dies. Lightning's launcher starts
ranks 1..N-1 as child processes and watches them with a thread that, when one exits
non-zero, SIGKILLs every process *including the parent*: the parent's `run.json` stays
`running`, its log never says why, and in a sweep (`-m`) every remaining job dies with
it. The watchdog replaces that observer. In the process that launched the ranks it

- notices a child that exited non-zero within `poll_interval_s`, logs which rank died,
  its exit code, the last error in its log and the log's path, and kills the other ranks;
- lets this process fail normally: a dead peer makes the next collective raise (gloo
  reports "Connection closed by peer" at once), and the watchdog rewrites that message
  to name the rank that died first, so `run.json` and the terminal say the real cause;
- if this process is still running `grace_s` after the death (e.g. blocked in an NCCL
  collective, which waits for its timeout), aborts the process group and, as a last
  resort, marks `run.json` failed and exits the process with code 1;
- after this process failed for its own reasons, kills ranks that do not exit by
  themselves within `grace_s` (no stray processes waiting for a dead peer).

In a rank started by a launcher (LOCAL_RANK > 0: Lightning's children, torchrun's workers)
it watches the parent and exits when the parent disappears.

Limits: Lightning's observer is only replaced when the watchdog's `setup` hook runs, i.e.
after all ranks joined the process group. A rank that dies earlier (import error, killed
while starting) is still handled by Lightning's observer: the job stops within about 5 s,
but with SIGKILL. Ranks on other nodes are not children of this process; their death
reaches this process through the failing collective (and the process-group timeout).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy, Strategy

from litzoo.errors import ConfigError, DependencyError

log = logging.getLogger("litzoo")


# --- strategies --------------------------------------------------------------------------------


def ddp_strategy(
    timeout_s: float = 600,
    find_unused_parameters: bool = False,
    process_group_backend: str | None = None,
    **ddp_kwargs: Any,
) -> DDPStrategy:
    """Lightning's DDPStrategy with a process-group timeout in seconds.

    `timeout_s` bounds how long a collective waits for a missing peer (Lightning's default
    is 30 minutes). `process_group_backend` null picks nccl on GPUs and gloo on CPUs. Other
    keys (static_graph, gradient_as_bucket_view, bucket_cap_mb, ...) go to torch's
    DistributedDataParallel.
    """
    return DDPStrategy(
        timeout=_timeout(timeout_s),
        find_unused_parameters=find_unused_parameters,
        process_group_backend=process_group_backend,
        **ddp_kwargs,
    )


FSDP_SHARDING = ("FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD", "_HYBRID_SHARD_ZERO2")


def fsdp_strategy(
    sharding_strategy: str = "FULL_SHARD",
    auto_wrap_layers: Sequence[str] | None = None,
    auto_wrap_min_params: int | None = None,
    activation_checkpointing: bool = False,
    cpu_offload: bool = False,
    state_dict_type: str = "full",
    timeout_s: float = 600,
    process_group_backend: str | None = None,
    **fsdp_kwargs: Any,
) -> FSDPStrategy:
    """Lightning's FSDPStrategy from plain values.

    Args:
        sharding_strategy: FULL_SHARD (ZeRO-3), SHARD_GRAD_OP (ZeRO-2), NO_SHARD (DDP-like),
            HYBRID_SHARD (full sharding inside a node, replication across nodes).
        auto_wrap_layers: dotted class names of the blocks that become FSDP units (e.g.
            `timm.models.vision_transformer.Block`); the usual choice for transformers.
        auto_wrap_min_params: without auto_wrap_layers, wrap every submodule with at least this many
            parameters.
        activation_checkpointing: recompute the activations of each `auto_wrap_layers` block in
            the backward pass (less memory, about a third more compute).
        cpu_offload: keep parameters and gradients in host memory between uses.
        state_dict_type: "full" (one consolidated checkpoint file) or "sharded" (one per rank).
    """
    if sharding_strategy not in FSDP_SHARDING:
        raise ConfigError(
            f"trainer.strategy.sharding_strategy={sharding_strategy!r} is not known; use one of "
            f"{', '.join(FSDP_SHARDING)}."
        )
    layers = set(module_classes(auto_wrap_layers or [], "trainer.strategy.auto_wrap_layers"))
    policy: Any = layers or None
    if auto_wrap_min_params and not layers:
        import functools

        from torch.distributed.fsdp.wrap import size_based_auto_wrap_policy

        policy = functools.partial(size_based_auto_wrap_policy, min_num_params=int(auto_wrap_min_params))
    if activation_checkpointing and not layers:
        raise ConfigError(
            "trainer.strategy.activation_checkpointing=true needs the blocks to checkpoint: set "
            "trainer.strategy.auto_wrap_layers=[<dotted class name>, ...] (e.g. "
            "timm.models.vision_transformer.Block)."
        )
    return FSDPStrategy(
        sharding_strategy=sharding_strategy,
        auto_wrap_policy=policy,
        activation_checkpointing_policy=layers if activation_checkpointing else None,
        cpu_offload=cpu_offload,
        state_dict_type=state_dict_type,
        timeout=_timeout(timeout_s),
        process_group_backend=process_group_backend,
        **fsdp_kwargs,
    )


def deepspeed_strategy(
    stage: int = 2,
    offload_optimizer: bool = False,
    offload_parameters: bool = False,
    timeout_s: float = 600,
    **deepspeed_kwargs: Any,
) -> Strategy:
    """Lightning's DeepSpeedStrategy (ZeRO stage 1-3), if the optional `deepspeed` package is installed."""
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        raise DependencyError(
            "trainer=deepspeed needs the optional deepspeed package, which is not installed. Install it on the "
            "GPU machine (pip install deepspeed; it compiles CUDA kernels), or use trainer=fsdp, which gives the "
            "same ZeRO-style sharding with PyTorch alone."
        )
    from lightning.pytorch.strategies import DeepSpeedStrategy

    return DeepSpeedStrategy(
        stage=stage,
        offload_optimizer=offload_optimizer,
        offload_parameters=offload_parameters,
        timeout=_timeout(timeout_s),
        **deepspeed_kwargs,
    )


def module_classes(names: Sequence[str], key: str) -> list[type]:
    """The torch.nn.Module classes named by dotted paths, checked against the config allowlist.

    Importing a module runs its code, so class names from a config obey the same allowlist
    as `_target_`s (`litzoo.platform.trust`).
    """
    import torch
    from hydra.utils import get_class

    from litzoo.platform import trust

    allowed = (*trust.ALLOWED_PACKAGES, *trust.SESSION.extra_packages)
    classes = []
    for name in names:
        problem = None if trust.SESSION.everything else trust.target_problem(str(name), allowed, resolve=True)
        if problem:
            raise ConfigError(
                f"Refusing {key} entry {name}: {problem}. Name a layer class from "
                f"{', '.join(allowed)} (or allow its package with trust.allow=[...])."
            )
        try:
            cls = get_class(str(name))
        except Exception as error:
            raise ConfigError(
                f"{key} entry {name} is not an importable class ({error}). Use the full dotted "
                "path, e.g. timm.models.vision_transformer.Block."
            ) from error
        if not issubclass(cls, torch.nn.Module):
            raise ConfigError(f"{key} entry {name} is not a torch.nn.Module subclass.")
        classes.append(cls)
    return classes


def _timeout(seconds: float) -> timedelta:
    if not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ConfigError(f"trainer.strategy.timeout_s={seconds!r} must be a positive number of seconds.")
    return timedelta(seconds=seconds)


# --- the rank watchdog -------------------------------------------------------------------------


class RankFailedError(RuntimeError):
    """Another rank of this job died; the message names it, its exit code, error and log."""


@dataclass
class RankFailure:
    local_rank: int
    pid: int
    exit_code: int
    log_path: Path | None
    error: str | None

    def describe(self) -> str:
        if self.exit_code < 0:
            how = f"was killed by {_signal_name(-self.exit_code)}"
        else:
            how = f"exited with code {self.exit_code}"
        text = f"Rank {self.local_rank} (pid {self.pid}) {how}"
        text += f": {self.error}" if self.error else " without an error message in its log"
        if self.log_path is not None:
            text += f". Its log: {self.log_path}"
        return text


class RankWatchdog(pl.Callback):
    """Make a multi-process job fail promptly, completely and with the failing rank's error.

    Add it to the Trainer's callbacks (the `ddp*`/`fsdp`/`multinode` trainer configs do).
    It does nothing in single-process runs.
    """

    def __init__(
        self, poll_interval_s: float = 0.5, grace_s: float = 30.0, peer_wait_s: float = 10.0
    ) -> None:
        self.poll_interval_s = poll_interval_s
        self.grace_s = grace_s
        self.peer_wait_s = peer_wait_s
        self._watch: _ChildWatch | None = None
        self._parent_watch: threading.Thread | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        procs = getattr(trainer.strategy.launcher, "procs", None)
        if procs:  # this process started the other ranks of its node
            if self._watch is None or self._watch.procs is not procs:
                _disarm_lightning_observer(procs)
                self._watch = _ChildWatch(
                    procs, _run_dir(trainer), trainer.global_rank == 0, self.poll_interval_s, self.grace_s
                )
                self._watch.start()
            if self._watch.failure is not None:  # a rank died between two stages (e.g. after fit)
                raise RankFailedError(self._watch.failure.describe())
            self._watch.active = True
        elif int(os.environ.get("LOCAL_RANK", "0")) > 0 and self._parent_watch is None:
            self._parent_watch = _ParentWatch(self.poll_interval_s)
            self._parent_watch.start()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._watch is not None:
            self._watch.active = False

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        watch = self._watch
        if watch is None:
            return
        if watch.failure is None and looks_like_lost_peer(exception):
            # A peer's death usually reaches this process (as a closed connection) before the
            # peer has finished exiting; wait for it, so the error can name it.
            deadline = time.monotonic() + self.peer_wait_s
            while watch.failure is None and time.monotonic() < deadline:
                watch.check()
                time.sleep(0.1)
        watch.main_failed.set()
        if watch.failure is not None and not isinstance(exception, RankFailedError):
            prefix_message(exception, watch.failure.describe() + ". Then this rank stopped with: ")


LOST_PEER = re.compile(
    r"(closed|reset) by peer|Broken pipe|remote worker|Connection refused|NCCL|"
    r"timed out|Timeout|ProcessGroup.*abort",
    re.IGNORECASE,
)


def looks_like_lost_peer(exception: BaseException) -> bool:
    """Whether an exception is the consequence of another rank going away (not a cause)."""
    import torch.distributed as dist

    dist_error = getattr(dist, "DistError", None)
    return (dist_error is not None and isinstance(exception, dist_error)) or bool(
        LOST_PEER.search(str(exception))
    )


def prefix_message(exception: BaseException, prefix: str) -> None:
    """Put `prefix` in front of the exception's message (as Lightning's own `_augment_message` does)."""
    if exception.args and isinstance(exception.args[0], str) and not exception.args[0].startswith(prefix):
        exception.args = (prefix + exception.args[0], *exception.args[1:])


def last_error(log_path: Path | None) -> str | None:
    """The exception line of the last traceback in a log file (or its last ERROR line), if any."""
    if log_path is None or not log_path.is_file():
        return None
    with open(log_path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
        lines = f.read().decode("utf-8", errors="replace").splitlines()
    record_start = re.compile(r"^\[\d{4}-\d\d-\d\d[ T]")
    starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last):" in line]
    if starts:
        body = []
        for line in lines[starts[-1] + 1 :]:
            if record_start.match(line):
                break
            body.append(line)
        final = [line for line in body if line.strip() and not line.startswith((" ", "\t"))]
        if final:
            # "litzoo.errors.DataError: ..." -> "DataError: ..."
            return re.sub(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*(?::|$))", "", final[-1].strip())
    errors = [line.split(" - ", 1)[-1] for line in lines if "][ERROR] - " in line]
    return errors[-1] if errors else None


def rank_log_path(run_dir: Path | None, local_rank: int) -> Path | None:
    """Where a child rank started by Lightning logs (see `litzoo.platform.ranks.ddp_child_argv`)."""
    if run_dir is None:
        return None
    from litzoo.platform.ranks import child_job_name

    return run_dir / f"{child_job_name(local_rank, os.environ)}.log"


class _ChildWatch(threading.Thread):
    """Polls the child processes of the launching rank; see the module docstring for what it does."""

    def __init__(
        self, procs: list, run_dir: Path | None, is_global_zero: bool, poll_interval_s: float, grace_s: float
    ) -> None:
        super().__init__(daemon=True, name="litzoo-rank-watchdog")
        self.procs = procs
        self.run_dir = run_dir
        self.is_global_zero = is_global_zero
        self.poll_interval_s = poll_interval_s
        self.grace_s = grace_s
        self.failure: RankFailure | None = None
        self.active = False  # inside a fit/test stage of this process
        self.main_failed = threading.Event()  # this process raised (on_exception ran)
        self._lock = threading.Lock()
        self._failed_at = 0.0

    def check(self) -> RankFailure | None:
        """Record the first child that exited non-zero (once) and kill the others.

        Children that die after this process failed are a consequence, not a cause: ignored.
        """
        with self._lock:
            if self.failure is None and not self.main_failed.is_set():
                for local_rank, proc in enumerate(self.procs, start=1):
                    code = proc.poll()
                    if code not in (None, 0):
                        path = rank_log_path(self.run_dir, local_rank)
                        self.failure = RankFailure(local_rank, proc.pid, code, path, last_error(path))
                        self._failed_at = time.monotonic()
                        log.error("%s. Stopping the other ranks of this job.", self.failure.describe())
                        self.kill_children()
                        break
            return self.failure

    def kill_children(self) -> None:
        # SIGKILL: a rank blocked inside a collective never runs a Python SIGTERM handler.
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)

    def run(self) -> None:
        while True:
            time.sleep(self.poll_interval_s)
            if self.main_failed.is_set():
                self._reap()
                return
            failure = self.check()
            if failure is None:
                if all(p.poll() == 0 for p in self.procs):
                    return  # the job ended normally
            elif time.monotonic() - self._failed_at > self.grace_s:
                if self.active and not self.main_failed.is_set():
                    self._stop_this_process(failure)
                return  # otherwise between stages: the next `setup` raises RankFailedError

    def _reap(self) -> None:
        """This process failed: give the other ranks grace_s to exit on their own, then kill them."""
        deadline = time.monotonic() + self.grace_s
        while time.monotonic() < deadline:
            if all(p.poll() is not None for p in self.procs):
                return
            time.sleep(self.poll_interval_s)
        log.warning("Killing the ranks still running %.0f s after this rank failed.", self.grace_s)
        self.kill_children()

    def _stop_this_process(self, failure: RankFailure) -> None:
        """This process is stuck (e.g. in an NCCL collective) although a rank died: end it."""
        message = f"{failure.describe()}. This rank was still blocked {self.grace_s:.0f} s later"
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            # NCCL: pending collectives raise and the process fails normally. Gloo has no
            # abort (its collectives fail by themselves when a peer's connection closes).
            with contextlib.suppress(Exception):
                dist.distributed_c10d._abort_process_group()
            if self.main_failed.wait(5.0):
                return
        log.error("%s; ending the process.", message)
        if self.is_global_zero and self.run_dir is not None:
            _mark_run_failed(self.run_dir, f"{RankFailedError.__name__}: {message}.")
        print(f"\nError: {message}; the job was stopped.", file=sys.stderr)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(1)


class _ParentWatch(threading.Thread):
    """In a rank started by a launcher: exit when the launcher (our parent) is gone."""

    def __init__(self, poll_interval_s: float) -> None:
        super().__init__(daemon=True, name="litzoo-parent-watchdog")
        self.parent = os.getppid()
        self.poll_interval_s = max(poll_interval_s, 0.5)

    def run(self) -> None:
        while os.getppid() == self.parent:
            time.sleep(self.poll_interval_s)
        log.error("The process that started this rank (pid %d) is gone; stopping this rank.", self.parent)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(1)


def _disarm_lightning_observer(procs: list) -> None:
    """Stop Lightning's child-process observer for `procs`: it would SIGKILL this process."""
    try:
        from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
    except ImportError:  # a Lightning version without it: nothing to disarm
        return
    for thread in threading.enumerate():
        if isinstance(thread, _ChildProcessObserver) and getattr(thread, "_child_processes", None) is procs:
            thread._run = lambda: True  # its next check ends the thread instead of killing anything


def _run_dir(trainer: pl.Trainer) -> Path | None:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(trainer.default_root_dir) if trainer.default_root_dir else None


def _mark_run_failed(run_dir: Path, error: str) -> None:
    from litzoo.platform.record import now_iso
    from litzoo.platform.run_dir import RECORD_NAME, write_json_atomic
    from litzoo.platform.secrets import redact

    path = run_dir / RECORD_NAME
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
        data.update(status="failed", error=error, ended_at=now_iso())
        write_json_atomic(path, redact(data))
    except Exception:  # the process is about to end; the log has the error in any case
        log.warning("Could not mark %s failed", path, exc_info=True)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
