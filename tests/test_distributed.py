"""Scale-out through train.py: DDP on 2 CPU processes, crashed ranks, two simulated nodes.

The end-to-end tests run `python train.py` in a subprocess whose working directory is a
temporary directory, so a stray run directory (a rank that composed its own run, a child
that started its own sweep) would show up there. Failures are injected with the test-only
callback in tests/scripts/fail_on_rank.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import ROOT, TINY, compose, read_json, run_cli, run_in_process

from litzoo.errors import ConfigError, DependencyError
from litzoo.platform.ranks import JOB_ENV, ddp_child_argv

SCRIPTS = Path(__file__).parent / "scripts"
# The whole test split (270 digits) instead of TINY's two batches: every sample is evaluated
# exactly once across the ranks, so the synced metrics can be checked against one process.
FULL_TEST = "trainer.limit_test_batches=null"
DDP_ENV = {
    "OMP_NUM_THREADS": "1",
    "PYTHONPATH": os.pathsep.join([str(SCRIPTS), os.environ.get("PYTHONPATH", "")]),
}
INJECT = ["+callbacks.fail._target_=fail_on_rank.FailOnRank", "trust.allow=[fail_on_rank]"]
# The learning rate is given for 16 samples per step and scaled linearly to the global batch.
DDP_RUN = [FULL_TEST, "trainer=ddp_cpu", "optim.lr_scaling=linear", "optim.base_batch_size=16"]


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes (other than this one) that contain `text`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if int(cmdline.parent.name) == os.getpid():
                continue
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line and (Path(cmdline.parent) / "stat").read_text().split()[2] != "Z":
            found.append(line)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- command lines of DDP children and externally launched ranks --------------------------------


def test_ddp_child_runs_its_parents_job_not_a_new_sweep():
    job = {
        "run_dir": "/runs/sweep/1",
        "overrides": ["optim.lr=0.01", "hparams_search=optuna_classification"],
        "config_dirs": ["/team/conf"],
    }
    # What Lightning re-executes for rank 1 of a sweep job: the sweep's own command line plus its additions.
    argv = [
        "train.py",
        "-m",
        "optim.lr=0.1,0.01",
        'hydra.run.dir="outputs/x"',
        "hydra.job.name=train_ddp_process_1",
        "hydra.output_subdir=null",
    ]
    child = ddp_child_argv(argv, {JOB_ENV: json.dumps(job), "LOCAL_RANK": "1"})
    assert child == [
        "train.py",
        "--config-dir=/team/conf",
        "optim.lr=0.01",
        "hparams_search=optuna_classification",
        "hydra.run.dir=/runs/sweep/1",
        "hydra.mode=RUN",
        "hydra.job.name=train_ddp_process_1",
        "hydra.output_subdir=null",
    ]
    # The launching process itself (LOCAL_RANK 0) keeps its command line.
    assert ddp_child_argv(argv, {JOB_ENV: json.dumps(job), "LOCAL_RANK": "0"}) == argv


def test_hydra_mode_run_overrides_a_search_config_that_sets_multirun():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        search = hydra_compose("train", ["hparams_search=optuna_classification"], return_hydra_config=True)
        child = hydra_compose(
            "train", ["hparams_search=optuna_classification", "hydra.mode=RUN"], return_hydra_config=True
        )
    GlobalHydra.instance().clear()
    assert search.hydra.mode == RunMode.MULTIRUN and child.hydra.mode == RunMode.RUN


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "8"}, "train_rank3"),  # torchrun worker
        ({"SLURM_PROCID": "2", "SLURM_NTASKS": "4"}, "train_rank2"),  # srun task
        (
            {"NODE_RANK": "1", "LOCAL_RANK": "0", "WORLD_SIZE": "2"},
            "train_node1_process_0",
        ),  # 2nd node, env vars
        ({"NODE_RANK": "1", "LOCAL_RANK": "1"}, "train_node1_process_1"),  # its Lightning child
    ],
)
def test_externally_launched_ranks_get_rank_suffixed_logs_and_no_hydra_copy(environ, name):
    argv = ["train.py", "trainer=ddp_cpu", "hydra.run.dir=/shared/run", "hydra.job.name=train_ddp_process_1"]
    assert ddp_child_argv(argv, environ) == [
        "train.py",
        "trainer=ddp_cpu",
        "hydra.run.dir=/shared/run",
        f"hydra.job.name={name}",
        "hydra.output_subdir=null",
    ]


@pytest.mark.parametrize(
    "environ",
    [{}, {"RANK": "0", "LOCAL_RANK": "0"}, {"SLURM_PROCID": "0"}, {"NODE_RANK": "0", "LOCAL_RANK": "0"}],
)
def test_global_rank_zero_keeps_its_command_line(environ):
    argv = ["train.py", "trainer=ddp_cpu"]
    assert ddp_child_argv(argv, environ) == argv


# --- trainer configs and strategies -----------------------------------------------------------


def test_ddp_cpu_config_builds_a_two_process_gloo_trainer_with_a_timeout_and_the_watchdog(tmp_path):
    from hydra.utils import instantiate
    from lightning.pytorch.strategies import DDPStrategy

    from litzoo.platform.distributed import RankWatchdog

    cfg = compose(["trainer=ddp_cpu"], run_dir=tmp_path)
    trainer = instantiate(cfg.trainer, _convert_="all")
    assert isinstance(trainer.strategy, DDPStrategy)
    assert trainer.world_size == 2 and trainer.num_devices == 2
    assert trainer.strategy.process_group_backend == "gloo"
    assert trainer.strategy._timeout == timedelta(seconds=300)
    assert trainer.strategy._ddp_kwargs == {"find_unused_parameters": False}
    assert isinstance(instantiate(cfg.callbacks.rank_watchdog), RankWatchdog)
    # Overrides reach the strategy; the rest of the trainer config is the default one.
    cfg = compose(["trainer=ddp_cpu", "trainer.devices=3", "trainer.strategy.timeout_s=42"], run_dir=tmp_path)
    assert cfg.trainer.max_epochs == compose([], run_dir=tmp_path).trainer.max_epochs
    trainer = instantiate(cfg.trainer, _convert_="all")
    assert trainer.world_size == 3 and trainer.strategy._timeout == timedelta(seconds=42)


def test_gpu_configs_compose_and_multinode_reads_the_launcher_environment(tmp_path, monkeypatch):
    for name in ("gpu", "ddp", "fsdp", "deepspeed", "multinode"):
        cfg = compose([f"trainer={name}"], run_dir=tmp_path)
        assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision in ("auto", "bf16-mixed")
        assert ("rank_watchdog" in cfg.callbacks) == (name != "gpu")
    monkeypatch.setenv("GROUP_WORLD_SIZE", "3")  # torchrun: nodes, and processes per node
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    cfg = compose(["trainer=multinode"], run_dir=tmp_path)
    assert (cfg.trainer.num_nodes, cfg.trainer.devices) == (3, 4)
    monkeypatch.delenv("GROUP_WORLD_SIZE")
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    monkeypatch.setenv("SLURM_NNODES", "2")
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "8")
    cfg = compose(["trainer=multinode"], run_dir=tmp_path)
    assert (cfg.trainer.num_nodes, cfg.trainer.devices) == (2, 8)
    assert cfg.trainer.strategy.timeout_s == 1200


def test_fsdp_strategy_from_plain_values():
    import timm.layers
    import torch.nn as nn
    from torch.distributed.fsdp import ShardingStrategy

    from litzoo.platform.distributed import fsdp_strategy, module_classes

    # Layer classes (they take precedence over the size rule) become the FSDP units and,
    # with activation_checkpointing, the checkpointed blocks.
    strategy = fsdp_strategy(
        sharding_strategy="SHARD_GRAD_OP",
        auto_wrap_layers=["timm.layers.Mlp"],
        auto_wrap_min_params=1000,
        activation_checkpointing=True,
        timeout_s=60,
    )
    assert strategy.sharding_strategy == ShardingStrategy.SHARD_GRAD_OP
    assert strategy.kwargs["auto_wrap_policy"]._module_classes == {timm.layers.Mlp}
    assert strategy._activation_checkpointing_kwargs["auto_wrap_policy"]._module_classes == {timm.layers.Mlp}
    assert strategy._timeout == timedelta(seconds=60)
    by_size = fsdp_strategy(auto_wrap_min_params=1000)
    assert by_size.kwargs["auto_wrap_policy"].keywords == {"min_num_params": 1000}
    assert not by_size._activation_checkpointing_kwargs
    with pytest.raises(ConfigError, match="activation_checkpointing=true needs the blocks"):
        fsdp_strategy(activation_checkpointing=True, auto_wrap_min_params=1000)
    with pytest.raises(ConfigError, match="not known"):
        fsdp_strategy(sharding_strategy="ZERO3")
    with pytest.raises(ConfigError, match="not on the allowlist"):
        fsdp_strategy(auto_wrap_layers=["os.system"])
    with pytest.raises(ConfigError, match="not a torch.nn.Module"):
        fsdp_strategy(auto_wrap_layers=["torch.optim.SGD"])
    assert module_classes(["torch.nn.Linear"], "k") == [nn.Linear]


def test_deepspeed_is_optional_with_a_clear_message():
    import importlib.util

    from litzoo.platform.distributed import deepspeed_strategy

    if importlib.util.find_spec("deepspeed") is not None:
        pytest.skip("deepspeed is installed here")
    with pytest.raises(DependencyError, match="pip install deepspeed"):
        deepspeed_strategy()


# --- the rank watchdog, piece by piece --------------------------------------------------------


RANK1_LOG = """\
[2026-11-25 10:00:00,000][litzoo][INFO] - Batch size: 16 per device x 2 device(s) x 1 accumulation = 32 global
[2026-11-25 10:00:01,000][litzoo][ERROR] - Traceback (most recent call last):
  File "/work/main/src/litzoo/platform/runner.py", line 97, in run
    result = _fit_and_test(cfg, ctx, seed, record, previous if resuming else None)
litzoo.errors.DataError: sample 17 of the train split cannot be decoded: truncated JPEG
[2026-11-25 10:00:01,001][litzoo][ERROR] - sample 17 of the train split cannot be decoded: truncated JPEG
"""


def test_watchdog_names_the_rank_that_died_and_stops_the_other_ranks(tmp_path, monkeypatch):
    from litzoo.platform.distributed import RankWatchdog, _ChildWatch, last_error

    monkeypatch.delenv("NODE_RANK", raising=False)
    (tmp_path / "train_ddp_process_1.log").write_text(RANK1_LOG)
    assert last_error(tmp_path / "train_ddp_process_1.log") == (
        "DataError: sample 17 of the train split cannot be decoded: truncated JPEG"
    )
    dead = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    waiting = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    dead.wait(timeout=30)
    watch = _ChildWatch([dead, waiting], tmp_path, True, poll_interval_s=0.05, grace_s=5)
    failure = watch.check()
    expected = (
        f"Rank 1 (pid {dead.pid}) exited with code 3: DataError: sample 17 of the train split cannot be "
        f"decoded: truncated JPEG. Its log: {tmp_path / 'train_ddp_process_1.log'}"
    )
    assert failure is not None and failure.describe() == expected
    assert waiting.wait(timeout=10) == -9  # the other rank was killed, not left waiting for a dead peer

    # Rank 0's own error (a broken connection to the dead peer) is rewritten to name the cause.
    dog = RankWatchdog(peer_wait_s=0.1)
    dog._watch = watch
    error = RuntimeError("[gloo/pair.cc:561] Connection closed by peer [127.0.0.1]:7064")
    dog.on_exception(None, None, error)
    assert (
        str(error)
        == expected
        + ". Then this rank stopped with: [gloo/pair.cc:561] Connection closed by peer "
        "[127.0.0.1]:7064"
    )
    assert watch.main_failed.is_set()


def test_watchdog_leaves_rank_zeros_own_error_alone(tmp_path):
    from litzoo.platform.distributed import RankWatchdog, _ChildWatch

    waiting = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    watch = _ChildWatch([waiting], tmp_path, True, poll_interval_s=0.05, grace_s=0.5)
    dog = RankWatchdog(peer_wait_s=0.1)
    dog._watch = watch
    error = ConfigError("optimized_metric=val/acc was never logged.")
    dog.on_exception(None, None, error)
    assert str(error) == "optimized_metric=val/acc was never logged."
    watch.start()  # this rank failed first: the other rank gets grace_s to exit, then is killed
    assert waiting.wait(timeout=10) == -9


# --- end to end through train.py ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """`python train.py trainer=ddp_cpu` on a tiny slice: 2 processes, gloo."""
    cwd = tmp_path_factory.mktemp("ddp")
    run_dir = cwd / "run"
    result = run_cli([*TINY, *DDP_RUN, f"hydra.run.dir={run_dir}"], env=DDP_ENV, cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return cwd, run_dir, result


def test_ddp_cpu_run_has_one_run_directory_written_by_rank_zero(ddp_run):
    cwd, run_dir, result = ddp_run
    assert sorted(p.name for p in cwd.iterdir()) == ["run"]  # no directory per rank, no outputs/
    assert [p.parent for p in cwd.rglob("run.json")] == [run_dir]
    record = read_json(run_dir / "run.json")
    assert record["status"] == "completed"
    assert record["global_batch_size"] == 32  # 16 per device x 2 processes
    log0 = (run_dir / "train.log").read_text()
    log1 = (run_dir / "train_ddp_process_1.log").read_text()
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log0 and "GLOBAL_RANK: 1, MEMBER: 2/2" in log1
    assert "Batch size: 16 per device x 2 device(s) x 1 accumulation = 32 global" in log0
    assert "Linear lr scaling: 0.1 x 32 / 16 = 0.2" in log0
    assert not processes_mentioning(str(run_dir))


def test_ddp_cpu_test_metrics_are_synced_over_both_ranks(ddp_run, tmp_path):
    """Each rank evaluates half of the test split; the logged metrics are those of the whole split:
    the same as one process evaluating the same checkpoint on all of it."""
    _, run_dir, _ = ddp_run
    record = read_json(run_dir / "run.json")
    code, single = run_in_process(
        [*TINY, FULL_TEST, "train=false", f"ckpt_path={record['best_checkpoint']}"], tmp_path / "eval"
    )
    assert code == 0, single
    for name in ("test/acc_top1", "test/acc_top5"):  # counts summed over ranks: exactly equal
        assert record["metrics"][name] == single["metrics"][name]
    assert record["metrics"]["test/loss"] == pytest.approx(single["metrics"]["test/loss"], rel=1e-5)


def test_a_crashed_rank_fails_the_job_promptly_with_its_error(tmp_path):
    run_dir = tmp_path / "run"
    start = time.monotonic()
    result = run_cli(
        [
            *TINY,
            "trainer=ddp_cpu",
            *INJECT,
            "+callbacks.fail.rank=1",
            "+callbacks.fail.when=train_batch",
            f"hydra.run.dir={run_dir}",
        ],
        env=DDP_ENV,
        cwd=tmp_path,
        timeout=240,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert elapsed < 90
    cause = "Rank 1 (pid "
    message = "DataError: injected failure: sample 17 of the train split cannot be decoded (rank 1)"
    assert cause in result.stderr and message in result.stderr and "train_ddp_process_1.log" in result.stderr
    assert "Traceback" not in result.stderr
    record = read_json(run_dir / "run.json")
    # The type is rank 0's (its collective lost the peer); the message starts with the cause.
    assert record["status"] == "failed" and message in record["error"]
    assert record["error"].startswith("RuntimeError: " + cause)
    assert message in (run_dir / "train.log").read_text()
    assert "Traceback (most recent call last)" in (run_dir / "train_ddp_process_1.log").read_text()
    assert not processes_mentioning(str(run_dir))


@pytest.mark.slow
def test_a_rank_blocked_after_a_peer_died_is_ended(tmp_path):
    """Rank 1 dies without a Python error; rank 0 is somewhere a dead peer cannot wake it (here: asleep,
    as in an NCCL collective). The watchdog ends rank 0 after grace_s and records why."""
    run_dir = tmp_path / "run"
    start = time.monotonic()
    result = run_cli(
        [
            *TINY,
            "trainer=ddp_cpu",
            *INJECT,
            "+callbacks.fail.when=exit",
            "+callbacks.fail.stall_others_s=600",
            "callbacks.rank_watchdog.grace_s=3",
            f"hydra.run.dir={run_dir}",
        ],
        env=DDP_ENV,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 1 and time.monotonic() - start < 90, result.stderr[-3000:]
    record = read_json(run_dir / "run.json")
    assert record["status"] == "failed"
    assert record["error"].startswith("RankFailedError: Rank 1 (pid ")
    assert "exited with code 17" in record["error"] and "still blocked 3 s later" in record["error"]
    assert not processes_mentioning(str(run_dir))


@pytest.mark.slow
def test_other_ranks_exit_when_rank_zero_dies(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        [
            *TINY,
            "trainer=ddp_cpu",
            *INJECT,
            "+callbacks.fail.rank=0",
            "+callbacks.fail.when=exit",
            "+callbacks.fail.stall_others_s=600",
            f"hydra.run.dir={run_dir}",
        ],
        env=DDP_ENV,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 17
    deadline = time.monotonic() + 15
    while processes_mentioning(str(run_dir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not processes_mentioning(str(run_dir))
    assert "is gone; stopping this rank" in (run_dir / "train_ddp_process_1.log").read_text()


@pytest.mark.slow
def test_sweep_with_ddp_gives_one_directory_per_job(tmp_path):
    """`-m` with DDP: Lightning re-executes the command line (with -m) for rank 1; the children
    must run their parent's job, not start sweeps of their own (Lightning #11300)."""
    sweep = tmp_path / "sweep"
    result = run_cli(
        ["-m", *TINY, "trainer=ddp_cpu", "optim.lr=0.1,0.01", f"hydra.sweep.dir={sweep}"],
        env=DDP_ENV,
        cwd=tmp_path,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    assert sorted(p.relative_to(sweep).parts[0] for p in sweep.rglob("run.json")) == ["0", "1"]
    for job, lr in (("0", 0.1), ("1", 0.01)):
        record = read_json(sweep / job / "run.json")
        assert record["status"] == "completed" and f"optim.lr={lr}" in record["overrides"]
        assert record["global_batch_size"] == 32
        assert f"lr: {lr}" in (sweep / job / ".hydra" / "config.yaml").read_text()
        assert "GLOBAL_RANK: 1, MEMBER: 2/2" in (sweep / job / "train_ddp_process_1.log").read_text()
    summary = (sweep / "summary.csv").read_text().splitlines()
    assert len(summary) == 3 and summary[1].startswith("0,completed") and summary[2].startswith("1,completed")


@pytest.mark.slow
def test_a_crashed_rank_fails_its_sweep_job_and_the_sweep_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        [
            "-m",
            *TINY,
            "trainer=ddp_cpu",
            *INJECT,
            "+callbacks.fail.when=train_batch",
            "+callbacks.fail.rank=1,5",
            f"hydra.sweep.dir={sweep}",
        ],
        env=DDP_ENV,
        cwd=tmp_path,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    failed, completed = read_json(sweep / "0" / "run.json"), read_json(sweep / "1" / "run.json")
    assert failed["status"] == "failed" and failed["error"].startswith("RuntimeError: Rank 1 (pid ")
    assert completed["status"] == "completed"
    assert not processes_mentioning(str(sweep))


@pytest.mark.slow
def test_two_nodes_on_localhost_train_like_one_node_with_two_processes(ddp_run, tmp_path):
    """Two processes started like two nodes (Lightning's environment variables: MASTER_ADDR/PORT,
    NODE_RANK, WORLD_SIZE, LOCAL_RANK) with num_nodes=2, devices=1, sharing one run directory.
    Global ranks, data shards and the global batch are those of the single-node 2-process run,
    so the metrics are identical."""
    _, single_node_dir, _ = ddp_run
    run_dir = tmp_path / "run"
    port = str(free_port())
    args = [
        sys.executable,
        str(ROOT / "train.py"),
        *TINY,
        *DDP_RUN,
        "trainer.num_nodes=2",
        "trainer.devices=1",
        f"hydra.run.dir={run_dir}",
    ]
    procs = []
    for node in (0, 1):
        env = {
            **os.environ,
            **DDP_ENV,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "NODE_RANK": str(node),
            "WORLD_SIZE": "2",
            "LOCAL_RANK": "0",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("HYDRA_FULL_ERROR", None)
        procs.append(
            subprocess.Popen(
                args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert [p.parent for p in tmp_path.rglob("run.json")] == [run_dir]  # written by global rank 0 only
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in (run_dir / "train_node1_process_0.log").read_text()
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in (run_dir / "train.log").read_text()
    assert "GLOBAL_RANK: 1" not in (run_dir / "train.log").read_text()
    record, single_node = read_json(run_dir / "run.json"), read_json(single_node_dir / "run.json")
    assert record["status"] == "completed" and record["global_batch_size"] == 32
    assert record["metrics"] == single_node["metrics"]
