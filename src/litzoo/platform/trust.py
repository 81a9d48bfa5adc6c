"""Which `_target_`s a config may instantiate.

Hydra instantiates whatever dotted path a config names, so a shared config file
(`--config-dir`, an exported or downloaded run config) could run `os.system`.
Before anything is instantiated, every `_target_` in the composed config must:

1. start with an allowed package prefix (litzoo, torch, lightning, torchmetrics,
   timm, torchvision, transformers, plus `trust.allow` from the config),
2. resolve to an object that really lives in an allowed package — this refuses
   aliases such as `torch.os.system` or `logging.os.system`, which pass a prefix
   check but are `os.system`,
3. not be one of the entry points of allowed packages that load or run code
   (`torch.load` can unpickle, `torch.hub.load` runs a repository's hubconf,
   `torch.utils.cpp_extension` compiles, `timm.models.load_checkpoint` unpickles,
   ...): a list of modules plus any function named like `load`, `*_load_*`,
   `exec`, `eval`, `system`, `spawn`; and no argument may ask for `trust_remote_code`.

Steps 1 and 3 and a static alias check (no path component may be a standard-library
module that reaches processes, files or imports, as in `torch.os.system`) run during validation without importing anything;
the full resolution (step 2) runs right before the first object is built.
Resolving a target imports its module (as Hydra would) but calls nothing.

Trust is the user's decision, so it is read from the command line only, never from
a config file (which could otherwise vouch for itself): `trust_config=true` skips
the check, `trust.allow=[mylab]` adds packages; the environment variable
LITZOO_TRUST_ALLOW (comma-separated) adds packages for every run.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from litzoo.errors import ConfigError

ALLOWED_PACKAGES = (
    "litzoo",
    "torch",
    "lightning",
    "pytorch_lightning",
    "torchmetrics",
    "timm",
    "torchvision",
    "transformers",
)
# Inside the allowed packages: callables that deserialize pickles or execute files/repositories.
DENIED_PREFIXES = (
    "torch.load",
    "torch.hub",
    "torch.utils.cpp_extension",
    "torch.package",
    "torch.serialization",
    "torch.jit.load",
    "torch.jit._serialization",
    "torch.distributed.rpc",
    "torch._dynamo",
    "torch._inductor",
    "lightning.fabric.utilities.cloud_io",
    "lightning.pytorch.core.saving",
    "transformers.dynamic_module_utils",
)
DENIED_ARGUMENTS = ("trust_remote_code",)
# Standard-library modules that give access to processes, files, imports or arbitrary calls. A
# target path through one of them (`torch.os.system`) is an alias even before it is resolved.
_DANGEROUS_STDLIB = frozenset(
    {
        "os",
        "posix",
        "nt",
        "sys",
        "subprocess",
        "builtins",
        "shutil",
        "importlib",
        "pickle",
        "marshal",
        "ctypes",
        "socket",
        "pty",
        "runpy",
        "code",
        "codeop",
        "multiprocessing",
        "signal",
        "io",
        "tempfile",
        "pathlib",
        "urllib",
        "http",
        "webbrowser",
        "shelve",
        "types",
        "inspect",
        "functools",
        "operator",
        "gc",
        "threading",
        "asyncio",
        "glob",
        "zipfile",
        "tarfile",
        "ftplib",
        "smtplib",
        "telnetlib",
        "ssl",
    }
)
_CODE_RUNNING_NAME = re.compile(r"(^|_)(load|loads|unpickle|exec|eval|system|popen|spawn|compile)(_|$)", re.I)


def iter_targets(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(config key, target) pairs for every `_target_` in a plain nested dict/list config."""
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None:
            yield (path or "<root>"), str(target)
        for key, value in node.items():
            yield from iter_targets(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from iter_targets(value, f"{path}[{i}]")


def _iter_denied_arguments(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if key in DENIED_ARGUMENTS and value:
                yield here
            yield from _iter_denied_arguments(value, here)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _iter_denied_arguments(value, f"{path}[{i}]")


def _matches(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _locate(path: str) -> Any:
    """The object a dotted path names (Hydra's resolution: longest importable module, then attributes)."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(path)


def _home_module(obj: Any) -> str:
    if inspect.ismodule(obj):
        return obj.__name__
    module = getattr(obj, "__module__", None) or getattr(type(obj), "__module__", "")
    return module or ""


def target_problem(target: str, allowed: Sequence[str], resolve: bool) -> str | None:
    """Why `target` may not be instantiated, or None if it may."""
    if not _matches(target, allowed):
        return "its package is not on the allowlist"
    if _matches(target, DENIED_PREFIXES) or _CODE_RUNNING_NAME.search(target.rsplit(".", 1)[-1]):
        return "it loads or executes code from files"
    inner = [part for part in target.split(".")[1:] if part in _DANGEROUS_STDLIB]
    if inner:
        return f"it reaches the standard-library module `{inner[0]}` through an allowed package"
    if not resolve:
        return None
    try:
        obj = _locate(target)
    except (ImportError, AttributeError):
        return None  # Hydra will report that it cannot be found; nothing can run
    home = _home_module(obj)
    if _CODE_RUNNING_NAME.search(getattr(obj, "__name__", "") or ""):
        return "it loads or executes code from files"
    if not _matches(home, allowed):
        return f"it is an alias of {home}.{getattr(obj, '__qualname__', obj)!s}"
    if _matches(home, DENIED_PREFIXES) or _matches(f"{home}.{getattr(obj, '__name__', '')}", DENIED_PREFIXES):
        return "it loads or executes code from files"
    return None


@dataclass
class Trust:
    """What the user allowed for this run (from the command line and the environment)."""

    everything: bool = False
    extra_packages: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_overrides(cls, overrides: Sequence[str], environ: dict[str, str] | None = None) -> Trust:
        environ = dict(os.environ) if environ is None else environ
        extra = [p.strip() for p in environ.get("LITZOO_TRUST_ALLOW", "").split(",") if p.strip()]
        everything = False
        for override in overrides:
            key, _, value = override.lstrip("+~").partition("=")
            if key == "trust_config":
                everything = value.strip().lower() == "true"
            elif key == "trust.allow":
                extra += [p.strip(" '\"") for p in value.strip("[]").split(",") if p.strip(" '\"")]
        return cls(everything, tuple(extra))


# The trust of the run in progress; `registry.build` consults it for objects built later
# (e.g. a task building its model from a checkpoint's hyper-parameters).
SESSION = Trust()


def check_targets(config: dict, trust: Trust | None = None, resolve: bool = False) -> None:
    """Raise ConfigError naming the first `_target_` (or argument) that is not allowed."""
    trust = SESSION if trust is None else trust
    if trust.everything:
        return
    allowed = tuple(ALLOWED_PACKAGES) + tuple(trust.extra_packages)
    for key, target in iter_targets(config):
        problem = target_problem(target, allowed, resolve)
        if problem:
            raise ConfigError(
                f"Refusing to instantiate `{key}._target_: {target}`: {problem}. Configs may only build objects "
                f"from {', '.join(allowed)}. If you wrote or reviewed this config and trust it, allow the "
                f"package on the command line (trust.allow=[{target.split('.')[0]}]) or run with trust_config=true."
            )
    for key in _iter_denied_arguments(config):
        raise ConfigError(
            f"Refusing `{key}: true`: it would run code shipped with a model checkpoint. Review that code and "
            "run with trust_config=true if you trust it."
        )
