"""Writing a catalog to a directory: index.html, catalog.md and previews/.

Downloads the previews it does not have yet and writes only the files whose bytes change:
a second run with nothing changed downloads nothing and rewrites nothing. A preview that
cannot be downloaded is reported (on_failed) and shown as a placeholder; the rest is
still written.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .catalog import (
    IMAGE_EXTENSIONS,
    PREVIEW_DIR,
    Catalog,
    CatalogError,
    preview_path,
    preview_stem,
    render_html,
    render_markdown,
    sniff_image,
    with_previews,
)
from .downloads import Downloader
from .errors import LooksError

PARALLEL_DOWNLOADS = 8
MAX_PREVIEW_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Download:
    """One preview to fetch."""

    look_id: str
    address: str
    url: str


@dataclass(frozen=True)
class Fetched:
    """A downloaded preview (data) or why it could not be (error)."""

    download: Download
    data: bytes | None = None
    error: str | None = None


@dataclass(frozen=True)
class Gallery:
    """What writing a catalog did."""

    index: Path  # the gallery's index.html
    catalog: Catalog  # with the previews it shows
    written: int  # files written (their bytes changed)
    removed: int  # stale previews deleted
    failed: tuple[Fetched, ...]  # previews that could not be downloaded

    @property
    def ok(self) -> bool:
        return not self.failed


def write_gallery(
    catalog: Catalog, out: Path, on_failed: Callable[[Fetched], None] | None = None
) -> Gallery:
    """Write the catalog into `out`, downloading missing previews; see the module doc."""
    make_dir(out / PREVIEW_DIR)
    previews, downloads = find_previews(out, catalog.wanted_previews())
    failed: list[Fetched] = []
    written = 0
    for fetched in asyncio.run(fetch_all(downloads)) if downloads else []:
        d = fetched.download
        if fetched.data is None:
            if on_failed is not None:
                on_failed(fetched)
            failed.append(fetched)
            continue
        extension = sniff_image(fetched.data)
        assert extension is not None  # fetch_all turns anything else into an error
        relative = preview_path(d.look_id, extension)
        written += write_if_changed(out / relative, fetched.data)
        previews[d.look_id] = relative

    catalog = with_previews(catalog, previews, [f.download.look_id for f in failed])
    written += write_if_changed(out / "index.html", render_html(catalog).encode())
    written += write_if_changed(out / "catalog.md", render_markdown(catalog).encode())
    removed = remove_stale_previews(out, set(previews.values()))
    return Gallery(out / "index.html", catalog, written, removed, tuple(failed))


def find_previews(
    out: Path, wanted: Mapping[str, tuple[str, str]]
) -> tuple[dict[str, str], list[Download]]:
    """Previews already in `out` (look id -> relative path) and those still to download."""
    present: dict[str, str] = {}
    missing: list[Download] = []
    for look_id, (address, url) in wanted.items():
        for extension in IMAGE_EXTENSIONS:
            relative = preview_path(look_id, extension)
            file = out / relative
            if file.is_file() and file.stat().st_size > 0:
                present[look_id] = relative
                break
        else:
            missing.append(Download(look_id, address, url))
    return present, missing


async def fetch_all(downloads: Sequence[Download]) -> list[Fetched]:
    """Download previews a few at a time, in order; errors are returned, not raised."""
    gate = asyncio.Semaphore(PARALLEL_DOWNLOADS)
    async with Downloader(timeout=30.0) as downloader:

        async def one(download: Download) -> Fetched:
            async with gate:
                try:
                    data = await downloader.fetch(download.url)
                except LooksError as e:
                    return Fetched(download, error=str(e).replace(download.url, "<url>"))
                except ValueError as e:
                    return Fetched(download, error=str(e))
            if len(data) > MAX_PREVIEW_BYTES:
                return Fetched(download, error=f"too large ({len(data)} bytes)")
            if sniff_image(data) is None:
                return Fetched(download, error="the answer is not a PNG, JPEG, GIF or WebP image")
            return Fetched(download, data=data)

        return list(await asyncio.gather(*(one(d) for d in downloads)))


def make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CatalogError(f"{path}: exists and is not a directory") from None
    except OSError as e:
        raise CatalogError(f"{path}: cannot create directory: {e.strerror}") from None


def write_if_changed(path: Path, data: bytes) -> int:
    """Write `data` atomically unless the file already holds exactly it; 1 if written."""
    try:
        if path.read_bytes() == data:
            return 0
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise CatalogError(f"{path}: is a directory") from None
    except OSError as e:
        raise CatalogError(f"{path}: cannot read: {e.strerror}") from None
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(temp, 0o644)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise CatalogError(f"{path}: cannot write: {e.strerror}") from None
    return 1


def remove_stale_previews(out: Path, keep: set[str]) -> int:
    """Delete previews of looks no longer shown (replaced, removed from the recipe).

    Only files named like previews (`<stem>.<image extension>`) are touched.
    """
    removed = 0
    for file in sorted((out / PREVIEW_DIR).iterdir()):
        stem, _, extension = file.name.rpartition(".")
        relative = f"{PREVIEW_DIR}/{file.name}"
        if (
            extension in IMAGE_EXTENSIONS
            and stem == preview_stem(stem)
            and file.is_file()
            and relative not in keep
        ):
            try:
                file.unlink()
            except OSError as e:
                raise CatalogError(f"{file}: cannot remove stale preview: {e.strerror}") from None
            removed += 1
    return removed
