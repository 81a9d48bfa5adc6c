"""`python -m litzoo.zoo`: the model zoo table, a recipe's tiny variant, and (re)measuring the table.

python -m litzoo.zoo [--task T] [--format table|csv|json]     # list (torch-free, well under a second)
python -m litzoo.zoo tiny coco/faster_rcnn_resnet50_fpn        # the train.py line of a tiny CPU variant
python -m litzoo.zoo measure [NAME ...]                        # rebuild models, rewrite stats.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from litzoo.zoo import listing


def _config_dirs() -> list:
    from litzoo.platform.configs import CONFIG_DIR

    return [CONFIG_DIR]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run it; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m litzoo.zoo", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", default="list", choices=["list", "tiny", "measure"])
    parser.add_argument(
        "names", nargs="*", help="tiny: one recipe; measure: model or recipe names (default: all)"
    )
    parser.add_argument("--task", help="only the models and recipes of this task (e.g. detection)")
    parser.add_argument("--format", default="table", choices=["table", "csv", "json"])
    args = parser.parse_args(argv)
    dirs = _config_dirs()
    if args.command == "tiny":
        return _tiny(args.names, dirs)
    if args.command == "measure":
        from litzoo.zoo.measure import measure_all, write_stats
        from litzoo.zoo.recipes import recipes

        write_stats(measure_all(listing.model_tasks(dirs), recipes(dirs), args.names))
        return 0
    table = listing.rows(dirs, task=args.task)
    if not table:
        tasks = sorted({t for r in listing.rows(dirs) for t in r.task.split(",")})
        print(
            f"No model or recipe serves --task {args.task}. Tasks in the zoo: {', '.join(tasks)}.",
            file=sys.stderr,
        )
        return 2
    print(listing.render(table, args.format))
    return 0


def _tiny(names: Sequence[str], dirs: list) -> int:
    from litzoo.zoo.recipes import read_recipe, recipe_files
    from litzoo.zoo.tiny import tiny_command

    files = recipe_files(dirs)
    if len(names) != 1 or names[0] not in files:
        given = " ".join(names) or "nothing"
        print(
            f"`tiny` takes one recipe name, got {given}. Recipes: {', '.join(sorted(files))}.",
            file=sys.stderr,
        )
        return 2
    print(tiny_command(read_recipe(names[0], files)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
