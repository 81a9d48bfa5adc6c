"""Turn colour-coded (RGB) segmentation masks into label PNGs: one class index per pixel.

Many tools export masks as colour images (VOC's colours, Cityscapes' colours, a tool's own); the
segmentation datasets here read label PNGs. Each colour is matched exactly to its class in a
palette, and the result is written as a palette PNG (indices + the palette, so it stays viewable)::

    python -m litzoo.datamodules.segmentation.convert_masks masks_rgb/ masks/ --palette voc
    python -m litzoo.datamodules.segmentation.convert_masks masks_rgb/ masks/ --palette colours.txt

``--palette`` is ``voc`` (index 255 = VOC's void colour), ``cityscapes`` (the 19 train ids) or a text
file with one ``r g b`` line per class, in class order. A colour that is in no palette entry stops
the conversion naming the file and the colour (``--unknown ignore`` maps it to 255 instead);
greyscale masks saved as RGB (three equal channels) are converted by value. Nothing is written for
a folder that fails: every file is checked before the first is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from litzoo.errors import DataError, LitzooError
from litzoo.vision.palette import CITYSCAPES_COLOURS, IGNORE_INDEX, save_palette_png, voc_palette


def load_palette(spec: str) -> np.ndarray:
    """``N x 3`` colours of classes 0..N-1 (VOC: all 256 entries, 255 = void)."""
    if spec == "voc":
        return voc_palette(256)
    if spec == "cityscapes":
        return np.asarray(CITYSCAPES_COLOURS, dtype=np.uint8)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise DataError(f"--palette {spec}: use voc, cityscapes or a file of 'r g b' lines (one per class).")
    rows = [line.replace(",", " ").split() for line in path.read_text().splitlines() if line.strip()]
    try:
        colours = np.asarray([[int(v) for v in row] for row in rows], dtype=np.int64)
    except ValueError:
        raise DataError(f"{path}: every line must be three integers 'r g b'.") from None
    if colours.ndim != 2 or colours.shape[1] != 3 or colours.min() < 0 or colours.max() > 255:
        raise DataError(f"{path}: every line must be three integers 0-255, 'r g b'.")
    return colours.astype(np.uint8)


def rgb_to_labels(
    rgb: np.ndarray, palette: np.ndarray, path: str = "?", unknown: str = "error"
) -> np.ndarray:
    """The class index of every pixel of an ``H x W x 3`` colour mask (exact colour match)."""
    if rgb.ndim == 3 and (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return rgb[..., 0].copy()  # a greyscale label mask saved as RGB
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    table = {
        (int(r) << 16) | (int(g) << 8) | int(b): i for i, (r, g, b) in reversed(list(enumerate(palette)))
    }
    labels = np.full(codes.shape, IGNORE_INDEX, dtype=np.uint8)
    for code in np.unique(codes):
        index = table.get(int(code))
        if index is None:
            if unknown == "error":
                colour = ((code >> 16) & 255, (code >> 8) & 255, code & 255)
                raise DataError(
                    f"{path}: colour {colour} is not in the palette; give the palette of the tool that "
                    "wrote the masks (--palette <file>), or --unknown ignore to map it to 255."
                )
            continue
        labels[codes == code] = index
    return labels


def convert_folder(source: Path, target: Path, palette: np.ndarray, unknown: str = "error") -> list[Path]:
    """Convert every PNG of `source` into `target` (same names); returns the written files."""
    files = sorted(p for p in source.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise DataError(f"{source} holds no .png masks to convert.")
    converted = []
    for path in files:  # everything is checked first: a failing folder writes nothing
        with Image.open(path) as image:
            if image.mode in ("P", "L"):
                converted.append((path, np.asarray(image)))
                continue
            converted.append(
                (path, rgb_to_labels(np.asarray(image.convert("RGB")), palette, str(path), unknown))
            )
    out_palette = np.zeros((256, 3), dtype=np.uint8)
    out_palette[: min(len(palette), 256)] = palette[:256]
    if len(palette) < 256:
        out_palette[IGNORE_INDEX] = voc_palette()[IGNORE_INDEX]
    return [save_palette_png(target / path.name, labels, out_palette) for path, labels in converted]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m litzoo.datamodules.segmentation.convert_masks",
        description="Convert colour (RGB) masks into label PNGs (palette PNGs).",
    )
    parser.add_argument("source", type=Path, help="folder of colour-coded .png masks")
    parser.add_argument("target", type=Path, help="folder for the label PNGs (may be the source)")
    parser.add_argument(
        "--palette", default="voc", help="voc, cityscapes, or a file of 'r g b' lines (class order)"
    )
    parser.add_argument(
        "--unknown",
        choices=("error", "ignore"),
        default="error",
        help="a colour in no palette entry: stop (error) or label it 255 (ignore)",
    )
    args = parser.parse_args(argv)
    try:
        written = convert_folder(args.source, args.target, load_palette(args.palette), args.unknown)
    except LitzooError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"Wrote {len(written)} label PNG(s) to {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
