"""Embedded action-recognition dataset: shapes whose *motion* is the class, written as mp4 files and frame folders.

No video dataset can be downloaded here, so this module draws one and writes it in the two
GluonCV/MMAction list-file formats, so ``data=moving_shapes`` runs the real readers and decoders::

    <root>/videos/classes.txt                     one class name per line
    <root>/videos/{train,val,test}.txt            <class>/<id>.mp4 <label>
    <root>/videos/<class>/<id>.mp4                H.264 (libx264), yuv420p, a key frame every 8 frames
    <root>/rawframes/classes.txt
    <root>/rawframes/{train,val,test}.txt         <class>/<id> <num_frames> <label>
    <root>/rawframes/<class>/<id>/img_00001.jpg ...

Each video films a random textured scene (a smooth colour field crowded with 64 overlapping discs,
squares and triangles) through a moving window. The six classes are motions of the scene across the frame:
``move_left``, ``move_right``, ``move_up``, ``move_down`` (a pan at a random speed from a random place)
and ``grow``, ``shrink`` (a zoom in or out). Every frame of a clip shows the same kind of picture, and a
left pan and a right pan leave the same average image, so a model that averages frames (TSN on this
data) cannot tell the classes apart; a model that sees time can.

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

GENERATOR_VERSION = 4
MARKER_NAME = ".litzoo_moving_shapes.json"
MOTION_CLASSES = ("move_left", "move_right", "move_up", "move_down", "grow", "shrink")
SOURCES = ("videos", "rawframes")
FPS = 12
GOP = 8
SHAPES_PER_SCENE = 64


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
    """``num_frames x size x size x 3`` uint8 frames of one video of class `label`.

    A textured scene (a smooth colour field with 64 shapes) twice the frame's size is filmed by a
    window that pans (the scene moves left/right/up/down across the frame) or zooms (it grows or shrinks),
    at a random speed from a random place; every frame gets its own sensor noise.
    """
    canvas = 2 * size
    scene = Image.fromarray(_background(rng, canvas))
    draw = ImageDraw.Draw(scene)
    # Crowded on purpose: with a dozen shapes a frame showed two or three edges, too little motion for a
    # small 3D CNN to learn from 360 videos (val ~0.22, chance 0.17); with 64, 0.97 in the same 270 steps.
    for _ in range(SHAPES_PER_SCENE):
        x, y = rng.uniform(0, canvas, size=2)
        colour = tuple(int(c) for c in rng.integers(30, 256, size=3))
        _shape(draw, int(rng.integers(0, 3)), x, y, size * rng.uniform(0.06, 0.16), colour)
    motion = MOTION_CLASSES[label]
    speed = size * rng.uniform(0.35, 0.6) / num_frames  # pixels per frame
    travel = speed * (num_frames - 1)
    frames = []
    if motion in ("grow", "shrink"):
        cx, cy = rng.uniform(0.75 * size, 1.25 * size, size=2)
        big, small = 1.4 * size, 0.7 * size
    else:
        x0, y0 = rng.uniform(0, canvas - size - travel, size=2)
    for t in range(num_frames):
        if motion in ("grow", "shrink"):
            share = t / (num_frames - 1)
            width = big + (small - big) * share if motion == "grow" else small + (big - small) * share
            box = (cx - width / 2, cy - width / 2, cx + width / 2, cy + width / 2)
        else:
            # the scene moves right = the window moves left over it
            dx = {"move_right": travel - speed * t, "move_left": speed * t}.get(motion, 0.0)
            dy = {"move_down": travel - speed * t, "move_up": speed * t}.get(motion, 0.0)
            box = (x0 + dx, y0 + dy, x0 + dx + size, y0 + dy + size)
        image = scene.resize((size, size), Image.BILINEAR, box=box)
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
