"""User-facing errors.

Anything raised as a `LitzooError` is a problem with the user's input (config,
data, checkpoint, environment) rather than a bug. The platform prints its
message as one paragraph, keeps the full traceback in the run's `train.log`
and exits non-zero. Messages should name the problem *and* the fix.
"""

from __future__ import annotations


class LitzooError(Exception):
    """Base class of errors whose message is shown to the user without a traceback."""

    exit_code = 1


class ConfigError(LitzooError):
    """The composed configuration is invalid (unknown name, impossible value, wrong pairing)."""

    exit_code = 2


class DataError(LitzooError):
    """A dataset is missing, laid out wrongly or contains a sample that cannot be used."""

    exit_code = 3


class CheckpointError(LitzooError):
    """A checkpoint is missing, corrupt or refused for safety."""

    exit_code = 4


class DependencyError(LitzooError):
    """An optional package or a local pretrained file is missing."""

    exit_code = 5
