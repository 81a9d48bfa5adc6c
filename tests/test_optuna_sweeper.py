"""litzoo's Optuna sweeper (hydra_plugins.litzoo_optuna_sweeper), through a torch-free Hydra app.

tests/scripts/search_app.py stands in for train.py (each search takes about a second): a
lightning-hydra-template style config run on current Optuna, the search-space grammar,
multi-objective searches, pruning in this process and in other processes, journal storage
shared by searches running at the same time, continuing a study by name, failures.
tests/test_sweeps.py runs searches through train.py itself.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hydra_plugins.litzoo_optuna_sweeper import _storage, _trial
from hydra_plugins.litzoo_optuna_sweeper._space import SearchSpace, to_overrides
from litzoo.errors import ConfigError

APP = Path(__file__).parent / "scripts" / "search_app.py"
MEDIAN_PRUNER = (
    "+hydra.sweeper.pruner={_target_: optuna.pruners.MedianPruner, n_startup_trials: 2, n_warmup_steps: 1}"
)


def run_app(
    sweep: Path, *args: str, background: bool = False
) -> subprocess.CompletedProcess | subprocess.Popen:
    """`python search_app.py -m <args>` with its sweep directory at `sweep`."""
    env = {**os.environ, "SEARCH_APP_SWEEP_DIR": str(sweep), "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    command = [sys.executable, str(APP), "-m", *args]
    if background:
        return subprocess.Popen(
            command, env=env, cwd=sweep.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(command, env=env, cwd=sweep.parent, capture_output=True, text=True, timeout=180)


def trials(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def quadratic(row: dict[str, str]) -> float:
    return (float(row["x"]) - 2) ** 2 + float(row["y"])


def ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


# --- the search itself -------------------------------------------------------------------------


def test_a_lightning_hydra_template_search_runs_on_current_optuna(tmp_path):
    """search_app.yaml is written for hydra-optuna-sweeper (its `_target_`, TPE keys, `params`),
    which is not installed: litzoo's sweeper runs it, ask-and-tell, in batches of n_jobs."""
    assert int(optuna.__version__.split(".")[0]) >= 4
    with pytest.raises(ImportError):
        import hydra_plugins.hydra_optuna_sweeper._impl  # noqa: F401 (the real package is absent)
    sweep = tmp_path / "sweep"
    result = run_app(sweep, "hydra.sweeper.n_trials=5", "hydra.sweeper.n_jobs=2")
    ok(result)
    rows = trials(sweep)
    assert [(r["number"], r["state"], r["job"], r["run_dir"]) for r in rows] == [
        (str(i), "COMPLETE", str(i), str(sweep / str(i))) for i in range(5)
    ]
    for row in rows:
        assert -5.0 <= float(row["x"]) <= 5.0 and row["y"] in ("0", "1")
        assert float(row["value"]) == quadratic(row)
        # The job got exactly the trial's values; the trial hand-over is a Hydra override, not the job's.
        job = OmegaConf.load(sweep / row["job"] / ".hydra" / "hydra.yaml").hydra
        assert list(job.overrides.task) == [f"x={row['x']}", f"y={row['y']}"]
        assert json.loads(job.job.env_set[_trial.ENV_TRIAL])["number"] == int(row["number"])
    assert result.stdout.count("Launching 2 jobs") == 2 and result.stdout.count("Launching 1 jobs") == 1
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    best = min(rows, key=lambda r: float(r["value"]))
    assert (results.best_trial, results.best_value) == (int(best["number"]), float(best["value"]))
    assert results.best_params == {"x": float(best["x"]), "y": int(best["y"])}
    assert results.best_run_dir == best["run_dir"] and results.n_complete == 5
    assert (sweep / "multirun.yaml").is_file()

    again = tmp_path / "again"  # the sampler's seed fixes the sequence of trials
    ok(run_app(again, "hydra.sweeper.n_trials=5", "hydra.sweeper.n_jobs=2"))
    assert [(r["x"], r["y"]) for r in trials(again)] == [(r["x"], r["y"]) for r in rows]


def test_search_space_grammar_is_hydra_optuna_sweepers():
    space = SearchSpace.parse(
        {
            "a": "interval(0, 1)",
            "b": "tag(log, interval(1e-4, 1e-1))",
            "c": "range(1, 9, 2)",
            "d": "range(0.0, 1.0, 0.25)",
            "e": "choice(adam, sgd)",
            "f": "tag(log, int(interval(1, 64)))",
            "g": "0.9",
            "h": "shuffle(range(3))",
            "i": "choice(true, 3, x)",
            "j": "interval(0.0, 5)",
        },
        arguments=["a=interval(0.5, 2.0)"],  # the command line wins over the config
    )
    shuffled = space.distributions.pop("h")  # shuffle(range(3)): categorical, in a random order
    assert isinstance(shuffled, CategoricalDistribution) and sorted(shuffled.choices) == [0, 1, 2]
    assert space.distributions == {
        "a": FloatDistribution(0.5, 2.0),
        "b": FloatDistribution(1e-4, 1e-1, log=True),
        "c": IntDistribution(1, 9, step=2),
        "d": FloatDistribution(0.0, 1.0, step=0.25),
        "e": CategoricalDistribution(["adam", "sgd"]),
        "f": IntDistribution(1, 64, log=True),
        "i": CategoricalDistribution([True, 3, "x"]),
        "j": FloatDistribution(0.0, 5.0),
    }
    assert space.fixed == {"g": "0.9"}
    assert SearchSpace.parse({"c": "range(1, 9, 2)", "e": "choice(adam, sgd)"}).grid() == {
        "c": [1, 3, 5, 7, 9],
        "e": ["adam", "sgd"],
    }
    with pytest.raises(ConfigError, match="b is continuous"):
        space.grid()
    # Hydra 1.1's search_space form, for configs that still use it.
    legacy = SearchSpace.parse(
        None,
        search_space={
            "x": {"type": "float", "low": -1, "high": 1, "step": 0.5},
            "n": {"type": "int", "low": 1, "high": 4, "log": True},
        },
    )
    assert legacy.distributions == {
        "x": FloatDistribution(-1.0, 1.0, step=0.5),
        "n": IntDistribution(1, 4, log=True),
    }
    assert to_overrides({"lr": 0.001234567891, "flag": True, "none": None, "name": "sgd", "n": 3}) == [
        "lr=0.001234567891",
        "flag=true",
        "none=null",
        "name=sgd",
        "n=3",
    ]


def test_grid_sampler_runs_every_point_once(tmp_path):
    from hydra.core.config_store import ConfigStore

    import hydra_plugins.litzoo_optuna_sweeper.config  # noqa: F401 (stores the configs, as Hydra's plugin scan does)

    grid = ConfigStore.instance().load("hydra/sweeper/sampler/grid.yaml").node
    assert OmegaConf.to_container(grid) == {"_target_": "optuna.samplers.GridSampler", "_partial_": True}
    # search_app.yaml names its sampler itself (as lightning-hydra-template does), which wins over
    # hydra/sweeper/sampler=grid: turn it into the grid sampler key by key.
    to_grid = [
        "~hydra.sweeper.sampler.seed",
        "~hydra.sweeper.sampler.n_startup_trials",
        "hydra.sweeper.sampler._target_=optuna.samplers.GridSampler",
        "+hydra.sweeper.sampler._partial_=true",
    ]
    sweep = tmp_path / "sweep"
    ok(run_app(sweep, *to_grid, "x=choice(0.0, 1.0, 2.0)", "y=range(0, 1)", "hydra.sweeper.n_trials=50"))
    rows = trials(sweep)
    assert sorted((float(r["x"]), int(r["y"])) for r in rows) == [
        (x, y) for x in (0.0, 1.0, 2.0) for y in (0, 1)
    ]
    assert {r["state"] for r in rows} == {"COMPLETE"}


def test_multi_objective_search_writes_its_pareto_front(tmp_path):
    sweep = tmp_path / "sweep"
    ok(
        run_app(
            sweep, "objective=pair", "hydra.sweeper.direction=[minimize,maximize]", "hydra.sweeper.n_trials=8"
        )
    )
    rows = trials(sweep)
    values = {int(r["number"]): (float(r["values_0"]), float(r["values_1"])) for r in rows}
    assert all(values[int(r["number"])] == (quadratic(r), float(r["x"])) for r in rows)

    def dominated(a: tuple[float, float]) -> bool:
        return any(b[0] <= a[0] and b[1] >= a[1] and b != a for b in values.values())

    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert sorted(s.number for s in results.solutions) == sorted(
        n for n, v in values.items() if not dominated(v)
    )
    assert "best_value" not in results and results.directions == ["minimize", "maximize"]


# --- pruning -----------------------------------------------------------------------------------


def test_pruner_stops_trials_worse_than_the_median_in_this_process(tmp_path):
    """objective=number: each trial is worse than all before it, so once two trials have
    completed, every later one is pruned at the first step after the warm-up (step 1)."""
    sweep = tmp_path / "sweep"
    ok(run_app(sweep, "objective=number", "hydra.sweeper.n_trials=4", MEDIAN_PRUNER))
    rows = trials(sweep)
    assert [(r["state"], r["pruned_at_step"]) for r in rows] == [
        ("COMPLETE", ""),
        ("COMPLETE", ""),
        ("PRUNED", "1"),
        ("PRUNED", "1"),
    ]
    assert [(sweep / str(i) / "epochs.txt").read_text() for i in range(4)] == ["4", "4", "2", "2"]
    assert [(sweep / str(i) / "reached.txt").read_text() for i in range(4)] == ["live"] * 4
    assert OmegaConf.load(sweep / "optimization_results.yaml").n_pruned == 2


def test_jobs_in_other_processes_are_pruned_through_a_journal_file(tmp_path):
    """With the joblib launcher the trials run in worker processes: they reach the study through
    the journal file, and prune with the search's pruner (not Optuna's default one)."""
    sweep, journal = tmp_path / "sweep", tmp_path / "shared" / "optuna.log"
    ok(
        run_app(
            sweep,
            "objective=number",
            "hydra.sweeper.n_trials=4",
            "hydra.sweeper.n_jobs=2",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            f"hydra.sweeper.storage={journal}",
            MEDIAN_PRUNER,
        )
    )
    rows = trials(sweep)
    assert [(r["state"], r["pruned_at_step"]) for r in rows] == [
        ("COMPLETE", ""),
        ("COMPLETE", ""),
        ("PRUNED", "1"),
        ("PRUNED", "1"),
    ]
    assert [(sweep / str(i) / "reached.txt").read_text() for i in range(4)] == ["storage"] * 4


def test_in_memory_study_cannot_reach_jobs_in_other_processes(caplog):
    environ = {_trial.ENV_TRIAL: json.dumps({"study": "elsewhere", "number": 0, "id": 0, "storage": None})}
    with caplog.at_level(logging.WARNING, logger="litzoo"):
        assert _trial.current_reporter(environ) is None
    assert "kept in the memory of the process that runs the search" in caplog.text
    assert _trial.current_reporter({}) is None  # not in a search: nothing to report to


# --- storage: journal files shared by several searches, continuing a study ----------------------


def test_searches_running_at_the_same_time_share_one_study_through_a_journal_file(tmp_path):
    """Two searches (as on two machines of a cluster) append to one journal file at the same time;
    a third, later one continues the study by name. optuna-dashboard reads the same file."""
    journal = tmp_path / "shared" / "optuna.log"
    common = [f"hydra.sweeper.storage=journal://{journal}", "hydra.sweeper.study_name=shared"]
    first = run_app(tmp_path / "a", "hydra.sweeper.n_trials=4", *common, background=True)
    second = run_app(tmp_path / "b", "hydra.sweeper.n_trials=3", *common, background=True)
    for process in (first, second):
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, out[-3000:] + err[-3000:]
    ok(run_app(tmp_path / "c", "hydra.sweeper.n_trials=1", *common))

    study = optuna.load_study(study_name="shared", storage=_storage.open_storage(str(journal)))
    assert [t.number for t in study.trials] == list(range(8))
    assert {t.state.name for t in study.trials} == {"COMPLETE"}
    ran_in = sorted(Path(t.user_attrs["litzoo_run_dir"]).parent.name for t in study.trials)
    assert ran_in == ["a"] * 4 + ["b"] * 3 + ["c"]
    later = trials(tmp_path / "c")  # the continuing search's table holds the whole study
    assert len(later) == 8 and later[-1]["run_dir"] == str(tmp_path / "c" / "0")
    results = OmegaConf.load(tmp_path / "c" / "optimization_results.yaml")
    assert results.best_value == min(t.value for t in study.trials)
    assert results.dashboard == f"optuna-dashboard {journal}"

    # What `optuna-dashboard <journal>` serves: its own storage lookup and its API.
    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    import io
    from wsgiref.util import setup_testing_defaults

    from optuna_dashboard._storage_url import get_storage

    app = optuna_dashboard.wsgi(get_storage(str(journal)))

    def get(path: str) -> dict:
        request = {"PATH_INFO": path, "wsgi.errors": io.StringIO()}
        setup_testing_defaults(request)
        status: list[str] = []
        body = b"".join(app(request, lambda s, headers, exc_info=None: status.append(s)))
        assert status == ["200 OK"], request["wsgi.errors"].getvalue()
        return json.loads(body)

    (summary,) = get("/api/studies")["study_summaries"]
    assert summary["study_name"] == "shared"
    shown = get(f"/api/studies/{summary['study_id']}")
    assert [t["number"] for t in shown["trials"]] == list(range(8))
    assert shown["best_trials"][0]["values"] == [results.best_value]


def test_continuing_a_study_the_other_way_round_is_refused(tmp_path):
    storage = f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}"
    ok(run_app(tmp_path / "a", "hydra.sweeper.n_trials=1", storage))
    result = run_app(tmp_path / "b", "hydra.sweeper.n_trials=1", storage, "hydra.sweeper.direction=maximize")
    assert result.returncode != 0
    assert (
        "Study search_app in sqlite:///" in result.stderr
        and "optimizes ['minimize'], but hydra.sweeper.direction is ['maximize']" in result.stderr
    )


def test_storage_specs():
    assert _storage.normalize(None) is None and _storage.normalize(" ") is None
    assert _storage.normalize("optuna.log") == f"journal://{Path('optuna.log').resolve()}"
    assert _storage.normalize("journal:///shared/s.log") == "journal:///shared/s.log"
    assert _storage.normalize("sqlite:///rel/o.db") == f"sqlite:///{Path('rel/o.db').resolve()}"
    assert _storage.normalize("sqlite:////abs/o.db") == "sqlite:////abs/o.db"
    assert _storage.dashboard_command("journal:///shared/s.log") == "optuna-dashboard /shared/s.log"
    assert _storage.dashboard_command(None) is None
    assert _storage.describe("postgresql://user:secret@db/optuna") == "postgresql://<redacted>@db/optuna"


# --- failures ----------------------------------------------------------------------------------


def test_failed_trials_are_told_as_failed_and_the_search_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    ok(
        run_app(
            sweep, "objective=nan_when_y1", "hydra.sweeper.n_trials=6", "hydra.sweeper.max_failure_rate=1.0"
        )
    )
    rows = trials(sweep)
    assert len(rows) == 6 and {r["y"] for r in rows} == {"0", "1"}
    assert all(r["state"] == ("FAIL" if r["y"] == "1" else "COMPLETE") for r in rows)


def test_too_many_failed_trials_stop_the_search_with_the_fix(tmp_path):
    result = run_app(
        tmp_path / "sweep",
        "objective=nan_when_y1",
        "y=choice(1)",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.max_failure_rate=0.5",
    )
    assert result.returncode != 0
    assert (
        "1 of 1 trials of the last batch failed, more than hydra.sweeper.max_failure_rate=0.5"
        in result.stderr
    )
    assert "raise hydra.sweeper.max_failure_rate" in result.stderr
