"""Embedded action-recognition dataset: shapes whose *motion* is the class, written as mp4 files and frame folders.

No video dataset can be downloaded here, so this module draws one and writes it in the two
GluonCV/MMAction list-file formats, so ``data=moving_shapes`` runs the real readers and decoders::

    <root>/videos/classes.txt                     one class name per line
    <root>/videos/{train,val,test}.txt            <class>/<id>.mp4 <label>
    <root>/videos/<class>/<id>.mp4                H.264 (libx264), yuv420p, a key frame every 8 frames
    <root>/rawframes/classes.txt
    <root>/rawframes/{train,val,test}.txt         <class>/<id> <num_frames> <label>
    <root>/rawframes/<class>/<id>/img_00001.jpg ...

Each video shows one moving shape (disc, square or triangle; random colour) over a smooth textured,
noisy background. The six classes are motions: ``move_left``,
``move_right``, ``move_up``, ``move_down`` (the shape crosses the frame at a random speed from a
random start) and ``grow``, ``shrink`` (it stays and changes size). A left-moving and a
right-moving shape leave the same average image, so a model that averages frames (TSN on this
data) stays near chance on the four translations; a model that sees time separates them.

Deterministic given the parameters (x264 single-threaded), written once into a temporary folder
and moved into place with a marker last (:func:`litzoo.data.generated.ensure_generated`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from litzoo.data.generated import ensure_generated
from litzoo.datamodules.action_recognition.formats import VideoRecord, write_list_file
from litzoo.errors import DataError

log = logging.getLogger("litzoo")

GENERATOR_VERSION = 2
MARKER_NAME = ".litzoo_moving_shapes.json"
MOTION_CLASSES = ("move_left", "move_right", "move_up", "move_down", "grow", "shrink")
SOURCES = ("videos", "rawframes")
FPS = 12
GOP = 8


@dataclass(frozen=True)
class MovingShapesParams:
    num_train: int = 360
    num_val: int = 72
    num_test: int = 72
    num_frames: int = 16
    size: int = 48
    seed: int = 0


def generate_moving_shapes(
    root: str | os.PathLike,
    num_train: int = 360,
    num_val: int = 72,
    num_test: int = 72,
    num_frames: int = 16,
    size: int = 48,
    seed: int = 0,
) -> Path:
    """Write the dataset under ``root`` (or reuse a complete one) and return ``root``."""
    if size < 16 or size % 2 or num_frames < 4 or min(num_train, num_val, num_test) < 1:
        raise DataError(
            f"The moving-shapes generator needs an even frame size >= 16 (got {size}), at least 4 frames "
            f"(got {num_frames}) and at least one train, val and test video."
        )
    params = MovingShapesParams(num_train, num_val, num_test, num_frames, size, seed)
    root = Path(root).expanduser()
    written = ensure_generated(
        root,
        "moving-shapes",
        MARKER_NAME,
        {"version": GENERATOR_VERSION, "params": asdict(params)},
        SOURCES,
        lambda folder: _write(folder, params),
    )
    if written:
        log.info("Generated the moving-shapes videos in %s", root)
    return root


def _write(folder: Path, params: MovingShapesParams) -> None:
    import av  # noqa: F401  (fail here, with the ImportError, before anything is drawn)

    rng = np.random.default_rng(params.seed)
    for source in SOURCES:
        (folder / source).mkdir(parents=True)
        (folder / source / "classes.txt").write_text("\n".join(MOTION_CLASSES) + "\n", encoding="utf-8")
    counts = {"train": params.num_train, "val": params.num_val, "test": params.num_test}
    for split, count in counts.items():
        videos, frames = [], []
        for number in range(count):
            label = number % len(MOTION_CLASSES)  # balanced classes
            name = MOTION_CLASSES[label]
            clip = draw_clip(rng, label, params.num_frames, params.size)
            stem = f"{split}_{number:05d}"
            write_mp4(folder / "videos" / name / f"{stem}.mp4", clip)
            frame_dir = folder / "rawframes" / name / stem
            frame_dir.mkdir(parents=True)
            for index, image in enumerate(clip, start=1):
                Image.fromarray(image).save(frame_dir / f"img_{index:05d}.jpg", quality=95)
            videos.append(VideoRecord(f"{name}/{stem}.mp4", label))
            frames.append(VideoRecord(f"{name}/{stem}", label, len(clip)))
        write_list_file(folder / "videos" / f"{split}.txt", videos)
        write_list_file(folder / "rawframes" / f"{split}.txt", frames)


def draw_clip(rng: np.random.Generator, label: int, num_frames: int, size: int) -> np.ndarray:
    """``num_frames x size x size x 3`` uint8 frames of one video of class `label`."""
    background = _background(rng, size)
    shape = int(rng.integers(0, 3))
    colour = tuple(int(c) for c in rng.integers(40, 256, size=3))
    radius = size * rng.uniform(0.12, 0.18)
    motion = MOTION_CLASSES[label]
    speed = size * rng.uniform(0.5, 0.8) / num_frames  # pixels per frame: crosses most of the frame
    travel = speed * (num_frames - 1)
    margin = radius + 1
    lo, hi = margin, size - margin
    cx, cy = rng.uniform(lo, hi, size=2)
    if motion in ("move_left", "move_right"):
        cx = rng.uniform(lo, max(lo, hi - travel))
    if motion in ("move_up", "move_down"):
        cy = rng.uniform(lo, max(lo, hi - travel))
    frames = []
    for t in range(num_frames):
        x, y, r = cx, cy, radius
        if motion == "move_right":
            x = cx + speed * t
        elif motion == "move_left":
            x = cx + travel - speed * t
        elif motion == "move_down":
            y = cy + speed * t
        elif motion == "move_up":
            y = cy + travel - speed * t
        elif motion == "grow":
            r = radius * (0.5 + 1.0 * t / (num_frames - 1))
        elif motion == "shrink":
            r = radius * (1.5 - 1.0 * t / (num_frames - 1))
        image = Image.fromarray(background)
        draw = ImageDraw.Draw(image)
        _shape(draw, shape, x, y, r, colour)
        pixels = np.asarray(image, dtype=np.int16) + rng.normal(0, 4, size=(size, size, 3)).astype(np.int16)
        frames.append(np.clip(pixels, 0, 255).astype(np.uint8))
    return np.stack(frames)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.integers(0, 120, size=3)
    coarse = rng.normal(0, 15, size=(4, 4, 3))
    smooth = np.asarray(
        Image.fromarray(np.clip(coarse + 128, 0, 255).astype(np.uint8)).resize((size, size), Image.BILINEAR),
        dtype=np.float64,
    )
    return np.clip(base + smooth - 128 + 60, 0, 255).astype(np.uint8)


def _shape(draw: ImageDraw.ImageDraw, kind: int, x: float, y: float, r: float, colour: tuple) -> None:
    box = (x - r, y - r, x + r, y + r)
    if kind == 0:
        draw.ellipse(box, fill=colour)
    elif kind == 1:
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)


def write_mp4(path: Path, frames: np.ndarray, fps: int = FPS, gop: int = GOP) -> Path:
    """Encode RGB frames as an H.264 mp4 (yuv420p, a key frame every `gop` frames), single-threaded
    so that the bytes are a function of the frames."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {
            "crf": "18",
            "preset": "veryfast",
            "threads": "1",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }
        for image in frames:
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
