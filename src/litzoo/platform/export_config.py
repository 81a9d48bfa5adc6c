"""Export a run's config as one experiment file that another user runs on their machine.

    python -m litzoo.platform.export_config <run_dir> [-o FILE] [--name NAME]

reads the run directory (`.hydra/hydra.yaml` for the group choices, `.hydra/config.yaml`
for the composed config, `run.json` for the seed) and writes a `# @package _global_`
experiment file:

- a defaults list with the run's group choices (`override /model: resnet18`, ...);
  a group option that is not part of litzoo's own `conf/` (e.g. from a team's
  `--config-dir`) is inlined instead (`override /<group>: null` plus its full values),
  so the file needs nothing but litzoo;
- the run's values that differ from those group defaults (the overrides it was started
  with, an experiment's or a search trial's values), plus its seed;
- machine-specific values turned into keys the user sets: inputs read from this machine
  (`data.root`, `model.pretrained` as a file, `ckpt_path`, any other absolute path). Where
  the option's own default is required (`???`, e.g. `data.root` of an on-disk dataset) the
  file says `???` too, and the run stops naming the key until it is given. Elsewhere the
  original path stays (a config file cannot make a key with a default required again:
  merging `???` keeps the default, so `model.pretrained: ???` would silently train from
  scratch); it fails with a clear message on a machine without that file until overridden.
  `paths.*` fall back to the recipient's defaults. The header lists all of them with the
  original values, and the command to run.

The recipient copies the file into `<dir>/experiment/` and runs
`python train.py --config-dir <dir> experiment=<name> data.root=...`; together with the
run's `reproduce` line this is how results travel between people. Trust settings (`trust`,
`trust_config`) and `resume` are not exported: trust is the recipient's decision.
Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from litzoo.errors import ConfigError, LitzooError
from litzoo.platform.run_dir import RunDir

# Inputs read from the original machine (the recipient sets their own).
MACHINE_INPUT_KEYS = ("data.root", "ckpt_path", "model.pretrained")
# Not part of what was trained: never exported.
EXCLUDED_KEYS = ("resume", "trust", "trust_config")
# Groups that are not a run's recipe: a search or debug setup, Hydra's own, machine paths.
SKIPPED_GROUPS = ("experiment", "hparams_search", "debug", "hydra", "paths")
MISSING = "???"


@dataclass
class Export:
    """An exported experiment: its YAML text and what the recipient must set."""

    name: str
    text: str
    machine_specific: dict[str, Any] = field(default_factory=dict)  # key -> original value
    required: list[str] = field(default_factory=list)  # those of them that are ??? in the file
    dropped: dict[str, Any] = field(default_factory=dict)  # paths.* key -> original value
    inlined_groups: list[str] = field(default_factory=list)


def export_run(run_dir: Path, name: str | None = None, config_dir: Path | None = None) -> Export:
    """The experiment file of the run in `run_dir` (not written; see `write_export`)."""
    from litzoo.platform.configs import CONFIG_DIR

    run_dir = Path(run_dir).expanduser().resolve()
    config_dir = Path(config_dir or CONFIG_DIR)
    run = RunDir(run_dir)
    if not run.config_path.is_file() or not run.hydra_config_path.is_file():
        raise ConfigError(
            f"{run_dir} is not a litzoo run directory with Hydra's saved configs (.hydra/config.yaml "
            "and .hydra/hydra.yaml). Pass the directory of a run started with train.py (rank 0's "
            "directory for a multi-process run)."
        )
    record = run.record()
    run_config = run.config()
    hydra_config = run.hydra_config()
    choices = OmegaConf.to_container(OmegaConf.select(hydra_config, "hydra.runtime.choices", default={}))
    assert isinstance(choices, dict)

    defaults, builtin_overrides, inlined = _defaults(choices, config_dir)
    base = _compose_builtin(config_dir, builtin_overrides)
    values = _plain(run_config)
    diff = difference(values, base)
    for group in inlined:  # the whole node: the recipient has no file for this option
        diff[group] = values.get(group)
    for key in EXCLUDED_KEYS:
        diff.pop(key, None)
    seed = record.get("seed", values.get("seed"))
    if seed is not None:
        diff["seed"] = seed

    machine: dict[str, Any] = {}
    dropped: dict[str, Any] = {}
    for key, value in list(_leaves(diff)):
        if key.startswith("paths."):
            dropped[key] = value
            _delete(diff, key)
        elif _machine_specific(key, value):
            machine[key] = value
            if _is_missing_in(base, key):  # a required input of its option: required here too
                _assign(diff, key, MISSING)
    _prune_empty(diff)
    machine = dict(sorted(machine.items()))
    dropped = dict(sorted(dropped.items()))
    required = [key for key in machine if _is_missing_in(diff, key)]

    name = name or default_name(record, run_dir)
    header = _header(run_dir, record, name, machine, required, dropped, inlined)
    body = OmegaConf.to_yaml(OmegaConf.create({"defaults": defaults, **diff}))
    return Export(
        name=name,
        text=header + body,
        machine_specific=machine,
        required=required,
        dropped=dropped,
        inlined_groups=inlined,
    )


def write_export(export: Export, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(export.text)
    return path


def run_command(export: Export, path: Path) -> str:
    """The train.py line that runs an exported file placed at `path`."""
    path = Path(path).resolve()
    config_dir = path.parent.parent if path.parent.name == "experiment" else Path("<dir>")
    extra = " ".join(f"{key}=<{'dir' if key == 'data.root' else 'path'}>" for key in export.machine_specific)
    return f"python train.py --config-dir {config_dir} experiment={export.name}" + (
        f" {extra}" if extra else ""
    )


def default_name(record: Mapping[str, Any], run_dir: Path) -> str:
    parts = [record.get("task"), record.get("model"), record.get("data"), run_dir.name]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(str(p) for p in parts if p)).strip("_") or "exported_run"


# --- the diff ----------------------------------------------------------------------------------


def difference(values: Any, base: Any) -> Any:
    """The parts of `values` that differ from `base` (nested dicts compared key by key).

    A key of `base` that `values` lacks is given as None (the runner skips null entries,
    e.g. a callback removed with ~callbacks.x).
    """
    if not isinstance(values, dict) or not isinstance(base, dict):
        return values
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in base:
            out[key] = value
        elif isinstance(value, dict) and isinstance(base[key], dict):
            nested = difference(value, base[key])
            if nested:
                out[key] = nested
        elif value != base[key] or type(value) is not type(base[key]):
            out[key] = value
    for key in base:
        if key not in values:
            out[key] = None
    return out


def _defaults(choices: Mapping[str, Any], config_dir: Path) -> tuple[list[Any], list[str], list[str]]:
    """(defaults list entries, overrides composing the built-in groups, groups to inline)."""
    defaults: list[Any] = []
    overrides: list[str] = []
    inlined: list[str] = []
    # Hydra records the choices last-group-first; list them in the primary config's order.
    for group, option in reversed(list(choices.items())):
        if "/" in group or group in SKIPPED_GROUPS:
            continue
        if option is None:
            defaults.append({f"override /{group}": None})
            overrides.append(f"~{group}")
        elif (config_dir / group / f"{option}.yaml").is_file():
            defaults.append({f"override /{group}": option})
            overrides.append(f"{group}={option}")
        else:
            defaults.append({f"override /{group}": None})
            overrides.append(f"~{group}")
            inlined.append(group)
    defaults.append("_self_")
    return defaults, overrides, inlined


def _compose_builtin(config_dir: Path, overrides: Sequence[str]) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from litzoo.platform.configs import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir.resolve()), version_base="1.3"):
            cfg = compose("train", overrides=list(overrides))
    except Exception as error:
        raise ConfigError(
            f"Could not compose litzoo's own configs for {' '.join(overrides)}: {error}"
        ) from error
    finally:
        GlobalHydra.instance().clear()
    return _plain(cfg)


def _plain(cfg: DictConfig) -> dict[str, Any]:
    container = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(container, dict)
    container.pop("hydra", None)
    return container


# --- machine-specific values -------------------------------------------------------------------


def _machine_specific(key: str, value: Any) -> bool:
    if not isinstance(value, str) or value in ("", MISSING) or "${" in value:
        return False
    from litzoo.platform.secrets import REDACTED

    if value == REDACTED:
        return True  # a secret of the original run: the recipient brings their own
    if key in MACHINE_INPUT_KEYS:
        return value.lower() not in ("true", "false", "none", "null")
    return os.path.isabs(value) or value.startswith("~") or bool(re.match(r"^[A-Za-z]:[\\/]", value))


def _is_missing_in(tree: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return tree == MISSING


def _leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict) and node:
        found: list[tuple[str, Any]] = []
        for key, value in node.items():
            found += _leaves(value, f"{prefix}.{key}" if prefix else str(key))
        return found
    return [(prefix, node)]


def _assign(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        tree = tree[part]
    tree[last] = value


def _delete(tree: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        tree = tree[part]
    tree.pop(last, None)


def _prune_empty(tree: dict[str, Any]) -> None:
    for key in list(tree):
        if isinstance(tree[key], dict):
            _prune_empty(tree[key])
            if not tree[key]:
                del tree[key]


# --- the header --------------------------------------------------------------------------------


def _header(
    run_dir: Path,
    record: Mapping[str, Any],
    name: str,
    machine: Mapping[str, Any],
    required: Sequence[str],
    dropped: Mapping[str, Any],
    inlined: Sequence[str],
) -> str:
    what = " / ".join(str(record[k]) for k in ("task", "model", "data") if record.get(k))
    metrics = ", ".join(
        f"{k}={v:.4g}"
        for k, v in sorted((record.get("metrics") or {}).items())
        if isinstance(v, (int, float))
    )
    code = record.get("code") or {}
    packages = (record.get("environment") or {}).get("packages") or {}
    lines = [
        "# @package _global_",
        f"# Exported from the run in {run_dir}",
        f"# ({what or 'unknown task'}; status {record.get('status', 'unknown')}"
        + (f"; {metrics}" if metrics else "")
        + ")",
    ]
    if code.get("commit"):
        lines.append(
            f"# litzoo {packages.get('litzoo', '?')}, commit {str(code['commit'])[:12]}"
            + (" (with uncommitted changes: code.diff in the run directory)" if code.get("dirty") else "")
        )
    extra = " ".join(f"{k}=..." for k in machine)
    lines += [
        "# Run it on any machine with litzoo: put this file in <dir>/experiment/, then",
        f"#   python train.py --config-dir <dir> experiment={name}" + (f" {extra}" if extra else ""),
    ]
    if machine:
        lines.append(
            "# Machine-specific values of the original run; set them for your machine (??? below: required;"
        )
        lines.append("# the others still name the original machine's files):")
        lines += [f"#   {k}   (was {v})" for k, v in machine.items()]
    if dropped:
        lines.append("# Paths of the original machine, left at your machine's defaults (override if needed):")
        lines += [f"#   {k}   (was {v})" for k, v in dropped.items()]
    if inlined:
        lines.append(f"# Inlined (not in litzoo's own conf/): {', '.join(inlined)}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m litzoo.platform.export_config",
        description="Export a run directory's config as one experiment file that runs on another machine "
        "(python train.py --config-dir <dir> experiment=<name>).",
    )
    parser.add_argument("run_dir", type=Path, help="the run directory (holds run.json and .hydra/)")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="a config directory, or the file <config-dir>/experiment/<name>.yaml to write "
        "(default: exported/experiment/<name>.yaml)",
    )
    parser.add_argument(
        "--name", default=None, help="the experiment name (default: <task>_<model>_<data>_<run>)"
    )
    args = parser.parse_args(argv)
    output: Path | None = args.output
    config_dir = output if output is not None and output.is_dir() and output.name != "experiment" else None
    if output is not None and config_dir is None and output.suffix not in (".yaml", ".yml"):
        output = output.with_suffix(".yaml")
    try:  # the experiment name is the file name: Hydra selects experiment=<file stem>
        export = export_run(
            args.run_dir, name=args.name or (output.stem if output and not config_dir else None)
        )
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    path = experiment_path(output, export.name)
    write_export(export, path)
    moved = (
        f" (not {output}: `--config-dir DIR experiment={export.name}` reads DIR/experiment/{path.name})"
        if (output is not None and config_dir is None and output != path)
        else ""
    )
    print(f"Wrote {path}{moved}")
    print(f"Run it with: {run_command(export, path)}")
    return 0


def experiment_path(output: Path | None, name: str) -> Path:
    """Where `-o` puts the file so that `--config-dir <dir> experiment=<name>` finds it: Hydra reads the
    experiment group from `<dir>/experiment/`, so a file asked for elsewhere goes into an `experiment/`
    folder beside it, and a directory is taken as the config directory itself."""
    if output is None:
        return Path("exported") / "experiment" / f"{name}.yaml"
    if output.is_dir():
        return (output if output.name == "experiment" else output / "experiment") / f"{name}.yaml"
    if output.parent.name == "experiment":
        return output
    return output.parent / "experiment" / output.name


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
