"""Does ``python -m litzoo.benchmark`` measure the model, or itself? Side by side with a plain loop.

The plain loop is what people write (and what timm's ``benchmark.py`` does): ``timm.create_model``,
a random batch, ``torch.no_grad()``, warm-up, then ``perf_counter`` around each call, and an
``onnxruntime.InferenceSession`` over a plain ``torch.onnx.export``. litzoo's benchmark builds the
same network through the config tree and times it on a real digits batch. The two are run
alternately, ``--rounds`` times, in this process, with the same thread count; the medians of the
per-batch latencies should agree within the machine's noise.

    OMP_NUM_THREADS=1 python benchmarks/bench_inference.py --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def plain_eager(batch: int, size: int, warmup: int, repeats: int) -> float:
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model("resnet18", in_chans=1, num_classes=10).eval()
    x = torch.rand(batch, 1, size, size)
    with torch.no_grad():
        for _ in range(warmup + 1):
            model(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def plain_onnx(batch: int, size: int, warmup: int, repeats: int) -> float:
    import onnxruntime as ort
    import timm
    import torch

    model = timm.create_model("resnet18", in_chans=1, num_classes=10).eval()
    x = torch.rand(batch, 1, size, size)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        torch.onnx.export(model, (x,), str(path), input_names=["x"], dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}
        for _ in range(warmup + 1):
            session.run(None, feed)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            session.run(None, feed)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def litzoo_rows(batch: int, size: int, warmup: int, repeats: int, csv: Path) -> dict[str, float]:
    from litzoo.benchmark.cli import main
    from litzoo.benchmark.results import read_rows

    before = len(read_rows(csv)) if csv.is_file() else 0
    args = [f"batch_size={batch}", f"warmup={warmup}", f"repeats={repeats}", "isolate=false"]
    assert main([*args, f"data.image_size={size}", "backends=eager,onnx", f"csv={csv}"]) == 0
    return {row["backend"]: row["latency_ms_median"] for row in read_rows(csv)[before:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    import torch

    results: dict[str, list[float]] = {
        k: [] for k in ("plain eager", "litzoo eager", "plain onnx", "litzoo onnx")
    }
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "inference.csv"
        for _ in range(args.rounds):
            results["plain eager"].append(plain_eager(args.batch, args.size, args.warmup, args.repeats))
            results["plain onnx"].append(plain_onnx(args.batch, args.size, args.warmup, args.repeats))
            rows = litzoo_rows(args.batch, args.size, args.warmup, args.repeats, csv)
            results["litzoo eager"].append(rows["eager"])
            results["litzoo onnx"].append(rows["onnx"])
    print(
        f"resnet18, batch {args.batch}, 1x{args.size}x{args.size}, {torch.get_num_threads()} thread(s), "
        f"{args.rounds} rounds of {args.warmup} warm-up + {args.repeats} timed calls"
    )
    print(f"{'':14} {'median latency per batch (ms), per round':>44}")
    for name, values in results.items():
        print(
            f"{name:14} "
            + "  ".join(f"{v:8.2f}" for v in values)
            + f"   median {statistics.median(values):8.2f}"
        )


if __name__ == "__main__":
    main()
