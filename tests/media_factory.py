"""Real media made on the fly for tests: images, videos, and broken files of every kind."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw


def photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A synthetic 'photo' with structure at several scales, so PDQ has something to hash."""
    rng = np.random.default_rng(seed)
    width, height = size
    low = rng.random((6, 8, 3))
    base = np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize(size, Image.BICUBIC))
    image = Image.fromarray(base.copy())
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(20, 200)), y0 + int(rng.integers(20, 200))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    return image


def write_jpeg(
    path: Path, seed: int, size: tuple[int, int] = (640, 480), quality: int = 90
) -> Path:
    photo(seed, size).save(path, "JPEG", quality=quality)
    return path


def write_video(
    path: Path, seed: int, seconds: float = 4.0, fps: int = 10, size: tuple[int, int] = (320, 240)
) -> Path:
    """An H.264 MP4 of a slowly panning synthetic scene."""
    width, height = size
    scene = np.asarray(photo(seed, (width * 2, height)))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(int(seconds * fps)):
            offset = int(index * width / (seconds * fps))
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(scene[:, offset : offset + width]), format="rgb24"
            )
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def reencode(source: Path, target: Path, size: tuple[int, int], crf: int = 35) -> Path:
    """Decode, resize and re-encode at a lower quality: what a re-uploader's tool does."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        in_stream = src.streams.video[0]
        out = dst.add_stream("libx264", rate=in_stream.average_rate, options={"crf": str(crf)})
        out.width, out.height, out.pix_fmt = size[0], size[1], "yuv420p"
        for frame in src.decode(in_stream):
            resized = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            resized.pts = None
            dst.mux(out.encode(resized))
        dst.mux(out.encode(None))
    return target


def truncate(source: Path, target: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def png_bomb(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny PNG whose header claims a huge image: decoding it would need tens of GB."""
    Image.new("L", (1, 1)).save(path, "PNG")
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path
