"""litzoo's Optuna sweeper for Hydra: `-m hparams_search=...` on current Optuna (ask-and-tell).

It replaces hydra-optuna-sweeper, whose last release pins optuna < 3 (and through it
SQLAlchemy < 2 for every environment it is installed in). It reads the same config keys
(`hydra/sweeper: optuna`, `sampler`, `direction`, `n_trials`, `n_jobs`, `params` with
`interval(...)`, `range(...)`, `choice(...)`, `tag(log, ...)`, `storage`, `study_name`), and
adds pruning (`pruner`), Optuna's journal file storage and a trial table in the sweep directory.

Hydra imports every public module of this package whenever it starts (also for `--help`),
so those modules import only Hydra and OmegaConf; Optuna is imported when a search starts.
"""
