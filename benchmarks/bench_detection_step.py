"""R-CNN training-step and inference time on 128-px images: torchvision's head sizes vs litzoo's CPU defaults.

    python benchmarks/bench_detection_step.py [--kind faster_rcnn] [--batch 4] [--repeats 5] [--threads 2]

Both models are ``litzoo.models.detection`` builds of the same ResNet-18 FPN detector on the
same random batch (128 x 128 images, 3 objects each, 3 classes); they differ only in the FPN
width, the two-FC box head's width and the RoIs sampled per image for the box loss:

- torchvision: ``fpn_channels=256``, ``box_head_dim=1024`` (``small_images`` keeps 128 RoIs),
- litzoo default (``conf/model/faster_rcnn.yaml``): 128, 256 and 64 RoIs.

Steps alternate between the two models so that load from other processes affects both alike;
the script prints the median seconds per training step (forward, backward, SGD step) and per
inference batch, and the speed-up.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from litzoo.models.detection import build_faster_rcnn, build_keypoint_rcnn, build_mask_rcnn

ANCHORS = [[16], [32], [64], [128], [256]]
SETTINGS = {
    "torchvision": {"fpn_channels": 256, "box_head_dim": None},
    "litzoo default": {"fpn_channels": 128, "box_head_dim": 256, "box_batch_size_per_image": 64},
}
BUILDERS: dict[str, Callable[..., torch.nn.Module]] = {
    "faster_rcnn": lambda **kw: build_faster_rcnn(4, anchor_sizes=ANCHORS, **kw),
    "mask_rcnn": lambda **kw: build_mask_rcnn(4, anchor_sizes=ANCHORS, **kw),
    "keypoint_rcnn": lambda **kw: build_keypoint_rcnn(4, 2, anchor_sizes=ANCHORS, **kw),
}


def make_batch(kind: str, batch: int, generator: torch.Generator) -> tuple[list, list[dict]]:
    images, targets = [], []
    for _ in range(batch):
        images.append(torch.rand(3, 128, 128, generator=generator))
        corners = torch.randint(0, 72, (3, 2), generator=generator).float()
        sizes = torch.randint(20, 56, (3, 2), generator=generator).float()
        boxes = torch.cat([corners, corners + sizes], dim=1)
        target = {
            "boxes": boxes,
            "labels": torch.tensor([1, 2, 3]) if kind != "keypoint_rcnn" else torch.ones(3).long(),
        }
        if kind == "mask_rcnn":
            masks = torch.zeros(3, 128, 128, dtype=torch.uint8)
            for i, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
                masks[i, y1:y2, x1:x2] = 1
            target["masks"] = masks
        if kind == "keypoint_rcnn":
            x1, y1, x2, y2 = boxes.unbind(1)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            points = [(cx, y1), (x1, cy), (x2, cy), (cx, y2)]
            target["keypoints"] = torch.stack(
                [torch.stack([x, y, torch.full_like(x, 2)], -1) for x, y in points], 1
            )
        targets.append(target)
    return images, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", choices=sorted(BUILDERS), default="faster_rcnn")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images, targets = make_batch(args.kind, args.batch, torch.Generator().manual_seed(0))
    models = {name: BUILDERS[args.kind](**kw) for name, kw in SETTINGS.items()}
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for name, m in models.items()}
    train_times: dict[str, list[float]] = {name: [] for name in models}
    eval_times: dict[str, list[float]] = {name: [] for name in models}
    for repeat in range(args.repeats + 1):  # the first round warms up (allocations, oneDNN kernels)
        for name, model in models.items():
            model.train()
            start = time.perf_counter()
            loss = sum(model(images, targets).values())
            optimizers[name].zero_grad()
            loss.backward()
            optimizers[name].step()
            elapsed = time.perf_counter() - start
            model.eval()
            with torch.no_grad():
                start = time.perf_counter()
                model(images)
                evaluated = time.perf_counter() - start
            if repeat:
                train_times[name].append(elapsed)
                eval_times[name].append(evaluated)
    print(f"{args.kind}, batch {args.batch} x 128 px, {args.threads} thread(s), median of {args.repeats}:")
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(
            f"  {name:<15} {params:5.1f} M params  train step {statistics.median(train_times[name]):6.3f} s"
            f"  inference {statistics.median(eval_times[name]):6.3f} s"
        )
    base, ours = (statistics.median(train_times[n]) for n in SETTINGS)
    print(f"  training step speed-up: {base / ours:.2f}x")


if __name__ == "__main__":
    main()
