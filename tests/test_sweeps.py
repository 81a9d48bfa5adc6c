"""Sweeps: Optuna searches, the sweep summary, launchers (SLURM via submitit, joblib, submitit local)."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from pathlib import Path

import pytest
from conftest import CONFIG_DIR, TINY, read_json, run_cli
from omegaconf import OmegaConf

from litzoo.platform import sweep as sweep_module

SCRIPTS = Path(__file__).parent / "scripts"
ENV = {
    "OMP_NUM_THREADS": "1",
    "PYTHONPATH": os.pathsep.join([str(SCRIPTS), os.environ.get("PYTHONPATH", "")]),
}
INJECT = ["+callbacks.fail._target_=fail_on_rank.FailOnRank", "trust.allow=[fail_on_rank]"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def compose_with_hydra(overrides: list[str]):
    """The full config (with its `hydra` node) that `python train.py <overrides>` composes."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from litzoo.platform.configs import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    GlobalHydra.instance().clear()
    return cfg


def summary_rows(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def last_logged(csv_path: Path, name: str) -> float:
    with open(csv_path, newline="") as f:
        return [float(r[name]) for r in csv.DictReader(f) if r.get(name)][-1]


# --- Optuna ------------------------------------------------------------------------------------


def test_optuna_search_goes_on_after_a_failed_trial_and_writes_its_summary(tmp_path):
    """3 trials of the Optuna search on a tiny config; the search space also decides whether a trial
    fails (a data error injected on rank 0, or on a rank that does not exist). The failed trial is
    reported to Optuna as failed, the others complete, and the summary lists all of them."""
    sweep = tmp_path / "sweep"
    result = run_cli(
        [
            "hparams_search=optuna_classification",
            "hydra.sweeper.n_trials=3",
            *TINY,
            *INJECT,
            "+callbacks.fail.when=train_batch",
            "+callbacks.fail.rank=choice(0,5)",
            f"hydra.sweep.dir={sweep}",
        ],
        env=ENV,
        cwd=tmp_path,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    rows = summary_rows(sweep)
    assert [r["job"] for r in rows] == ["0", "1", "2"]
    assert {r["status"] for r in rows} == {"failed", "completed"}  # fixed sampler seed: both kinds occur
    for row in rows:
        job = sweep / row["job"]
        assert row["optimized_metric"] == "val/acc_top1" and row["run_dir"] == str(job)
        assert read_json(job / "run.json")["status"] == row["status"]
        if row["callbacks.fail.rank"] == "0":
            assert row["status"] == "failed" and row["objective"] == ""
            assert row["error"] == "injected failure: sample 17 of the train split cannot be decoded (rank 0)"
        else:
            assert row["status"] == "completed" and row["error"] == ""
            assert float(row["objective"]) == last_logged(job / "metrics.csv", "val/acc_top1")
        for key in ("optim.lr", "optim.weight_decay", "task.label_smoothing"):
            assert f"{key}={row[key]}" in row["overrides"].split()
    # The summary's best trial is Optuna's best trial (same value, same parameters).
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    best = [r for r in rows if r["best"] == "yes"]
    assert len(best) == 1 and float(best[0]["objective"]) == results.best_value
    assert float(best[0]["optim.lr"]) == results.best_params["optim.lr"]
    assert (sweep / "summary.png").read_bytes()[:8] == PNG_MAGIC
    assert "Sweep summary: 3 job(s)" in result.stdout and "injected failure" in result.stdout


def test_optuna_study_in_a_database_is_continued_by_a_later_search(tmp_path):
    """Two searches of one trial each with the same sqlite storage and study name form one study of
    two trials: the second search's best is taken over both (the study is continued, not restarted)."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    objectives = []
    for part in ("part1", "part2"):
        sweep = tmp_path / part
        result = run_cli(
            [
                "hparams_search=optuna_classification",
                "hydra.sweeper.n_trials=1",
                *TINY,
                f"hydra.sweeper.storage={storage}",
                "hydra.sweeper.study_name=shared",
                f"hydra.sweep.dir={sweep}",
            ],
            env=ENV,
            cwd=tmp_path,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        (row,) = summary_rows(sweep)
        assert row["status"] == "completed"
        objectives.append(float(row["objective"]))

    import optuna

    study = optuna.load_study(study_name="shared", storage=storage)
    assert [t.number for t in study.trials] == [0, 1]
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert [t.value for t in study.trials] == objectives
    results = OmegaConf.load(tmp_path / "part2" / "optimization_results.yaml")
    assert results.best_value == max(objectives)


def test_optuna_pruning_stops_trials_from_their_val_metric(tmp_path):
    """The search config's OptunaPruning callback reports val/acc_top1 after each epoch; a pruner that
    prunes every value below 1.1 stops each trial after its first epoch (of 3). The runs end normally
    (tested, recorded as completed); Optuna and the summary list them as pruned."""
    sweep = tmp_path / "sweep"
    result = run_cli(
        [
            "hparams_search=optuna_classification",
            "hydra.sweeper.n_trials=2",
            *TINY,
            "trainer.max_epochs=3",
            "hydra/sweeper/pruner=threshold",
            "hydra.sweeper.pruner.lower=1.1",
            f"hydra.sweep.dir={sweep}",
        ],
        env=ENV,
        cwd=tmp_path,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(sweep / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    assert [(t["number"], t["state"], t["pruned_at_step"], t["run_dir"]) for t in trials] == [
        ("0", "PRUNED", "0", str(sweep / "0")),
        ("1", "PRUNED", "0", str(sweep / "1")),
    ]
    for trial in trials:
        job = sweep / trial["job"]
        assert read_json(job / "run.json")["status"] == "completed"
        with open(job / "metrics.csv", newline="") as f:
            epochs = {r["epoch"] for r in csv.DictReader(f) if r.get("val/acc_top1")}
        assert epochs == {"0"}  # one epoch of three
        assert float(trial["value"]) == last_logged(job / "metrics.csv", "val/acc_top1")
    assert [r["status"] for r in summary_rows(sweep)] == ["pruned", "pruned"]
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert results.n_pruned == 2 and results.best_trial is None


def test_multi_objective_search_through_train_py(tmp_path):
    """optimized_metric as a list: each trial returns one value per metric, Optuna keeps the Pareto front."""
    sweep = tmp_path / "sweep"
    result = run_cli(
        [
            "hparams_search=optuna_classification",
            "hydra.sweeper.n_trials=2",
            *TINY,
            "optimized_metric=[val/acc_top1,val/loss]",
            "hydra.sweeper.direction=[maximize,minimize]",
            f"hydra.sweep.dir={sweep}",
        ],
        env=ENV,
        cwd=tmp_path,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(sweep / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    for trial in trials:
        job = sweep / trial["job"]
        assert trial["state"] == "COMPLETE"
        assert read_json(job / "run.json")["objective"] == [
            float(trial["values_0"]),
            float(trial["values_1"]),
        ]
        assert float(trial["values_1"]) == last_logged(job / "metrics.csv", "val/loss")
    solutions = OmegaConf.load(sweep / "optimization_results.yaml").solutions
    assert 1 <= len(solutions) <= 2
    assert [r["best"] for r in summary_rows(sweep)] == ["", ""]


def test_nan_objective_is_reported_to_optuna_as_a_failed_trial():
    from hydra.core.utils import JobReturn, JobStatus

    callback = sweep_module.OptunaFailedTrials()
    optuna = OmegaConf.create(
        {
            "hydra": {
                "sweeper": {"_target_": "hydra_plugins.litzoo_optuna_sweeper.optuna_sweeper.OptunaSweeper"}
            }
        }
    )
    basic = OmegaConf.create(
        {"hydra": {"sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"}}}
    )
    failed = JobReturn(status=JobStatus.COMPLETED, _return_value=float("nan"))
    callback.on_job_end(optuna, failed)
    assert failed.return_value is None
    kept = JobReturn(status=JobStatus.COMPLETED, _return_value=float("nan"))
    callback.on_job_end(basic, kept)
    assert math.isnan(kept.return_value)
    good = JobReturn(status=JobStatus.COMPLETED, _return_value=0.5)
    callback.on_job_end(optuna, good)
    assert good.return_value == 0.5


def test_optuna_search_config_composes():
    cfg = compose_with_hydra(["hparams_search=optuna_classification"])
    assert cfg.optimized_metric == "val/acc_top1"
    sweeper = cfg.hydra.sweeper
    assert sweeper.direction == "maximize" and sweeper.n_trials == 20 and sweeper.sampler.seed == 1234
    assert set(sweeper.params) == {"optim.lr", "optim.weight_decay", "task.label_smoothing"}
    from hydra.types import RunMode

    assert cfg.hydra.mode == RunMode.MULTIRUN
    assert list(cfg.hydra.callbacks) == ["sweep_summary", "optuna_failed_trials", "rank_log_files"]
    assert sweeper._target_ == "hydra_plugins.litzoo_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert dict(sweeper.pruner) == {
        "_target_": "optuna.pruners.MedianPruner",
        "n_startup_trials": 5,
        "n_warmup_steps": 0,
        "interval_steps": 1,
        "n_min_trials": 1,
    }
    hyperband = compose_with_hydra(["hparams_search=optuna_classification", "hydra/sweeper/pruner=hyperband"])
    assert hyperband.hydra.sweeper.pruner._target_ == "optuna.pruners.HyperbandPruner"
    assert dict(cfg.callbacks.optuna_pruning) == {
        "_target_": "litzoo.platform.pruning.OptunaPruning",
        "monitor": "val/acc_top1",
    }


# --- the summary, from a sweep directory -------------------------------------------------------


def make_job(
    sweep: Path,
    number: int,
    overrides: list[str],
    record: dict | None,
    val_acc: list[float] | None,
    optimized_metric: str | list[str] | None = "val/acc_top1",
):
    job = sweep / str(number)
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(
        OmegaConf.create(
            {"optimized_metric": optimized_metric, "task": {"monitor": "val/acc_top1", "monitor_mode": "max"}}
        ),
        job / ".hydra" / "config.yaml",
    )
    OmegaConf.save(OmegaConf.create({"hydra": {"job": {"num": number}}}), job / ".hydra" / "hydra.yaml")
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    if record is not None:
        (job / "run.json").write_text(json.dumps({"overrides": overrides, **record}))
    if val_acc is not None:
        lines = ["epoch,step,train/loss,val/acc_top1"]
        for epoch, acc in enumerate(val_acc):
            lines += [f"{epoch},{10 * epoch + 5},2.0,", f"{epoch},{10 * epoch + 9},,{acc}"]
        (job / "metrics.csv").write_text("\n".join(lines) + "\n")
    return job


def test_summary_of_a_grid_sweep_lists_every_job(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    common = ["trainer.max_epochs=2", "data.batch_size=16"]
    make_job(
        sweep,
        0,
        ["optim.lr=0.1", *common],
        {"status": "completed", "duration_s": 12.5, "metrics": {"test/acc_top1": 0.7, "test/loss": 0.9}},
        [0.5, 0.75],
    )
    make_job(
        sweep,
        1,
        ["optim.lr=0.01", *common],
        {
            "status": "failed",
            "duration_s": 3.0,
            "metrics": {},
            "error": "DataError: sample 17 of the train split cannot be decoded",
        },
        None,
    )
    make_job(
        sweep,
        2,
        ["optim.lr=0.05", *common],
        {
            "status": "completed",
            "duration_s": 11.0,
            "metrics": {"test/acc_top1": 0.8, "test/loss": 0.7},
            "objective": {"val/acc_top1": 0.875},
        },
        [0.875],
    )
    make_job(sweep, 10, ["optim.lr=0.001", *common], None, None)  # killed before it wrote run.json
    (sweep / ".submitit" / "123").mkdir(parents=True)  # launcher files are not jobs

    rows = sweep_module.summarize(sweep, OmegaConf.create({"optimized_metric": "val/acc_top1"}))
    assert [r.job for r in rows] == ["0", "1", "2", "10"]
    table = summary_rows(sweep)
    assert list(table[0]) == [
        "job",
        "status",
        "objective",
        "optimized_metric",
        "best",
        "optim.lr",
        "test/acc_top1",
        "test/loss",
        "duration_s",
        "run_dir",
        "error",
        "overrides",
    ]
    assert [(r["job"], r["status"], r["objective"], r["best"], r["optim.lr"]) for r in table] == [
        ("0", "completed", "0.75", "", "0.1"),  # the last logged value (what the job returned)
        ("1", "failed", "", "", "0.01"),
        ("2", "completed", "0.875", "yes", "0.05"),  # recorded objective; max: the task's monitor mode
        ("10", "no record", "", "", "0.001"),
    ]
    assert table[1]["error"] == "DataError: sample 17 of the train split cannot be decoded"
    assert table[0]["test/acc_top1"] == "0.7" and table[0]["duration_s"] == "12.5"
    assert table[0]["overrides"] == "optim.lr=0.1 trainer.max_epochs=2 data.batch_size=16"
    assert (sweep / "summary.png").read_bytes()[:8] == PNG_MAGIC
    out = capsys.readouterr().out
    assert "Sweep summary: 4 job(s)" in out and "0.875 (best)" in out and "DataError: sample 17" in out

    # The command line rebuilds it, e.g. after a SLURM sweep's jobs finished.
    (sweep / "summary.csv").unlink()
    assert sweep_module.main([str(sweep)]) == 0 and (sweep / "summary.csv").is_file()
    assert sweep_module.main([str(tmp_path / "nothing")]) == 2


def printed_summary_paths(out: str) -> list[str]:
    (line,) = [line for line in out.splitlines() if line.startswith("Summary: ")]
    return line[len("Summary: ") :].split(", ")


def test_grid_sweep_without_optimized_metric_is_judged_by_the_task_monitor(tmp_path, capsys):
    """`python train.py -m optim.lr=0.1,0.01,0.001` sets no optimized_metric: the objective is the
    task's monitored metric (its last logged value), the best follows task.monitor_mode, the plot is
    drawn against the learning rates (log axis), and only written files are printed."""
    sweep = tmp_path / "sweep"
    for number, (lr, accs) in enumerate([("0.1", [0.5, 0.625]), ("0.01", [0.25, 0.875]), ("0.001", [0.25])]):
        make_job(
            sweep,
            number,
            [f"optim.lr={lr}"],
            {"status": "completed", "metrics": {"test/acc_top1": 0.5}},
            accs,
            optimized_metric=None,
        )
    rows = sweep_module.summarize(sweep, OmegaConf.create({"optimized_metric": None}))
    assert [(r["objective"], r["optimized_metric"], r["best"]) for r in summary_rows(sweep)] == [
        ("0.625", "val/acc_top1", ""),
        ("0.875", "val/acc_top1", "yes"),
        ("0.25", "val/acc_top1", ""),
    ]
    printed = printed_summary_paths(capsys.readouterr().out)
    assert printed == [str(sweep / "summary.csv"), str(sweep / "summary.png")]
    assert (sweep / "summary.png").read_bytes()[:8] == PNG_MAGIC

    from litzoo.platform.sweep_plot import XAxis, x_axis

    assert x_axis(rows, ["optim.lr"], history=False) == XAxis("optim.lr", [0.1, 0.01, 0.001], log=True)
    assert x_axis(rows, ["optim.lr"], history=True) == XAxis("trial (job) number", [0.0, 1.0, 2.0])


def test_summary_plot_of_names_and_of_several_keys_labels_each_job(tmp_path):
    sweep = tmp_path / "sweep"
    grid = [("resnet18", "0.1"), ("resnet18", "0.05"), ("resnet50", "0.1"), ("resnet50", "0.05")]
    for number, (model, lr) in enumerate(grid):
        make_job(sweep, number, [f"model={model}", f"optim.lr={lr}"], {"status": "completed"}, [0.5])
    rows = sweep_module.summarize(sweep, show=False)
    from litzoo.platform.sweep_plot import XAxis, x_axis

    assert x_axis(rows, ["model", "optim.lr"], history=False) == XAxis(
        "model, optim.lr", [0.0, 1.0, 2.0, 3.0], [f"model={m}\noptim.lr={lr}" for m, lr in grid]
    )
    assert x_axis(rows[::2], ["model"], history=False) == XAxis("model", [0.0, 1.0], ["resnet18", "resnet50"])
    assert (sweep / "summary.png").read_bytes()[:8] == PNG_MAGIC


def test_summary_prints_no_plot_it_did_not_draw(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["optim.lr=0.1"], {"status": "completed"}, [0.5], optimized_metric=None)
    (sweep / "0" / ".hydra" / "config.yaml").write_text("task: {name: classification}\n")  # no metric at all
    (sweep / "summary.png").write_bytes(PNG_MAGIC)  # an earlier summary's plot is not this one's
    sweep_module.summarize(sweep)
    assert printed_summary_paths(capsys.readouterr().out) == [str(sweep / "summary.csv")]
    assert not (sweep / "summary.png").exists()


def test_summary_of_a_search_with_pruned_trials_and_of_a_multi_objective_search(tmp_path):
    sweep = tmp_path / "search"
    make_job(sweep, 0, ["optim.lr=0.1"], {"status": "completed"}, [0.5, 0.75])
    make_job(sweep, 1, ["optim.lr=0.2"], {"status": "completed"}, [0.875])  # stopped early, with a high value
    with open(sweep / "trials.csv", "w") as f:
        f.write(
            f"number,state,value,job,run_dir\n0,COMPLETE,0.75,0,{sweep / '0'}\n1,PRUNED,0.875,1,{sweep / '1'}\n"
        )
    OmegaConf.save(OmegaConf.create({"best_trial": 0}), sweep / "optimization_results.yaml")
    config = OmegaConf.create(
        {"optimized_metric": "val/acc_top1", "hydra": {"sweeper": {"direction": "maximize"}}}
    )
    sweep_module.summarize(sweep, config, show=False)
    assert [(r["status"], r["objective"], r["best"]) for r in summary_rows(sweep)] == [
        ("completed", "0.75", "yes"),
        ("pruned", "0.875", ""),
    ]

    multi = tmp_path / "multi"
    names = ["val/acc_top1", "val/loss"]
    make_job(multi, 0, ["optim.lr=0.1"], {"status": "completed", "objective": [0.75, 0.5]}, [0.75], names)
    make_job(multi, 1, ["optim.lr=0.2"], {"status": "completed", "objective": [0.625, 0.25]}, [0.625], names)
    sweep_module.summarize(
        multi, OmegaConf.create({"hydra": {"sweeper": {"direction": ["maximize", "minimize"]}}}), show=False
    )
    table = summary_rows(multi)
    assert list(table[0])[:7] == [
        "job",
        "status",
        "objective",
        "optimized_metric",
        "best",
        "val/acc_top1",
        "val/loss",
    ]
    assert [(r["objective"], r["val/acc_top1"], r["val/loss"], r["best"]) for r in table] == [
        ("0.75", "0.75", "0.5", ""),
        ("0.625", "0.625", "0.25", ""),
    ]


def test_sweep_summary_callback_never_fails_the_sweep(tmp_path, caplog):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "empty")}}})
    with caplog.at_level(logging.WARNING, logger="litzoo"):
        sweep_module.SweepSummary().on_multirun_end(config)
    assert "No job directories found" in caplog.text


# --- launchers ---------------------------------------------------------------------------------


def test_slurm_launcher_asks_for_one_task_per_gpu_and_a_requeue_signal(tmp_path, monkeypatch):
    """The submission that `python train.py -m hydra/launcher=slurm ...` makes, produced by the
    submitit launcher itself; only the final `sbatch` call is intercepted."""
    from hydra._internal.callbacks import Callbacks
    from hydra.types import HydraContext
    from hydra.utils import instantiate
    from submitit.slurm import slurm

    sweep = tmp_path / "sweep"
    cfg = compose_with_hydra(
        [
            "hydra/launcher=slurm",
            "trainer=ddp",
            "trainer.devices=4",
            "trainer.num_nodes=2",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.timeout_min=600",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert (params["nodes"], params["gpus_per_node"], params["tasks_per_node"]) == (2, 4, 4)
    assert (params["signal_delay_s"], params["max_num_timeout"]) == (120, 3)

    submitted: list[str] = []

    class Submitted(Exception):
        pass

    def capture(executor, command):
        submitted.append(executor._make_submission_file_text(command, "uid"))
        raise Submitted

    monkeypatch.setattr(slurm.SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # "srun is available"
    monkeypatch.setattr(slurm.SlurmExecutor, "_submit_command", capture)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(
        hydra_context=HydraContext(config_loader=None, callbacks=Callbacks()),
        task_function=lambda c: None,
        config=cfg,
    )
    with pytest.raises(Submitted):
        launcher.launch([["optim.lr=0.1"], ["optim.lr=0.2"]], initial_job_idx=0)
    script = submitted[0].splitlines()
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=600",
        "#SBATCH --signal=USR2@120",
        "#SBATCH --array=0-1%2",
        "#SBATCH --job-name=classification-resnet18",
        f"#SBATCH --output={sweep}/.submitit/%A_%a/%A_%a_0_log.out",
    ):
        assert line in script, "\n".join(script)
    assert script[-1].startswith("srun ") and script[-1].endswith(
        f"-m submitit.core._submit {sweep}/.submitit/%j"
    )

    # On preemption/time-out submitit requeues `launcher.checkpoint(*args)`: the same job number and
    # overrides, hence the same job directory <sweep>/<num>, where litzoo resumes the unfinished run.
    args = (["optim.lr=0.2"], "hydra.sweep.dir", 1, "job_id_for_1", {})
    requeued = launcher.checkpoint(*args)
    assert requeued.function is launcher and requeued.args == args
    assert OmegaConf.to_container(cfg.hydra.sweep)["subdir"] == "${hydra.job.num}"


def test_rank_log_files_for_tasks_started_without_our_command_line(tmp_path, monkeypatch):
    from litzoo.platform.secrets import REDACTED

    run_dir = tmp_path / "job"
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(
        OmegaConf.create({"logger": {"wandb": {"api_key": "abc123secret"}}}),
        run_dir / ".hydra" / "config.yaml",
    )
    config = OmegaConf.create({"hydra": {"job": {"name": "train"}, "runtime": {"output_dir": str(run_dir)}}})
    root = logging.getLogger()
    handler = logging.FileHandler(run_dir / "train.log")
    root.addHandler(handler)
    try:
        monkeypatch.setenv("SLURM_PROCID", "0")  # rank 0: nothing changes
        sweep_module.RankLogFiles().on_job_start(config)
        assert handler in root.handlers
        monkeypatch.setenv("SLURM_PROCID", "3")
        sweep_module.RankLogFiles().on_job_start(config)
        moved = [
            h
            for h in root.handlers
            if isinstance(h, logging.FileHandler) and Path(h.baseFilename).parent == run_dir
        ]
        assert [Path(h.baseFilename).name for h in moved] == ["train_rank3.log"]
        logging.getLogger("litzoo").warning("hello from rank 3")
        moved[0].flush()
        assert "hello from rank 3" in (run_dir / "train_rank3.log").read_text()
        assert "hello from rank 3" not in (run_dir / "train.log").read_text()
        redacted = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
        assert redacted.logger.wandb.api_key == REDACTED
    finally:
        for h in list(root.handlers):
            if isinstance(h, logging.FileHandler) and Path(h.baseFilename).parent == run_dir:
                root.removeHandler(h)
                h.close()


@pytest.mark.slow
def test_parallel_jobs_with_the_joblib_launcher(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        [
            "-m",
            "hydra/launcher=parallel",
            "hydra.launcher.n_jobs=2",
            *TINY,
            "optim.lr=0.1,0.02",
            f"hydra.sweep.dir={sweep}",
        ],
        env=ENV,
        cwd=tmp_path,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = summary_rows(sweep)
    assert [(r["job"], r["status"], r["optim.lr"]) for r in rows] == [
        ("0", "completed", "0.1"),
        ("1", "completed", "0.02"),
    ]
    # Two processes ran the jobs (not this one, one after the other).
    pids = {read_json(sweep / r["job"] / "run.json")["pid"] for r in rows}
    assert len(pids) == 2


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_job_end_to_end(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        ["-m", "hydra/launcher=submitit_local", *TINY, "optim.lr=0.05", f"hydra.sweep.dir={sweep}"],
        env=ENV,
        cwd=tmp_path,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = read_json(sweep / "0" / "run.json")
    assert record["status"] == "completed" and "optim.lr=0.05" in record["overrides"]
    assert list((sweep / ".submitit").glob("*/*_0_log.out"))
    assert summary_rows(sweep)[0]["status"] == "completed"


@pytest.mark.slow
def test_optuna_search_with_ddp_trials(tmp_path):
    """Each trial is a 2-process DDP job; the child process of a trial composes the search config
    (hydra.mode: MULTIRUN) but must run its parent's trial, not a search of its own."""
    sweep = tmp_path / "sweep"
    result = run_cli(
        [
            "hparams_search=optuna_classification",
            "hydra.sweeper.n_trials=2",
            *TINY,
            "trainer=ddp_cpu",
            f"hydra.sweep.dir={sweep}",
        ],
        env=ENV,
        cwd=tmp_path,
        timeout=500,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    rows = summary_rows(sweep)
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert all("GLOBAL_RANK: 1" in (sweep / r["job"] / "train_ddp_process_1.log").read_text() for r in rows)
    assert (
        max(float(r["objective"]) for r in rows)
        == OmegaConf.load(sweep / "optimization_results.yaml").best_value
    )
