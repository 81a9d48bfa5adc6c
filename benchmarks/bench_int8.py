"""int8 vs fp32, and PyTorch eager vs ONNX Runtime, side by side: latency at batch 1 and 8, test accuracy.

Each model is a real litzoo run directory, exported by ``python -m litzoo.export <run> --int8``'s own
code path (``litzoo.export.run.export_run``): the fp32 ONNX graph passes its parity check on the
run's val split, then onnxruntime quantizes it (static QDQ with MinMax calibration on the val split
for CNNs, dynamic for transformers) and the three runtimes are timed on the same real test inputs,
one CPU thread by default, median of repeated calls after warm-up, wall clock and process CPU time
(on a shared machine the wall clock also measures the neighbours), and scored on the run's test split.

Models (runs trained here unless ``--run-dir`` gives existing ones):

1. ``cnn``: ResNet-18 (timm) on the embedded digits at 32 px, trained ``--cnn-epochs`` epochs (real accuracy);
2. ``cnn112``: the same on the digits upscaled to 112 px (real accuracy; enough work per layer for int8
   kernels to pay off at batch 8, which 32 px is not);
3. ``cnn224`` (only when asked): the same architecture at ImageNet's 224 px, one training step (latency
   only: weights do not change the cost; its accuracy is not meaningful and is scored on 64 test images);
4. ``minilm``: all-MiniLM-L6-v2 fine-tuned on the embedded sentiment corpus for ``--minilm-steps`` steps.

    python benchmarks/bench_int8.py                         # cnn, cnn112, minilm (MiniLM: ~15 min on 2 loaded cores)
    python benchmarks/bench_int8.py --models cnn cnn112     # the CNNs only
    python benchmarks/bench_int8.py --run-dir minilm=outputs/text_classification/minilm_l6/<time>
    python benchmarks/bench_int8.py --threads 2 --json results.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

QUIET = [
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.step_checkpoint=null",
    "trainer.num_sanity_val_steps=0",
    "data.num_workers=0",
]


def recipes(args: argparse.Namespace) -> dict[str, list[str]]:
    return {
        "cnn": ["data.image_size=32", f"trainer.max_epochs={args.cnn_epochs}"],
        "cnn112": ["data.image_size=112", f"trainer.max_epochs={args.cnn_epochs}"],
        "cnn224": [
            "data.image_size=224",
            "data.batch_size=16",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=2",
            "trainer.limit_test_batches=4",
        ],
        "minilm": [
            "task=text_classification",
            "model=minilm_l6",
            "trainer.max_epochs=1",
            f"trainer.limit_train_batches={args.minilm_steps}",
            "trainer.limit_val_batches=4",
        ],
    }


def train(name: str, overrides: list[str], folder: Path) -> Path:
    """A run directory, trained with the real command line (``train.py``)."""
    import subprocess

    run_dir = folder / name
    command = [sys.executable, str(ROOT / "train.py"), *overrides, *QUIET, f"hydra.run.dir={run_dir}"]
    print(f"[{name}] training: {' '.join(command[2:])}", flush=True)
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"[{name}] training failed:\n{result.stderr[-3000:]}")
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=["cnn", "cnn112", "minilm"],
        choices=["cnn", "cnn112", "cnn224", "minilm"],
    )
    parser.add_argument(
        "--run-dir", action="append", default=[], help="name=<run_dir>: use this run, do not train"
    )
    parser.add_argument("--cnn-epochs", type=int, default=3)
    parser.add_argument("--minilm-steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--latency-seconds", type=float, default=3.0)
    parser.add_argument("--json", help="also write every model's int8 record to this file")
    args = parser.parse_args()

    from litzoo.export.run import ExportOptions, export_run
    from litzoo.platform.run_dir import RunDir

    given = dict(item.split("=", 1) for item in args.run_dir)
    folder = Path(tempfile.mkdtemp(prefix="bench_int8_"))
    results = {}
    for name in args.models:
        run_dir = Path(given[name]) if name in given else train(name, recipes(args)[name], folder)
        options = ExportOptions(
            fmt="onnx",
            output=run_dir / "exports" / "bench_int8",
            int8=True,
            threads=args.threads,
            latency_seconds=args.latency_seconds,
            accuracy_samples=64 if name == "cnn224" else None,
        )
        print(f"\n[{name}] {run_dir}", flush=True)
        record = json.loads(
            export_run(run_dir, options, log=lambda line: print(f"  {line}", flush=True)).read_text()
        )
        record["int8"]["run_dir"] = str(run_dir)
        record["int8"]["logged_test_metrics"] = RunDir(run_dir).record().get("metrics")
        record["int8"]["parity_max_abs_diff"] = record["parity"]["max_abs_diff"]
        results[name] = record["int8"]
    print("\nSide by side (median ms, wall / CPU; accuracy on the run's test split):")
    for name, r in results.items():
        print(f"\n{name}: {r['method']} int8, {r['threads']} thread(s)")
        print(r["summary"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nWrote {args.json}")


if __name__ == "__main__":
    main()
