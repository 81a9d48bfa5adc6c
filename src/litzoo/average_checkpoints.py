"""Average the weights of a run's last N checkpoints (fairseq's ``scripts/average_checkpoints.py``).

Averaging the parameters of the last few checkpoints of a run is how the Transformer's published
numbers were obtained (Vaswani et al. 2017: the last 5 checkpoints for base, 20 for big, taken every
10 minutes); it usually adds a fraction of a BLEU point for free. Any task's run works: the tool
reads Lightning checkpoints, averages every tensor of their ``state_dict`` and writes one checkpoint
that ``train=false ckpt_path=...`` and ``python -m litzoo.predict --checkpoint`` accept.

Command line::

    python -m litzoo.average_checkpoints <run_dir> --last 5               # the last 5 epoch-end checkpoints
    python -m litzoo.average_checkpoints <run_dir> --last 4 --by step     # ... or of every kind, by step
    python -m litzoo.average_checkpoints <run_dir> --last 5 -o avg.ckpt   # elsewhere than checkpoints/

Which checkpoints a run keeps: the epoch-end ones are the best-k (``epochNNN-stepNNNNNN.ckpt``) and
``last.ckpt``; keep every epoch's with ``callbacks.model_checkpoint.save_top_k=-1`` (each is weights
only once the run moves on, a few MB for the small model). The rolling ``stepNNNNNN.ckpt`` ones (every
``callbacks.step_checkpoint.every_n_train_steps``) stay after training with
``callbacks.step_checkpoint.keep_after_fit=true`` and ``save_top_k=N`` (fairseq's
``--save-interval-updates`` / ``--keep-interval-updates``). Files that are one checkpoint under two
names (a best hard-linked to ``last.ckpt``) or of one training step count once.

Arithmetic as fairseq's: floating-point tensors are the mean of the N (accumulated in float64 here,
then cast back to their own dtype), integer tensors (counters such as ``num_batches_tracked``) the
floor of theirs. The result keeps the newest checkpoint's other entries (hyper-parameters, epoch,
step; not its optimizer state, which belongs to no averaged model) and lists its sources under
``"averaged_from"``. It never imports Lightning; the platform does not import it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litzoo.errors import CheckpointError, ConfigError, LitzooError

STEP_NAME = re.compile(r"^step\d+\.ckpt$")  # conf/callbacks/default.yaml's step_checkpoint.filename
# Entries of a checkpoint that only resume training (as litzoo.platform.checkpointing.TRAINING_STATE_KEYS).
TRAINING_STATE_KEYS = ("callbacks", "optimizer_states", "lr_schedulers", "litzoo")


@dataclass(frozen=True)
class Candidate:
    """One checkpoint file of a run, with what orders it."""

    path: Path
    global_step: int
    epoch: int
    kind: str  # "epoch" (epoch-end: best-k, last.ckpt) or "step" (the rolling every-N-steps ones)


def _load(path: Path) -> dict[str, Any]:
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure to read is the same message to the user
        raise CheckpointError(
            f"Cannot read checkpoint {path} ({type(error).__name__}: {str(error)[:200]}): it is truncated, "
            "corrupt or holds pickled Python objects. Leave it out (delete or move it) and run again."
        ) from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise CheckpointError(f"{path} is not a Lightning checkpoint (it has no state_dict).")
    return checkpoint


def checkpoint_folder(run_dir: str | Path) -> Path:
    """``<run_dir>/checkpoints`` (or `run_dir` itself when it is a folder of checkpoints)."""
    path = Path(run_dir).expanduser()
    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    if not folder.is_dir() or not any(folder.glob("*.ckpt")):
        raise CheckpointError(
            f"{path} holds no checkpoints (no {path / 'checkpoints'}/*.ckpt). Give the run directory of a "
            "training run (outputs/<task>/<model>/<time>)."
        )
    return folder


def candidates(folder: Path) -> list[Candidate]:
    """The run's distinct checkpoints, oldest first (one per training step; averaged files left out)."""
    by_step: dict[int, Candidate] = {}
    for path in sorted(folder.glob("*.ckpt")):
        if path.name.startswith("."):
            continue
        checkpoint = _load(path)
        if "averaged_from" in checkpoint:
            continue
        kind = "step" if STEP_NAME.match(path.name) else "epoch"
        item = Candidate(path, int(checkpoint.get("global_step", -1)), int(checkpoint.get("epoch", -1)), kind)
        known = by_step.get(item.global_step)
        # One step saved twice (a best and last.ckpt, or a step checkpoint at an epoch's end): an
        # epoch-end name wins, and of those a name other than last.ckpt (it is stable).
        if known is None or (known.kind, known.path.name == "last.ckpt") > (
            item.kind,
            item.path.name == "last.ckpt",
        ):
            by_step[item.global_step] = item
    return [by_step[step] for step in sorted(by_step)]


def select(folder: Path, last: int, by: str) -> list[Candidate]:
    """The `last` newest checkpoints of kind `by` (``epoch``: epoch-end only; ``step``: every kind)."""
    if by not in ("epoch", "step"):
        raise ConfigError(f"--by {by}: choose epoch (epoch-end checkpoints) or step (every checkpoint).")
    if last < 1:
        raise ConfigError(f"--last {last}: give the number of checkpoints to average (1 or more).")
    found = candidates(folder)
    pool = [c for c in found if by == "step" or c.kind == "epoch"]
    if len(pool) < last:
        listed = ", ".join(f"{c.path.name} (step {c.global_step})" for c in found) or "none"
        raise CheckpointError(
            f"--last {last} --by {by}: {folder} holds only {len(pool)} such checkpoint(s) of distinct steps "
            f"({listed}). Average fewer, or train keeping more: callbacks.model_checkpoint.save_top_k=-1 keeps "
            "every epoch's checkpoint; callbacks.step_checkpoint.keep_after_fit=true "
            "callbacks.step_checkpoint.save_top_k=<N> keeps the last N step checkpoints (then --by step)."
        )
    return pool[-last:]


def average_state_dicts(
    states: Sequence[dict[str, Any]], names: Sequence[str] | None = None
) -> dict[str, Any]:
    """The element-wise mean of state dicts with the same keys and shapes (integers: floor of the mean)."""
    import torch

    names = list(names or [f"#{i}" for i in range(len(states))])
    first = states[0]
    for state, name in zip(states[1:], names[1:], strict=True):
        if state.keys() != first.keys():
            differ = sorted(set(state) ^ set(first))[:5]
            raise CheckpointError(
                f"{name} and {names[0]} hold different parameters ({', '.join(differ)} ...): they are not "
                "checkpoints of one model. Average checkpoints of a single run."
            )
    averaged: dict[str, Any] = {}
    for key, value in first.items():
        if not isinstance(value, torch.Tensor):
            averaged[key] = value
            continue
        for state, name in zip(states, names, strict=True):
            if state[key].shape != value.shape:
                raise CheckpointError(
                    f"{key} has shape {tuple(state[key].shape)} in {name} but {tuple(value.shape)} in "
                    f"{names[0]}: not checkpoints of one model."
                )
        if value.is_floating_point() or value.is_complex():
            wide = torch.complex128 if value.is_complex() else torch.float64
            total = sum((state[key].to(wide) for state in states[1:]), first[key].to(wide))
            averaged[key] = (total / len(states)).to(value.dtype)
        elif value.dtype == torch.bool:
            averaged[key] = states[-1][key].clone()  # masks: the newest (an average means nothing)
        else:
            total = sum((state[key].to(torch.int64) for state in states[1:]), first[key].to(torch.int64))
            averaged[key] = torch.div(total, len(states), rounding_mode="floor").to(value.dtype)
    return averaged


def average_checkpoints(
    run_dir: str | Path, last: int = 5, by: str = "epoch", output: str | Path | None = None
) -> Path:
    """Write the average of the run's last `last` checkpoints and return its path
    (default ``<run_dir>/checkpoints/averaged-last<N>-<by>.ckpt``)."""
    import torch

    folder = checkpoint_folder(run_dir)
    chosen = select(folder, int(last), by)
    checkpoints = [_load(c.path) for c in chosen]
    names = [str(c.path) for c in chosen]
    state = average_state_dicts([c["state_dict"] for c in checkpoints], names)
    newest = checkpoints[-1]
    result = {k: v for k, v in newest.items() if k not in TRAINING_STATE_KEYS and not k.endswith("Precision")}
    result["state_dict"] = state
    result["averaged_from"] = [
        {"file": c.path.name, "global_step": c.global_step, "epoch": c.epoch} for c in chosen
    ]
    target = Path(output).expanduser() if output else folder / f"averaged-last{int(last)}-{by}.ckpt"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    torch.save(result, tmp)
    tmp.replace(target)
    return target


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="python -m litzoo.average_checkpoints",
        description="Average the weights of a run's last N checkpoints into one checkpoint (fairseq's "
        "average_checkpoints); evaluate it with `python train.py ... train=false ckpt_path=<file>`.",
    )
    result.add_argument("run_dir", help="the run directory (or its checkpoints/ folder)")
    result.add_argument("--last", type=int, default=5, help="how many of the newest checkpoints (default 5)")
    result.add_argument(
        "--by",
        default="epoch",
        choices=("epoch", "step"),
        help="epoch: epoch-end checkpoints only (default); step: every checkpoint, ordered by training step",
    )
    result.add_argument(
        "-o", "--output", help="where to write (default: checkpoints/averaged-last<N>-<by>.ckpt)"
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        path = average_checkpoints(args.run_dir, args.last, args.by, args.output)
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    import torch

    sources = torch.load(path, map_location="cpu", weights_only=True)["averaged_from"]
    listed = ", ".join(f"{s['file']} (step {s['global_step']})" for s in sources)
    print(f"Averaged {len(sources)} checkpoints: {listed}\nWrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
