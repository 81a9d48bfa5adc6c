"""Video decoding: clips per second for PyAV seek-and-decode, PyAV decoding the whole file, and JPEG frame
folders (plus torchcodec / decord when they are installed), the same clips, through the real datamodule
and DataLoader workers.

Videos: ``--videos`` generated moving-shapes videos of ``--frames`` frames at ``--size`` pixels, written as
H.264 mp4 (a key frame every ``--gop`` frames, as web video typically has every few seconds) and as
``img_00001.jpg`` frame folders, with GluonCV list files. Clips: the validation protocol of
``VideoListDataModule`` (``--clips`` uniformly spaced clips of ``--clip-len`` frames at stride
``--stride`` per video, centre crop), so every reader decodes exactly the same frames. Each reader runs
``--rounds`` times, alternating; the median clips/s (wall clock, ``--workers`` worker processes) is
reported.

    python benchmarks/bench_video_decoding.py            # 24 videos x 300 frames, 128 px, 2 workers
    python benchmarks/bench_video_decoding.py --quick    # 8 videos x 150 frames
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from litzoo.datamodules.action_recognition.formats import VideoRecord, write_list_file  # noqa: E402
from litzoo.datamodules.action_recognition.moving_shapes import draw_clip, write_mp4  # noqa: E402


def write_dataset(root: Path, videos: int, frames: int, size: int, gop: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    video_records, frame_records = [], []
    for index in range(videos):
        clip = draw_clip(rng, index % 6, frames, size)
        write_mp4(root / "videos" / f"v{index:03d}.mp4", clip, gop=gop)
        folder = root / "rawframes" / f"v{index:03d}"
        folder.mkdir(parents=True)
        for number, image in enumerate(clip, start=1):
            Image.fromarray(image).save(folder / f"img_{number:05d}.jpg", quality=90)
        video_records.append(VideoRecord(f"v{index:03d}.mp4", index % 6))
        frame_records.append(VideoRecord(f"v{index:03d}", index % 6, frames))
    for source, records in (("videos", video_records), ("rawframes", frame_records)):
        for split in ("train", "val"):
            write_list_file(root / source / f"{split}.txt", records)


def clips_per_second(root: Path, decoder: str, seek: bool, args: argparse.Namespace) -> float:
    from torch.utils.data import DataLoader

    from litzoo.datamodules.action_recognition.datamodule import VideoListDataModule

    datamodule = VideoListDataModule(
        str(root),
        clip_len=args.clip_len,
        frame_stride=args.stride,
        crop_size=args.size - 16,
        eval_short_side=args.size,
        val_clips=args.clips,
        val_crops=1,
        decoder=decoder,
        seek=seek,
        batch_size=4,
    )
    dataset = datamodule.dataset_for("val")
    loader = DataLoader(dataset, batch_size=4, num_workers=args.workers, persistent_workers=False)
    start = time.perf_counter()
    count = sum(len(batch[1]) for batch in loader)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--videos", type=int, default=None)
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--gop", type=int, default=32)
    parser.add_argument("--clip-len", type=int, default=8)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--clips", type=int, default=3, help="clips per video")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    args.videos = args.videos or (8 if args.quick else 24)
    args.frames = args.frames or (150 if args.quick else 300)
    readers = {
        "PyAV, seek to the clip (default)": ("videos", "pyav", True),
        "PyAV, decode from the start": ("videos", "pyav", False),
        "JPEG frame folders": ("rawframes", "pyav", True),
    }
    for optional in ("torchcodec", "decord"):
        if importlib.util.find_spec(optional) is not None:
            readers[optional] = ("videos", optional, True)
        else:
            print(f"({optional} is not installed here: not measured)")
    with tempfile.TemporaryDirectory(prefix="litzoo-bench-video-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        write_dataset(root, args.videos, args.frames, args.size, args.gop)
        print(
            f"Wrote {args.videos} videos of {args.frames} frames ({args.size} px) in {time.perf_counter() - started:.1f} s"
        )
        results: dict[str, list[float]] = {name: [] for name in readers}
        for round_index in range(args.rounds):
            order = list(readers) if round_index % 2 == 0 else list(readers)[::-1]
            for name in order:
                source, decoder, seek = readers[name]
                results[name].append(clips_per_second(root / source, decoder, seek, args))
    print(
        f"\n{args.videos} videos x {args.clips} clips of {args.clip_len} frames at stride {args.stride} "
        f"(key frame every {args.gop}), {args.workers} workers, {args.rounds} alternating rounds; clips/s, median [min-max]:"
    )
    base = statistics.median(results["PyAV, decode from the start"])
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:<36} {median:8.1f}  [{min(values):.1f}-{max(values):.1f}]   x{median / base:.2f}")


if __name__ == "__main__":
    main()
