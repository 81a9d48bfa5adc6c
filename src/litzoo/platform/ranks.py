"""Which process this is: the job's rank, decided in one place for the whole codebase.

Lightning, torchrun, SLURM/submitit and LSF each announce ranks through their own environment
variables. `global_rank()` reads them in one order, so the runner (who writes run.json), the
CLI (who names per-rank log files) and the sweep callbacks never disagree on who is rank 0.
`ddp_child_argv` is what a DDP child started by Lightning runs: exactly its parent's job.
Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

# Variables naming the global rank directly: torchrun, SLURM's srun, submitit, LSF's jsrun.
GLOBAL_RANK_VARIABLES = ("RANK", "SLURM_PROCID", "SUBMITIT_LOCAL_GLOBALID", "JSM_NAMESPACE_RANK")


def launcher_rank(environ: Mapping[str, str] | None = None) -> int | None:
    """The global rank a launcher named outright, or None when none did."""
    environ = os.environ if environ is None else environ
    for variable in GLOBAL_RANK_VARIABLES:
        rank = _env_int(environ, variable)
        if rank is not None:
            return rank
    return None


def global_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's global rank (0 when not distributed).

    Where no launcher names it, Lightning's children are known by node and local rank.
    """
    environ = os.environ if environ is None else environ
    rank = launcher_rank(environ)
    if rank is not None:
        return rank
    node = _env_int(environ, "NODE_RANK") or 0
    local_world = _env_int(environ, "LOCAL_WORLD_SIZE") or 1
    return node * local_world + (_env_int(environ, "LOCAL_RANK") or 0)


# Environment variable through which a run tells the processes Lightning starts for the other
# ranks which job they belong to (set by the runner of global rank 0, inherited by the children).
JOB_ENV = "LITZOO_JOB"


def lightning_child(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process is a rank that Lightning started for a job of ours (it runs its
    parent's job, as resolved there, and takes its parent's decisions: see `ddp_child_argv`)."""
    environ = os.environ if environ is None else environ
    return bool(environ.get(JOB_ENV)) and environ.get("LOCAL_RANK", "0") != "0"


def ddp_child_argv(argv: list[str], environ: Mapping[str, str]) -> list[str]:
    """The command line a DDP child process should run: exactly its parent's job.

    Lightning starts ranks 1..N-1 by re-running the parent's command line. In a sweep
    (`-m a=1,2`) that line would start a whole new sweep in another directory (Lightning
    #11300). A child instead composes the parent job's own overrides and writes into the
    parent's run directory; Lightning's per-rank job name and `hydra.output_subdir=null`
    are kept, so the child logs to `<run_dir>/train_ddp_process_<rank>.log`.

    Ranks started by another launcher run the user's command line as it is: torchrun's
    workers, SLURM tasks started with srun, the processes of other nodes (NODE_RANK > 0)
    and their Lightning children. Those other than global rank 0 get a rank-suffixed job
    name (`train_rank<R>.log`, or `train_node<N>_process_<L>.log` where only the node and
    local rank are known) and no `.hydra/` copy, so they share rank 0's run directory
    without writing into its log or over its (redacted) configs.
    """
    job = environ.get(JOB_ENV)
    if job and environ.get("LOCAL_RANK", "0") != "0":
        spec = json.loads(job)
        kept = [a for a in argv[1:] if a.startswith(("hydra.job.name=", "hydra.output_subdir="))]
        config_dirs = [f"--config-dir={d}" for d in spec.get("config_dirs", [])]
        # hydra.mode=RUN: a config that sets `hydra.mode: MULTIRUN` (an hparams_search file)
        # would otherwise make the child start a sweep of its own.
        return [
            argv[0],
            *config_dirs,
            *spec["overrides"],
            f"hydra.run.dir={spec['run_dir']}",
            "hydra.mode=RUN",
            *kept,
        ]
    name = _launched_rank_job_name(environ)
    if name is None:
        return argv
    rest = [a for a in argv[1:] if not a.startswith(("hydra.job.name=", "hydra.output_subdir="))]
    return [argv[0], *rest, f"hydra.job.name={name}", "hydra.output_subdir=null"]


def child_job_name(local_rank: int, environ: Mapping[str, str]) -> str:
    """The job name (log file stem) of local rank `local_rank` started by Lightning on this node."""
    node = _env_int(environ, "NODE_RANK") or _env_int(environ, "GROUP_RANK") or 0
    return f"train_ddp_process_{local_rank}" if node == 0 else f"train_node{node}_process_{local_rank}"


def _launched_rank_job_name(environ: Mapping[str, str]) -> str | None:
    """The job name of a process started by an external launcher that is not global rank 0, else None."""
    rank = launcher_rank(environ)  # torchrun, srun, submitit: the global rank is known
    if rank is not None:
        return f"train_rank{rank}" if rank > 0 else None
    node = _env_int(environ, "NODE_RANK") or 0
    local_rank = _env_int(environ, "LOCAL_RANK") or 0
    return child_job_name(local_rank, environ) if node > 0 or local_rank > 0 else None


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    try:
        return int(environ[name])
    except (KeyError, ValueError):
        return None
