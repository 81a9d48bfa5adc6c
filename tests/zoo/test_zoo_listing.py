"""`python -m litzoo.zoo`: the table lists every model and recipe, torch-free; its params and GFLOPs
are those of the freshly built models (a stale stats.json fails), GFLOPs checked by a hand count."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
from conftest import CONFIG_DIR, ROOT
from omegaconf import OmegaConf

from litzoo.zoo import listing
from litzoo.zoo.measure import measure_all, read_stats
from litzoo.zoo.recipes import recipes

STATS = read_stats()
MODELS = listing.model_tasks([CONFIG_DIR])
RECIPES = recipes([CONFIG_DIR])
# Rebuilt in the default suite (resnet18 too, in the FLOP test below); all of them with -m slow.
FAST = ["digits/resnet18_tricks"]


def test_stats_cover_every_model_and_recipe_and_nothing_else():
    expected = {f"model:{m}" for m in MODELS} | {f"recipe:{r.name}" for r in RECIPES}
    assert set(STATS) == expected, "run `python -m litzoo.zoo measure` after adding or removing an entry"
    for key, entry in STATS.items():
        assert ("params" in entry) != bool(entry.keys() & {"note", "error"}), key


def test_every_classification_model_and_image_recipe_is_measured():
    """What must build offline does: no error for timm/torchvision models and the vision recipes."""
    must = [
        f"model:{m}" for m, tasks in MODELS.items() if tasks[0] in ("classification", "semantic_segmentation")
    ]
    must += [f"recipe:{r.name}" for r in RECIPES if r.data_info]
    assert [k for k in must if "params" not in STATS[k]] == []


def test_table_params_match_the_built_models():
    fresh = measure_all(MODELS, RECIPES, only=FAST)
    assert fresh and all(fresh[k] == STATS[k] for k in fresh), (fresh, {k: STATS[k] for k in fresh})


@pytest.mark.slow
def test_every_table_entry_matches_the_built_model():
    fresh = measure_all(MODELS, RECIPES)
    assert {k: v for k, v in fresh.items() if v != STATS.get(k)} == {}


def hand_counted_flops(net, images) -> int:
    """2 x multiply-adds of every convolution and linear layer, from forward hooks (no FlopCounterMode)."""
    import torch

    total = 0

    def conv(module, inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        total += 2 * output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear(module, inputs, output):
        nonlocal total
        total += 2 * output.numel() * module.in_features

    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(conv)
        elif isinstance(module, torch.nn.Linear):
            module.register_forward_hook(linear)
    with torch.no_grad():
        net.eval()(images)
    return total


def test_gflops_are_what_the_network_computes(monkeypatch, tmp_path):
    """resnet18 on the digits (1 x 32 x 32): the FLOPs the zoo counts (FlopCounterMode over one validation
    sample) equal, to the FLOP, an independent count of its convolution and linear layers; params equal timm's."""
    import timm
    import torch

    from litzoo.zoo.measure import build_task, compose, count_flops, model_overrides

    monkeypatch.chdir(tmp_path)  # evaluation writes beside a run: here, not in the checkout
    task, datamodule = build_task(compose(model_overrides("resnet18", MODELS["resnet18"])))
    counted = count_flops(task, datamodule)
    net = timm.create_model("resnet18", num_classes=10, in_chans=1)
    assert counted == hand_counted_flops(net, torch.zeros(1, 1, 32, 32))
    assert STATS["model:resnet18"] == {
        "params": sum(p.numel() for p in net.parameters()),
        "gflops": round(counted / 1e9, 3),
    }


def run_zoo(*args: str) -> subprocess.CompletedProcess:
    code = (
        "import sys; from litzoo.zoo.__main__ import main; rc = main(sys.argv[1:]); "
        "print('HEAVY' if {'torch', 'lightning', 'timm'} & set(sys.modules) else 'LIGHT', file=sys.stderr); sys.exit(rc)"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_listing_is_torch_free_and_csv_has_every_row_with_its_reference():
    out = run_zoo("--format", "csv")
    assert out.returncode == 0 and out.stderr.strip().endswith("LIGHT"), out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert {r["name"] for r in rows if r["kind"] == "model"} == set(MODELS)
    by_recipe = {r["name"]: r for r in rows if r["kind"] == "recipe"}
    assert set(by_recipe) == {r.name for r in RECIPES}
    for recipe in RECIPES:  # the published number as its file states it
        ref = OmegaConf.to_container(OmegaConf.load(recipe.path).zoo).get("reference") or {}
        row = by_recipe[recipe.name]
        assert (row["metric"], row["reference"], row["source"]) == (
            ref.get("metric", ""),
            str(ref.get("value", "")),
            ref.get("source", ""),
        )
        stats = STATS[f"recipe:{recipe.name}"]
        assert row["params_m"] == (str(round(stats["params"] / 1e6, 2)) if "params" in stats else "")


def test_task_filter_json_and_errors():
    out = run_zoo("--task", "detection", "--format", "json")
    table = json.loads(out.stdout)
    assert table and all("detection" in r["task"].split(",") for r in table)
    assert {"coco/faster_rcnn_resnet50_fpn", "faster_rcnn"} <= {r["name"] for r in table}
    bad = run_zoo("--task", "dancing")
    assert bad.returncode == 2 and "No model or recipe serves --task dancing" in bad.stderr
    assert "detection" in bad.stderr and "Traceback" not in bad.stderr
    tiny = run_zoo("tiny", "trec/textcnn")
    assert tiny.stdout.startswith(
        "python train.py experiment=trec/textcnn data=sentiment '~data.granularity'"
    )
    assert run_zoo("tiny", "trec/nope").returncode == 2
