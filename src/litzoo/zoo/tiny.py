"""A recipe's tiny CPU variant: its own `zoo.tiny` overrides plus one shared one-step trainer.

The recipe keeps its task, optimizer, schedule and task options (what it is about); its `zoo.tiny`
list swaps the data for the family's embedded stand-in (same on-disk format, generated offline),
shrinks sizes and drops keys that only the real dataset's config has. `ONE_STEP` then makes any
recipe run one optimisation step, one validation and one test batch on one CPU process:

    python -m litzoo.zoo tiny coco/faster_rcnn_resnet50_fpn     # prints the train.py command line

Because each override names keys of the composed recipe (`~data.crop_pct`, `model.min_size=...`),
a recipe that drifts (a key renamed or removed) stops composing its tiny variant, and the test
that composes every recipe fails.
"""

from __future__ import annotations

import shlex

from litzoo.zoo.recipes import Recipe

# After the recipe's own overrides: one step on one CPU process, deterministic, no workers.
ONE_STEP: tuple[str, ...] = (
    "debug=fdr",
    "trainer=cpu",
    "++trainer.accelerator=cpu",
    "++trainer.devices=1",
    "++trainer.num_nodes=1",
    "++trainer.strategy=auto",
    "++trainer.sync_batchnorm=false",
    "++trainer.deterministic=true",
    "++trainer.precision=32-true",
    "++trainer.max_epochs=1",
    "++data.num_workers=0",
    "++data.pin_memory=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
)


def tiny_overrides(recipe: Recipe) -> list[str]:
    """The overrides of `recipe`'s tiny variant: `experiment=<name>`, its own list, then ONE_STEP."""
    return [f"experiment={recipe.name}", *recipe.tiny, *ONE_STEP]


def tiny_command(recipe: Recipe) -> str:
    """The shell line that runs the tiny variant."""
    return "python train.py " + " ".join(shlex.quote(o) for o in tiny_overrides(recipe))
