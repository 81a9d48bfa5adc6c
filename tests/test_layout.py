"""The layout's rules, checked on the source: arrows point down, every config target exists.

- platform/ imports no family (tasks, datamodules, models, metrics), and nothing imports the CLI;
- models never import datamodules, datamodules never import models or tasks;
- the leaf domain packages (text/, vision/) and the data API (data/) import no family code;
- every `_target_` and `layout` named in any YAML file under conf/ resolves to an object.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CONFIG_DIR, ROOT
from omegaconf import OmegaConf

SRC = ROOT / "src" / "litzoo"
FAMILY_PACKAGES = ("litzoo.tasks", "litzoo.datamodules", "litzoo.models", "litzoo.metrics")


def imports_of(path: Path) -> set[str]:
    """Every litzoo module a source file imports (at module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("litzoo")}


def modules_under(package: str) -> Iterator[tuple[str, Path]]:
    folder = SRC.joinpath(*package.split(".")[1:])
    for path in sorted(folder.rglob("*.py")):
        yield ".".join(["litzoo", *path.relative_to(SRC).with_suffix("").parts]), path


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{module} imports {name}"
        for module, path in modules_under(package)
        for name in sorted(imports_of(path))
        if name.startswith(forbidden)
    ]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("litzoo.platform", (*FAMILY_PACKAGES, "litzoo.predict")),
        ("litzoo.models", ("litzoo.datamodules", "litzoo.tasks", "litzoo.platform.runner")),
        ("litzoo.datamodules", ("litzoo.models", "litzoo.tasks")),
        ("litzoo.data", (*FAMILY_PACKAGES, "litzoo.text", "litzoo.vision")),
        ("litzoo.text", (*FAMILY_PACKAGES, "litzoo.data")),
        ("litzoo.vision", (*FAMILY_PACKAGES, "litzoo.data")),
    ],
)
def test_arrows_point_down(package, forbidden):
    assert violations(package, forbidden) == []


def test_the_one_line_datasets_are_the_one_documented_exception():
    """`litzoo.data.SQuAD(...)` & co. live in the facade `litzoo.datasets` (above the families); the
    data API reaches it only lazily, from a module-level `__getattr__` in its `__init__`, and nothing
    else imports it, so no family code is imported by `import litzoo.data`."""
    importers = [module for module, path in modules_under("litzoo") if "litzoo.datasets" in imports_of(path)]
    assert importers == ["litzoo.data.__init__"]
    tree = ast.parse((SRC / "data" / "__init__.py").read_text())
    at_top = {name for node in tree.body for name in imports_of_node(node)}
    assert not any(name.startswith("litzoo") for name in at_top), (
        "the facade import must stay inside __getattr__"
    )


def imports_of_node(node: ast.AST) -> set[str]:
    if isinstance(node, ast.ImportFrom) and node.module:
        return {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return {a.name for a in node.names} if isinstance(node, ast.Import) else set()


def test_nothing_imports_the_cli():
    importers = [
        module
        for module, path in modules_under("litzoo")
        if "litzoo.platform.cli" in imports_of(path) and module != "litzoo.platform.cli"
    ]
    assert importers == []


def test_the_layout_check_itself_catches_an_upward_import(tmp_path):
    """The scanner sees imports inside functions too (a lazy upward import is still an arrow up)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from litzoo.datamodules.detection import coco\n")
    assert imports_of(module) == {"litzoo.datamodules.detection", "litzoo.datamodules.detection.coco"}


def named_objects(node: object, where: str) -> Iterator[tuple[str, str]]:
    """(dotted path, where) for every `_target_` and `layout` value in a config tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("_target_", "layout") and isinstance(value, str) and "${" not in value:
                yield value, f"{where}: {key}"
            else:
                yield from named_objects(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from named_objects(item, f"{where}[{index}]")


def resolve(dotted: str) -> object:
    module_name, _, attribute = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):  # a nested attribute, e.g. Class.method
        parent, _, name = module_name.rpartition(".")
        return getattr(getattr(importlib.import_module(parent), name), attribute)


CONFIG_FILES = sorted(p for p in CONFIG_DIR.rglob("*.yaml"))


@pytest.mark.parametrize("config_file", CONFIG_FILES, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_every_target_in_every_config_resolves(config_file):
    tree = OmegaConf.to_container(OmegaConf.load(config_file), resolve=False)
    for dotted, where in named_objects(tree, config_file.name):
        assert callable(resolve(dotted)), where


def test_the_config_tree_is_package_data():
    """The configs live inside the package (so a non-editable install has them), `conf/` points there."""
    assert CONFIG_DIR.resolve() == (SRC / "conf").resolve()
    assert (SRC / "conf" / "train.yaml").is_file()
