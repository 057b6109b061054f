"""`looks catalog`: write an offline gallery (index.html, catalog.md, previews/) of recipes.

Reads the recipes and their manifests (offline, like `looks status`), downloads the
previews it does not have yet, and writes only the files whose bytes change: a second
run with nothing changed downloads nothing and rewrites nothing.

A preview that cannot be downloaded is a warning line on stderr and a placeholder in the
gallery; the rest is still written, and the command exits 1 at the end.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tenacity import stop_after_attempt, stop_before_delay

from engine.catalog import (
    IMAGE_EXTENSIONS,
    PREVIEW_DIR,
    Catalog,
    CatalogError,
    build_section,
    preview_path,
    preview_stem,
    render_html,
    render_markdown,
    sniff_image,
    summary,
    with_previews,
)
from engine.client import HeyGenClient, RetryPolicy, redact_url
from engine.commands.plan import recipe_label
from engine.commands.validate import load_all
from engine.errors import LooksError
from engine.manifest import manifest_path_for, read_manifest
from engine.recipe import MAX_LOOKS
from engine.settings import DEFAULT_BASE_URL

# Previews are fetched without credentials (HeyGenClient.fetch_bytes never sends a key), so
# the catalog needs no HEYGEN_API_KEY; the client only insists on a well-formed one.
_NO_KEY = "catalog-sends-no-key"
_PARALLEL_DOWNLOADS = 8
_MAX_PREVIEW_BYTES = 50 * 1024 * 1024


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


def run(
    recipes: Sequence[Path], *, manifest: Path | None, out: Path, max_looks: int = MAX_LOOKS
) -> int:
    # Offline: the gallery shows what the manifests record; the media need not be on disk.
    loaded = load_all(recipes, max_looks=max_looks, media="optional")
    sections = []
    for recipe in loaded:
        path = manifest or manifest_path_for(recipe.path)
        records = read_manifest(path, recipe_label(recipe, path)).nodes
        sections.append(build_section(recipe, records, _shown_path(recipe.path, out)))
    catalog = Catalog(tuple(sections))

    _make_dir(out / PREVIEW_DIR)
    previews, downloads = find_previews(out, catalog.wanted_previews())
    failed: list[str] = []
    written = 0
    for fetched in asyncio.run(fetch_all(downloads)) if downloads else []:
        d = fetched.download
        if fetched.data is None:
            print(
                f"looks: warning: {d.address}: cannot download the preview of {d.look_id}"
                f" from {redact_url(d.url)}: {fetched.error}",
                file=sys.stderr,
            )
            failed.append(d.look_id)
            continue
        extension = sniff_image(fetched.data)
        assert extension is not None  # fetch_all turns anything else into an error
        relative = preview_path(d.look_id, extension)
        written += write_if_changed(out / relative, fetched.data)
        previews[d.look_id] = relative

    catalog = with_previews(catalog, previews, failed)
    written += write_if_changed(out / "index.html", render_html(catalog).encode())
    written += write_if_changed(out / "catalog.md", render_markdown(catalog).encode())
    removed = remove_stale_previews(out, set(previews.values()))

    done = f"{_count(written, 'file')} written" if written else "nothing changed"
    if removed:
        done += f", {_count(removed, 'stale preview')} removed"
    print(f"{out / 'index.html'}: {summary(catalog)} ({done})")
    if failed:
        print(
            f"looks: {_count(len(failed), 'preview')} could not be downloaded; the gallery"
            " shows a placeholder for each (run again to retry)",
            file=sys.stderr,
        )
        return 1
    return 0


def _shown_path(recipe: Path, out: Path) -> str:
    """The recipe's path relative to the gallery, so the page reads the same from any cwd."""
    return Path(os.path.relpath(recipe.resolve(), out.resolve())).as_posix()


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
    retry = RetryPolicy(stop=stop_after_attempt(3) | stop_before_delay(30))
    gate = asyncio.Semaphore(_PARALLEL_DOWNLOADS)
    base_url = os.environ.get("HEYGEN_BASE_URL", DEFAULT_BASE_URL).rstrip("/")
    if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
        base_url = DEFAULT_BASE_URL  # unused by fetch_bytes, which takes absolute URLs

    async with HeyGenClient(base_url, _NO_KEY, retry=retry, timeout=30.0) as client:

        async def one(download: Download) -> Fetched:
            async with gate:
                try:
                    data = await client.fetch_bytes(download.url)
                except LooksError as e:
                    return Fetched(download, error=str(e).replace(download.url, "<url>"))
                except ValueError as e:
                    return Fetched(download, error=str(e))
            if len(data) > _MAX_PREVIEW_BYTES:
                return Fetched(download, error=f"too large ({len(data)} bytes)")
            if sniff_image(data) is None:
                return Fetched(download, error="the answer is not a PNG, JPEG, GIF or WebP image")
            return Fetched(download, data=data)

        return list(await asyncio.gather(*(one(d) for d in downloads)))


def _make_dir(path: Path) -> None:
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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
