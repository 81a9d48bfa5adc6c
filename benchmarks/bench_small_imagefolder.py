"""Test accuracy on a small set of real grey 32-px photos: litzoo's default recipe versus a plain timm loop.

The data: 200 photos in the ImageFolder layout, two classes, 32 x 32 grey. They are cut from
the two real photographs scikit-learn ships (`china.jpg`, a temple, and `flower.jpg`), as
random square crops of 48-160 px scaled down to 32 px, so nothing is downloaded: 70 + 70
train, 15 + 15 val, 15 + 15 test images, the same files on every run (seeded).

Side by side, on the same files, with the same ResNet-18 (timm, 1 input channel), optimizer
(SGD, lr 0.1, Nesterov momentum 0.9, weight decay 5e-4), batch size (64) and epochs (12):

- litzoo: `python train.py data=imagefolder data.root=<root> data.in_chans=1`, the default
  recipe (cosine schedule with warmup, checkpoint with the best val accuracy for test);
- litzoo with the pre-0.2 defaults (`data.image_size=224 data.scale=[0.08,1.0] data.crop_pct=0.875`:
  photos upsampled 7x and cropped to as little as 8 % of their area);
- a plain timm loop at the photos' own 32 px: random horizontal flips, cosine schedule, test
  accuracy after the last epoch.

Measured (2-core CPU shared with other jobs, so the timings mean little; seed 0, 30 test images,
one image = 0.033): litzoo default (auto: 32 px, scale [0.5, 1], crop_pct 1) 0.967; pre-0.2
defaults (224 px, scale [0.08, 1]) 1.000; plain timm loop at 32 px 0.933. On these photos the
224-px recipe is not worse, so the gap reported in issue 11 (0.93 vs 0.97-1.0) is not reproduced
here; the auto choice trains on 49x fewer pixels per image for the same accuracy within one image.

    python benchmarks/bench_small_imagefolder.py                 # all three, 3 seeds each
    python benchmarks/bench_small_imagefolder.py --seeds 1 --sides new,plain
    python benchmarks/bench_small_imagefolder.py --sides old --workdir /tmp/photos   # the slow 224-px side alone
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SPLITS = {"train": 70, "val": 15, "test": 15}  # per class
OLD_DEFAULTS = ["data.image_size=224", "data.scale=[0.08,1.0]", "data.crop_pct=0.875"]


def make_photos(root: Path, seed: int = 0) -> Path:
    """The two-class ImageFolder set described in the module docstring."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    rng = np.random.default_rng(seed)
    for name, photo in zip(("temple", "flower"), photos.images):
        grey = Image.fromarray(photo).convert("L")
        for split, count in SPLITS.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                side = int(rng.integers(48, 161))
                x = int(rng.integers(0, grey.width - side + 1))
                y = int(rng.integers(0, grey.height - side + 1))
                crop = grey.crop((x, y, x + side, y + side)).resize((32, 32), Image.Resampling.BILINEAR)
                crop.save(folder / f"{name}_{split}_{i:03d}.png")
    return root


def litzoo_run(root: Path, run_dir: Path, seed: int, extra: list[str], epochs: int) -> dict:
    args = [
        sys.executable,
        str(ROOT / "train.py"),
        "data=imagefolder",
        f"data.root={root}",
        "data.in_chans=1",
        f"seed={seed}",
        f"trainer.max_epochs={epochs}",
        "trainer.enable_progress_bar=false",
        "callbacks.progress_bar=null",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"litzoo run failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    record = json.loads((run_dir / "run.json").read_text())
    log = (run_dir / "train.log").read_text()
    chosen = [line.split("] ", 1)[-1] for line in log.splitlines() if "=auto:" in line]
    return {"acc": record["metrics"]["test/acc_top1"], "seconds": seconds, "chosen": chosen}


def plain_timm_loop(root: Path, seed: int, epochs: int, batch_size: int = 64) -> dict:
    import timm
    import torch
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import v2

    torch.manual_seed(seed)
    start = time.perf_counter()
    finish = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.449], [0.226])]
    grey = v2.Grayscale(1)
    train = datasets.ImageFolder(str(root / "train"), v2.Compose([grey, v2.RandomHorizontalFlip(), *finish]))
    test = datasets.ImageFolder(str(root / "test"), v2.Compose([grey, *finish]))
    loader = DataLoader(
        train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    net = timm.create_model("resnet18", num_classes=2, in_chans=1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = epochs * math.ceil(len(train) / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(epochs):
        net.train()
        for images, labels in loader:
            loss = torch.nn.functional.cross_entropy(net(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    net.eval()
    with torch.no_grad():
        images, labels = next(iter(DataLoader(test, batch_size=len(test))))
        acc = (net(images).argmax(1) == labels).float().mean().item()
    return {"acc": acc, "seconds": time.perf_counter() - start, "chosen": []}


SIDES = {
    "new": "litzoo (default recipe)",
    "plain": "plain timm loop, 32 px",
    "old": "litzoo, pre-0.2 defaults (224 px, scale 0.08-1)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--epochs", type=int, default=12, help="the default recipe's (conf/trainer/default.yaml)"
    )
    parser.add_argument("--sides", default="new,plain,old", help=f"comma-separated, of {', '.join(SIDES)}")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep the photos and runs here (default: a temp dir)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        root = make_photos(work / "photos")
        run = {
            "new": lambda s: litzoo_run(root, work / f"new{s}", s, [], args.epochs),
            "plain": lambda s: plain_timm_loop(root, s, args.epochs),
            "old": lambda s: litzoo_run(root, work / f"old{s}", s, OLD_DEFAULTS, args.epochs),
        }
        results = {}
        for side in args.sides.split(","):
            results[SIDES[side]] = [
                run[side](seed) for seed in range(args.first_seed, args.first_seed + args.seeds)
            ]
    print(
        f"\n200 grey 32-px photos, 2 classes (140 train / 30 val / 30 test), ResNet-18, {args.epochs} epochs, "
        f"seeds 0..{args.seeds - 1}"
    )
    for name, runs in results.items():
        accs = [r["acc"] for r in runs]
        print(
            f"  {name:50s} test acc {statistics.mean(accs):.3f} (per seed: "
            f"{', '.join(f'{a:.3f}' for a in accs)}), {statistics.mean(r['seconds'] for r in runs):.0f} s per run"
        )
        for line in runs[0]["chosen"]:
            print(f"      {line}")


if __name__ == "__main__":
    main()
