"""Regenerate the example media: `python recipes/media/make_media.py`.

The project makes its own fixtures so that no third-party photo or footage is committed:
small gradient portraits (PNG) and a minimal MP4 container for the digital twin.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

HERE = Path(__file__).parent


def png(width: int, height: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> bytes:
    """A vertical gradient with a lighter oval 'face' in the middle."""
    rows = []
    for y in range(height):
        t = y / max(height - 1, 1)
        base = [round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)]
        row = bytearray([0])
        for x in range(width):
            dx, dy = (x - width / 2) / (width / 4), (y - height / 2.6) / (height / 5)
            inside = dx * dx + dy * dy <= 1
            row += bytes(min(255, c + 90) if inside else c for c in base)
        rows.append(bytes(row))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def mp4() -> bytes:
    """An ISO base media file: ftyp, an empty moov and a small mdat; enough to be typed as MP4."""

    def box(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + tag + payload

    mvhd = box(b"mvhd", bytes(4) + bytes(8) + struct.pack(">II", 1000, 0) + bytes(80))
    return (
        box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
        + box(b"moov", mvhd)
        + box(b"mdat", bytes(64))
    )


def main() -> None:
    (HERE / "sarah.png").write_bytes(png(96, 128, (70, 90, 140), (20, 30, 60)))
    (HERE / "marco.png").write_bytes(png(96, 128, (150, 100, 60), (60, 40, 20)))
    (HERE / "office.png").write_bytes(png(64, 64, (200, 210, 190), (90, 120, 80)))
    (HERE / "alex.mp4").write_bytes(mp4())
    # team.yaml: a team from team.csv, guests from a folder.
    (HERE / "ana.png").write_bytes(png(96, 128, (120, 70, 110), (40, 20, 50)))
    (HERE / "ben.png").write_bytes(png(96, 128, (60, 120, 110), (20, 50, 45)))
    (HERE / "chloe.png").write_bytes(png(96, 128, (140, 130, 70), (55, 50, 20)))
    guests = HERE.parent / "guests"
    guests.mkdir(exist_ok=True)
    (guests / "lee.png").write_bytes(png(96, 128, (90, 90, 150), (30, 30, 70)))
    (guests / "kim.png").write_bytes(png(96, 128, (150, 80, 80), (70, 25, 25)))


if __name__ == "__main__":
    main()
