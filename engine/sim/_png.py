"""Tiny PNG encoder: the simulator's preview images, one colour per look."""

from __future__ import annotations

import hashlib
import struct
import zlib
from functools import lru_cache

PREVIEW_WIDTH = 270
PREVIEW_HEIGHT = 480


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(width: int, height: int, rows: list[bytes]) -> bytes:
    """An 8-bit RGB PNG from `height` rows of `width * 3` bytes each."""
    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


def colour_for(key: str) -> tuple[int, int, int]:
    """A stable colour derived from `key`, so every look's preview differs."""
    d = hashlib.sha256(key.encode()).digest()
    return d[0], d[1], d[2]


@lru_cache(maxsize=512)
def preview_png(key: str) -> bytes:
    """A portrait preview: a solid field in the key's colour with a lighter 'head' disc."""
    w, h = PREVIEW_WIDTH, PREVIEW_HEIGHT
    r, g, b = colour_for(key)
    bg = bytes((r, g, b)) * w
    lr, lg, lb = (r + 255) // 2, (g + 255) // 2, (b + 255) // 2
    cx, cy, rad = w // 2, h // 3, w // 5
    rows: list[bytes] = []
    for y in range(h):
        dy = y - cy
        if abs(dy) >= rad:
            rows.append(bg)
            continue
        half = int((rad * rad - dy * dy) ** 0.5)
        row = bytearray(bg)
        row[(cx - half) * 3 : (cx + half) * 3] = bytes((lr, lg, lb)) * (2 * half)
        rows.append(bytes(row))
    return encode_png(w, h, rows)
