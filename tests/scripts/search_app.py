"""A torch-free Hydra app for the Optuna sweeper's tests, a stand-in for `train.py`.

Each job "trains" for `epochs` epochs, reporting one intermediate value per epoch to its
trial (as `litzoo.platform.pruning.OptunaPruning` does), stops early when the trial is
pruned, writes the epochs it ran to `epochs.txt` and how it reached the study to `reached.txt`
(`live`: the search's own study object, in this process; `storage`: loaded from the storage,
in another process) in its job directory, and returns:

- `objective=quadratic`: (x - 2)^2 + y;
- `objective=number`: the trial's number (later trials are worse: a pruner stops them for sure);
- `objective=pair`: [(x - 2)^2 + y, x], for a two-objective search;
- `objective=nan_when_y1`: quadratic, but NaN (a failed trial) when y == 1.

    python search_app.py -m 'x=interval(-5, 5)' 'y=choice(0, 1)' hydra.sweeper.n_trials=4
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from hydra_plugins.litzoo_optuna_sweeper import _trial
from hydra_plugins.litzoo_optuna_sweeper._trial import ENV_TRIAL, current_reporter


@hydra.main(version_base="1.3", config_path=".", config_name="search_app")
def main(cfg: DictConfig) -> float | list[float]:
    number = json.loads(os.environ[ENV_TRIAL])["number"] if os.environ.get(ENV_TRIAL) else -1
    quadratic = (float(cfg.x) - 2) ** 2 + float(cfg.y)
    value = float(number) if cfg.objective == "number" else quadratic
    reporter = current_reporter()
    ran = 0
    for epoch in range(int(cfg.epochs)):
        ran += 1
        if reporter is not None and reporter.report(value + (cfg.epochs - epoch), step=epoch):
            break
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    job_dir.joinpath("epochs.txt").write_text(str(ran))
    if reporter is not None:
        live = reporter.trial.study is _trial._LIVE_STUDIES.get(reporter.trial.study.study_name)
        job_dir.joinpath("reached.txt").write_text("live" if live else "storage")
    if cfg.objective == "pair":
        return [quadratic, float(cfg.x)]
    if cfg.objective == "nan_when_y1" and int(cfg.y) == 1:
        return math.nan
    return value


if __name__ == "__main__":
    main()
