"""Media judged by content: what a local file really is, and whether the API can take it.

Pure logic over a file's first bytes and size (`sniff`, `check`), plus `check_file`, which reads
only those few bytes, so a multi-gigabyte video is judged without being read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "DIRECT_UPLOAD_MAX_BYTES",
    "HEAD_BYTES",
    "SIMPLE_UPLOAD_MAX_BYTES",
    "MediaCheck",
    "check",
    "check_file",
    "sniff",
]

MediaKind = Literal["image", "video"]

# POST /v3/assets proxies the bytes and refuses more than 32 MB; larger files take the
# three-step direct upload. [D] in the API notes.
SIMPLE_UPLOAD_MAX_BYTES = 32 * 1024 * 1024
# The per-upload cap of a direct upload. HeyGen documents that the init answer carries it
# (`max_bytes`) but not its value; 5 GiB is the single-PUT ceiling of the object stores such
# URLs point at. The client still honours the `max_bytes` the server answers.
DIRECT_UPLOAD_MAX_BYTES = 5 * 1024**3
HEAD_BYTES = 64  # enough for every signature below

ACCEPTED: dict[MediaKind, frozenset[str]] = {
    "image": frozenset({"image/png", "image/jpeg"}),
    "video": frozenset({"video/mp4", "video/webm"}),
}
_WANTED = {"image": "a PNG or JPEG image", "video": "an MP4 or WebM video"}


@dataclass(frozen=True)
class MediaCheck:
    """The verdict on one file: its media type by content, or why the API would refuse it."""

    media_type: str | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def sniff(head: bytes) -> str | None:
    """The media type of a file from its first bytes; None when it is nothing we know."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        # EBML: WebM names its DocType in the header; anything else is Matroska.
        return "video/webm" if b"webm" in head else "video/x-matroska"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic"
        return "video/mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith(b"%PDF"):
        return "application/pdf"
    if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "text/plain"
    return None


def check(head: bytes, size: int, wanted: MediaKind) -> MediaCheck:
    """Whether a file whose first bytes are `head` and whose size is `size` is `wanted` media."""
    if size == 0:
        return MediaCheck(None, "is empty")
    found = sniff(head)
    if found not in ACCEPTED[wanted]:
        what = found or "unknown bytes"
        return MediaCheck(found, f"must be {_WANTED[wanted]}, not {what}")
    if size > DIRECT_UPLOAD_MAX_BYTES:
        return MediaCheck(
            found,
            f"is {size} bytes, over the {_size(DIRECT_UPLOAD_MAX_BYTES)} an upload may carry",
        )
    return MediaCheck(found)


def check_file(path: Path, wanted: MediaKind) -> MediaCheck:
    """`check` on a local file, reading only its first bytes."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(HEAD_BYTES)
    except OSError as e:
        return MediaCheck(None, f"cannot be read: {e.strerror or e}")
    return check(head, size, wanted)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
