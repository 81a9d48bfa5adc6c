"""What crash-safe periodic checkpointing costs: the same run with and without step checkpoints.

Runs `python train.py` (the default digits/ResNet-18 job, without the test phase)
with the rolling every-N-steps checkpoint on and off, alternating, and reports
the wall time of each whole run and the difference in percent. Everything else
(start-up, data, the per-epoch best checkpoint) is the same on both sides, so the
difference is the cost of the extra saves: each is an atomic, fsynced file with
the model and optimizer state (~90 MB for ResNet-18 with momentum).

    python benchmarks/bench_checkpoint_overhead.py            # 3 epochs, every 20 steps, 2 rounds
    python benchmarks/bench_checkpoint_overhead.py --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(every: int | None, epochs: int, run_dir: Path) -> tuple[float, int]:
    args = [
        sys.executable,
        str(ROOT / "train.py"),
        f"trainer.max_epochs={epochs}",
        "test=false",
        "trainer.enable_progress_bar=false",
        "callbacks.model_checkpoint.save_last=false",
        f"hydra.run.dir={run_dir}",
    ]
    args.append(
        f"callbacks.step_checkpoint.every_n_train_steps={every}"
        if every
        else "callbacks.step_checkpoint=null"
    )
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed", record
    saves = len(list((run_dir / "checkpoints").glob("step*.ckpt")))
    return elapsed, saves


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--every", type=int, default=20)
    args = parser.parse_args()
    epochs, rounds = (1, 1) if args.quick else (3, 2)
    steps = 20 * epochs  # digits: 1257 training images / batch 64
    times: dict[str, list[float]] = {"no step checkpoints": [], f"every {args.every} steps": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            times["no step checkpoints"].append(one_run(None, epochs, Path(tmp) / f"off{r}")[0])
            times[f"every {args.every} steps"].append(one_run(args.every, epochs, Path(tmp) / f"on{r}")[0])
    base = statistics.median(times["no step checkpoints"])
    print(f"\ndigits / ResNet-18, {epochs} epoch(s) = {steps} steps, {rounds} round(s); whole-run wall time")
    print(f"{'setting':<24}{'seconds (median)':>18}{'overhead':>10}  all rounds")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:<24}{median:>18.2f}{100 * (median - base) / base:>9.1f}%  "
            + ", ".join(f"{v:.2f}" for v in values)
        )


if __name__ == "__main__":
    main()
