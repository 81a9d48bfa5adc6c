"""What a benchmark measures: its own settings, and the composed training config (torch-free).

The command line mixes two kinds of ``key=value``: the benchmark's own keys
(:data:`SETTING_KEYS`: ``batch_size``, ``backends``, ``warmup``, ``repeats``, ``csv``, ...)
and Hydra overrides of the training config (``model=...``, ``task=...``, ``data.image_size=...``,
``trainer=gpu``). The training config is composed as ``train.py`` composes it and validated by
the same checks, so a wrong pairing or a missing file fails within a second, before torch.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from omegaconf import DictConfig, open_dict

from litzoo.errors import ConfigError

BACKENDS = ("eager", "compile", "onnx")
DEFAULT_CSV = "outputs/benchmark/inference.csv"


@dataclass(frozen=True)
class Settings:
    """The benchmark's own keys (everything else on the command line configures the model)."""

    batch_size: int = 8
    backends: tuple[str, ...] = BACKENDS
    warmup: int = 5
    repeats: int = 20
    csv: str = DEFAULT_CSV
    isolate: bool = True  # each backend in a fresh process (its own peak memory)
    compile_mode: str = "default"
    seed: int = 42
    overrides: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        return cls(**{**data, "backends": tuple(data["backends"]), "overrides": tuple(data["overrides"])})


SETTING_KEYS = ("batch_size", "backends", "warmup", "repeats", "csv", "isolate", "compile_mode")


def split_arguments(tokens: Sequence[str]) -> Settings:
    """The benchmark's settings from the command line; the other tokens are the config overrides."""
    values: dict[str, Any] = {}
    overrides: list[str] = []
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or key not in SETTING_KEYS:
            overrides.append(token)
            continue
        values[key] = _parse(key, value)
    seed = next((o.partition("=")[2] for o in overrides if o.startswith("seed=")), "42")
    try:
        values["seed"] = int(seed)
    except ValueError:
        raise ConfigError(f"seed={seed}: give an integer seed.") from None
    return Settings(**values, overrides=tuple(overrides))


def _parse(key: str, value: str) -> Any:
    if key in ("batch_size", "warmup", "repeats"):
        try:
            number = int(value)
        except ValueError:
            number = -1
        smallest = 0 if key == "warmup" else 1
        if number < smallest:
            raise ConfigError(f"{key}={value}: give an integer >= {smallest}.")
        return number
    if key == "backends":
        names = tuple(n.strip() for n in value.strip("[]").split(",") if n.strip())
        unknown = [n for n in names if n not in BACKENDS]
        if unknown or not names:
            raise ConfigError(
                f"backends={value}: {', '.join(unknown) or 'no backend'} is not a backend; choose from "
                f"{', '.join(BACKENDS)} (e.g. backends=eager,onnx)."
            )
        return names
    if key == "isolate":
        if value.lower() not in ("true", "false"):
            raise ConfigError(f"isolate={value}: give true or false.")
        return value.lower() == "true"
    if key == "compile_mode":
        modes = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
        if value not in modes:
            raise ConfigError(f"compile_mode={value}: choose one of {', '.join(modes)}.")
    return value


def compose(overrides: Sequence[str]) -> DictConfig:
    """The config ``python train.py <overrides>`` would run, validated by the same checks."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from litzoo.platform import trust
    from litzoo.platform.configs import CONFIG_DIR, register_resolvers
    from litzoo.platform.validate import validate

    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = hydra_compose("train", overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(
            f"{str(error).splitlines()[0]} (overrides: {' '.join(overrides) or 'none'})."
        ) from None
    finally:
        GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = tempfile.gettempdir()  # nothing is written there
        cfg.hydra.job.num = 0
        cfg.hydra.job.id = "benchmark"
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    trust.SESSION = trust.Trust.from_overrides(list(overrides))
    validate(cfg, [CONFIG_DIR], trust.SESSION)
    return cfg


def device_of(cfg: DictConfig) -> str:
    """The device the trainer config asks for: ``cuda`` for trainer=gpu, else ``cpu``."""
    accelerator = str(cfg.trainer.get("accelerator", "cpu"))
    if accelerator in ("gpu", "cuda"):
        return "cuda"
    if accelerator == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if accelerator != "cpu":
        raise ConfigError(
            f"trainer.accelerator={accelerator}: the benchmark measures on cpu or gpu (trainer=gpu)."
        )
    return "cpu"
