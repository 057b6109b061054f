"""`looks catalog`: the pure model and rendering, then end to end in real headless Chromium."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.server
import json
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import API_KEY, ROOT, Run

from looks import sim
from looks.catalog import (
    AvatarEntry,
    Card,
    Catalog,
    Section,
    build_section,
    md_text,
    preview_path,
    preview_stem,
    render_html,
    render_markdown,
    sniff_image,
    with_previews,
)
from looks.gallery import remove_stale_previews, write_if_changed
from looks.manifest import ErrorInfo, NodeRecord, manifest_path_for
from looks.plan import build_graph
from looks.recipe import load_recipe

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
EVIL = "<script>alert('x')</script> & \"quoted\" | pipe"


# -- pure: model ----------------------------------------------------------------------


def completed(address: str, kind: Any, fingerprint: str, look_id: str, **extra: Any) -> NodeRecord:
    return NodeRecord(
        address,
        kind,
        fingerprint,
        "completed",
        look_id=look_id,
        preview_image_url=f"http://127.0.0.1:9/_sim/previews/{look_id}.png",
        **extra,
    )


def sarah_records() -> tuple[Any, dict[str, NodeRecord]]:
    recipe = load_recipe(ROOT / "recipes" / "sarah.yaml")
    graph = build_graph(recipe)
    fp = {a: n.fingerprint for a, n in graph.items()}
    names = {a: n.name for a, n in graph.items()}
    records = {
        "sarah": completed("sarah", "base", fp["sarah"], "look_sarah", name=names["sarah"]),
        "sarah/navy-office": completed(
            "sarah/navy-office",
            "look",
            fp["sarah/navy-office"],
            "look_navy",
            name=names["sarah/navy-office"],
        ),
        "sarah/office-dusk": NodeRecord(
            "sarah/office-dusk",
            "look",
            fp["sarah/office-dusk"],
            "blocked",
            error=ErrorInfo("upstream_failed", "sarah/podcast <failed> first"),
        ),
        "sarah/podcast": NodeRecord(
            "sarah/podcast",
            "look",
            fp["sarah/podcast"],
            "failed",
            look_id="look_podcast",
            error=ErrorInfo("moderation_rejected", "the prompt was <refused>"),
        ),
        # marco's base was made from another photo: the recipe changed since.
        "marco": completed("marco", "base", "0" * 64, "look_marco", name="Marco"),
    }
    return recipe, records


def test_section_follows_recipe_order_with_statuses_reasons_and_from() -> None:
    recipe, records = sarah_records()
    section = build_section(recipe, records, "../recipes/sarah.yaml")
    assert section.recipe == "../recipes/sarah.yaml"
    assert [a.address for a in section.avatars] == ["sarah", "marco"]
    cards = {c.address: c for a in section.avatars for c in a.cards}
    assert [c.address for c in section.avatars[0].cards] == [
        "sarah",
        "sarah/navy-office",
        "sarah/office-dusk",
        "sarah/podcast",
    ]
    assert cards["sarah"].kind == "base"
    assert cards["sarah"].built_from == "photo media/sarah.png"
    assert cards["sarah/office-dusk"].built_from == "sarah/navy-office"
    assert cards["sarah/podcast"].built_from == "sarah (base)"
    assert cards["sarah/navy-office"].name == "Sarah — Navy Office"
    assert cards["sarah/navy-office"].prompt == (
        "Wearing a navy blazer, modern office background with plants, soft studio light"
    )
    assert cards["sarah/navy-office"].look_id == "look_navy"
    assert cards["sarah/office-dusk"].status == "blocked"
    assert cards["sarah/office-dusk"].reason == "upstream_failed: sarah/podcast <failed> first"
    assert cards["sarah/podcast"].reason == "moderation_rejected: the prompt was <refused>"
    assert cards["marco/chef"].status == "not applied"
    assert cards["marco/chef"].look_id is None
    assert cards["marco"].note is not None and "out of date" in cards["marco"].note
    # Only completed looks with a URL are downloaded.
    assert set(Catalog((section,)).wanted_previews()) == {"look_sarah", "look_navy", "look_marco"}


def test_twin_base_card_shows_consent_status() -> None:
    recipe = load_recipe(ROOT / "recipes" / "twin.yaml")
    fp = {a: n.fingerprint for a, n in build_graph(recipe).items()}
    records = {
        "alex": completed("alex", "base", fp["alex"], "look_alex", name="Alex"),
        "consent:alex": NodeRecord("consent:alex", "consent", fp["consent:alex"], "pending"),
    }
    (avatar,) = build_section(recipe, records, "twin.yaml").avatars
    assert avatar.cards[0].built_from == "digital twin media/alex.mp4"
    assert avatar.cards[0].note == "consent: pending"


def card(**fields: Any) -> Card:
    defaults: dict[str, Any] = {
        "address": "sarah/navy",
        "kind": "look",
        "name": "Navy",
        "built_from": "sarah (base)",
        "status": "completed",
        "prompt": "A navy suit",
        "look_id": "look_1",
    }
    return Card(**{**defaults, **fields})


def catalog_of(*cards: Card, recipe: str = "recipes/sarah.yaml") -> Catalog:
    return Catalog((Section(recipe, (AvatarEntry("sarah", "Sarah", cards),)),))


# -- pure: HTML -----------------------------------------------------------------------


def test_html_escapes_everything_from_recipes_and_the_api() -> None:
    evil = card(
        address="sarah/x",
        name=EVIL,
        prompt=EVIL,
        built_from=EVIL,
        status="failed",
        look_id="look_\"'><img src=x onerror=alert(1)>",
        reason=EVIL,
        note=EVIL,
    )
    page = render_html(
        Catalog((Section(EVIL, (AvatarEntry("sarah", EVIL, (evil,)),)),)),
    )
    assert "<script>alert" not in page
    assert "onerror=alert(1)>" not in page
    assert page.count("<script>") == 1  # the page's own
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    assert 'data-id="look_&quot;&#x27;&gt;&lt;img src=x onerror=alert(1)&gt;"' in page
    assert "<img" not in page  # no preview: a placeholder, not an <img>


def test_html_placeholders_instead_of_broken_images() -> None:
    cards = (
        card(address="sarah/a", look_id="look_a", preview="previews/look_a.png"),
        card(address="sarah/b", look_id="look_b"),  # completed, but no preview URL
        card(address="sarah/c", look_id="look_c", preview_failed=True),
        card(address="sarah/d", look_id=None, status="not applied"),
        card(address="sarah/e", look_id="look_e", status="processing"),
    )
    page = render_html(catalog_of(*cards))
    assert re.findall(r"<img [^>]*>", page) == [
        '<img class="picture" src="previews/look_a.png" alt="Navy (sarah/a)">'
    ]
    placeholders = re.findall(r'<div class="picture placeholder"[^>]*>([^<]*)</div>', page)
    assert placeholders == [
        "no preview",
        "preview could not be downloaded",
        "not applied",
        "processing",
    ]
    assert page.count('class="copy"') == 4  # every card with a look id, not sarah/d
    assert "no look id" in page


def test_html_shows_failed_and_blocked_reasons() -> None:
    recipe, records = sarah_records()
    page = render_html(Catalog((build_section(recipe, records, "sarah.yaml"),)))
    assert '<p class="reason">moderation_rejected: the prompt was &lt;refused&gt;</p>' in page
    assert '<p class="reason">upstream_failed: sarah/podcast &lt;failed&gt; first</p>' in page
    assert '<span class="badge status status-not-applied">not applied</span>' in page
    assert "from: sarah/navy-office" in page


def test_html_is_self_contained_deterministic_and_pins_its_script() -> None:
    recipe, records = sarah_records()
    catalog = Catalog((build_section(recipe, records, "sarah.yaml"),))
    page = render_html(catalog)
    assert page == render_html(catalog)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "@import" not in page and "url(" not in page
    assert re.findall(r"<link [^>]*>", page) == ['<link rel="icon" href="data:,">']
    # The CSP admits exactly the inline script and style, by hash.
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert csp is not None
    for tag in ("script", "style"):
        body = re.search(rf"<{tag}>(.*?)</{tag}>", page, re.S)
        assert body is not None
        digest = base64.b64encode(hashlib.sha256(body.group(1).encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in csp.group(1)
    assert "default-src 'none'" in csp.group(1)
    assert "navigator.clipboard.writeText" in page
    assert 'document.execCommand("copy")' in page


# -- pure: Markdown -------------------------------------------------------------------


def test_markdown_table_with_pictures_and_escaping() -> None:
    cards = (
        card(
            address="sarah/a",
            name="A | B",
            look_id="look_a",
            preview="previews/look_a.png",
            prompt="line one\nline *two* <b>bold</b> [link](x)",
        ),
        card(
            address="sarah/b",
            look_id=None,
            status="failed",
            reason="bad_request: prompt | too long",
        ),
    )
    text = render_markdown(catalog_of(*cards))
    lines = text.splitlines()
    header = lines.index("| preview | look | prompt | status | look id | from |")
    assert lines[header + 1] == "|---|---|---|---|---|---|"
    row_a, row_b = lines[header + 2], lines[header + 3]
    assert row_a.startswith('| <img src="previews/look_a.png" alt="A &#124; B (sarah/a)"')
    assert r"**A \| B**<br>`sarah/a`" in row_a
    assert r"line one line \*two\* \<b\>bold\</b\> \[link\](x)" in row_a
    assert "| `look_a` |" in row_a
    assert row_b.startswith("| *failed* |")
    assert r"failed<br>bad\_request: prompt \| too long" in row_b
    # Every row has the six cells of the header (unescaped pipes only between cells).
    for row in (row_a, row_b):
        assert len(re.findall(r"(?<!\\)\|", row)) == 7
    assert "## recipes/sarah.yaml" in text
    assert text == render_markdown(catalog_of(*cards))


def test_md_text_is_one_literal_line() -> None:
    assert md_text("a\n\n b  c") == "a b c"
    assert md_text("<x> & `y` _z_ ~w~ !") == r"\<x\> \& \`y\` \_z\_ \~w\~ \!"


# -- pure: previews -------------------------------------------------------------------


def test_preview_names_are_file_safe() -> None:
    assert preview_path("look_0c71a8b7", "png") == "previews/look_0c71a8b7.png"
    for hostile in ("../../etc/passwd", "a/b", ".hidden", "x" * 200, "trailing.", "é"):
        stem = preview_stem(hostile)
        assert re.fullmatch(r"look-[0-9a-f]{24}", stem), hostile
    assert preview_stem("a/b") != preview_stem("a/c")


def test_sniff_image() -> None:
    assert sniff_image(b"\x89PNG\r\n\x1a\n....") == "png"
    assert sniff_image(b"\xff\xd8\xff\xe0....") == "jpg"
    assert sniff_image(b"GIF89a....") == "gif"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_image(b"<html>not found</html>") is None


def test_with_previews_attaches_by_look_id() -> None:
    catalog = catalog_of(
        card(address="sarah/a", look_id="look_a"),
        card(address="sarah/b", look_id="look_b"),
        card(address="sarah/c", look_id="look_c", status="failed"),
    )
    attached = with_previews(catalog, {"look_a": "previews/look_a.png"}, failed=["look_b"])
    a, b, c = attached.cards()
    assert a.preview == "previews/look_a.png" and not a.preview_failed
    assert b.preview is None and b.preview_failed
    assert c.preview is None and not c.preview_failed


def test_write_if_changed_and_stale_previews(tmp_path: Path) -> None:
    target = tmp_path / "index.html"
    assert write_if_changed(target, b"one") == 1
    before = target.stat().st_mtime_ns
    assert write_if_changed(target, b"one") == 0
    assert target.stat().st_mtime_ns == before
    assert write_if_changed(target, b"two") == 1 and target.read_bytes() == b"two"
    previews = tmp_path / "previews"
    previews.mkdir()
    for name in ("look_keep.png", "look_old.jpg", "README.md", ".gitkeep"):
        (previews / name).write_bytes(b"x")
    assert remove_stale_previews(tmp_path, {"previews/look_keep.png"}) == 1
    assert sorted(p.name for p in previews.iterdir()) == [".gitkeep", "README.md", "look_keep.png"]


# -- end to end: Chromium -------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's chromium; installed with apt-get when absent and we are root (as in CI)."""
    if not CHROMIUM.exists():
        if os.geteuid() != 0:
            pytest.fail(
                f"{CHROMIUM} is missing and this user cannot install it: run"
                " `sudo apt-get update && sudo apt-get install -y chromium`"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                pytest.fail(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr}")
        if not CHROMIUM.exists():
            pytest.fail(f"apt-get install chromium did not provide {CHROMIUM}")
    return CHROMIUM


@contextlib.contextmanager
def chromium(executable: Path) -> Iterator[Any]:
    """A headless Chromium driven by Playwright (its own browsers are never downloaded).

    Playwright's sync API runs an event loop in this thread while it is open, so it is
    opened only after the in-process `looks` runs (which use asyncio.run) are done.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def sim_stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as stack:
        yield stack


@pytest.fixture
def simulator(sim_stack: contextlib.ExitStack) -> sim.RunningSimulator:
    """conftest's simulator, but one a test can stop (sim_stack.close())."""
    config = sim.SimConfig(api_key=API_KEY, generation_seconds=0.2, auto_consent=0.2)
    return sim_stack.enter_context(sim.running_simulator(config))


@contextlib.contextmanager
def serving(directory: Path) -> Iterator[str]:
    """DIR over http://127.0.0.1:PORT/ (a secure context, like file://)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# Simulates a browser without the Clipboard API, and records what execCommand('copy') copies.
NO_CLIPBOARD_API = """
Object.defineProperty(Navigator.prototype, "clipboard", {get: () => undefined});
const execCommand = Document.prototype.execCommand;
Document.prototype.execCommand = function (command) {
  const el = document.activeElement;
  window.__copied = {command: command, tag: el.tagName,
                     text: el.value.slice(el.selectionStart, el.selectionEnd)};
  return execCommand.apply(this, arguments);
};
"""


def check_gallery(browser: Any, url: str, own_prefix: str, images: int) -> None:
    from playwright.sync_api import expect

    """Open the gallery: every image loads, copying ids works, nothing else is fetched."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        requests: list[str] = []
        errors: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "console",
            lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" else None,
        )
        page.goto(url, wait_until="load")
        widths = page.evaluate("Array.from(document.images, i => [i.complete, i.naturalWidth])")
        assert len(widths) == images
        assert all(ok and width > 0 for ok, width in widths), widths

        # The Clipboard API path: the id lands in the real (headless) clipboard.
        button = page.locator("button.copy").nth(1)
        look_id = button.get_attribute("data-id")
        assert look_id and look_id.startswith("look_")
        button.click()
        # The copy settles asynchronously (the Clipboard API returns a promise).
        expect(button).to_have_text("Copied")
        expect(button).to_have_attribute("data-copied-via", "clipboard")
        assert page.evaluate("navigator.clipboard.readText()") == look_id

        # The fallback path (no Clipboard API): a hidden textarea holding exactly the id is
        # selected and copied with execCommand; the text reaches the clipboard all the same.
        fallback = context.new_page()
        fallback.on("request", lambda r: requests.append(r.url))
        fallback.add_init_script(NO_CLIPBOARD_API)
        fallback.goto(url, wait_until="load")
        other = fallback.locator("button.copy").nth(2)
        other_id = other.get_attribute("data-id")
        assert other_id and other_id != look_id
        other.click()
        expect(other).to_have_text("Copied")
        expect(other).to_have_attribute("data-copied-via", "fallback")
        assert fallback.evaluate("window.__copied") == {
            "command": "copy",
            "tag": "TEXTAREA",
            "text": other_id,
        }
        assert fallback.locator("textarea").count() == 0  # cleaned up
        assert page.evaluate("navigator.clipboard.readText()") == other_id

        assert errors == []
        assert requests and all(r.startswith(own_prefix) for r in requests), requests
    finally:
        context.close()


def test_catalog_of_applied_recipes_renders_offline_in_chromium(
    recipes: Path,
    simulator: sim.RunningSimulator,
    sim_stack: contextlib.ExitStack,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    chromium_path: Path,
    tmp_path: Path,
) -> None:
    sarah, twin = recipes / "sarah.yaml", recipes / "twin.yaml"
    result = looks("apply", sarah, twin)
    assert result.code == 0, result.out + result.err
    out = tmp_path / "gallery"

    result = looks("catalog", sarah, twin, "--out", out)
    assert result.code == 0, result.err
    assert "3 bases and 6 looks: 9 completed" in result.out
    assert "11 files written" in result.out  # 9 previews, index.html, catalog.md
    # Every completed base and look has its own preview file, named by its look id.
    ids = [
        node["look_id"]
        for recipe in (sarah, twin)
        for node in json.loads(manifest_path_for(recipe).read_text())["nodes"].values()
        if node["kind"] in ("base", "look")
    ]
    assert len(ids) == 9
    assert sorted(p.name for p in (out / "previews").iterdir()) == sorted(f"{i}.png" for i in ids)
    page = (out / "index.html").read_text()
    assert simulator.base_url not in page  # remote preview URLs are not in the page
    assert page.index("../recipes/sarah.yaml") < page.index("../recipes/twin.yaml")
    for look_id in ids:
        assert f'data-id="{look_id}"' in page
    markdown = (out / "catalog.md").read_text()
    assert all(f'<img src="previews/{i}.png"' in markdown for i in ids)

    # The API goes away: the gallery needs nothing from it.
    sim_stack.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(simulator.base_url + "/_sim/state", timeout=2)

    # A second run with nothing changed rewrites nothing (and downloads nothing: the API is
    # gone, so a download would fail).
    before = snapshot(out)
    result = looks("catalog", sarah, twin, "--out", out)
    assert result.code == 0, result.err
    assert "nothing changed" in result.out
    assert snapshot(out) == before

    with chromium(chromium_path) as browser:
        check_gallery(browser, (out / "index.html").as_uri(), out.as_uri() + "/", images=9)
        with serving(out) as url:
            check_gallery(browser, url, url, images=9)


def test_a_failed_download_is_a_placeholder_a_warning_and_exit_1(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    chromium_path: Path,
    tmp_path: Path,
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    manifest = manifest_path_for(recipe)
    data = json.loads(manifest.read_text())
    broken = f"{simulator.base_url}/_sim/previews/look_gone.png?X-Signature=secret"
    data["nodes"]["marco/chef"]["preview_image_url"] = broken
    manifest.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    out = tmp_path / "gallery"

    result = looks("catalog", recipe, "--out", out)
    assert result.code == 1
    warning = next(line for line in result.err.splitlines() if "marco/chef" in line)
    look_id = data["nodes"]["marco/chef"]["look_id"]
    assert look_id in warning
    assert f"{simulator.base_url}/_sim/previews/look_gone.png" in warning
    assert "secret" not in result.err  # presigned query strings stay out of messages
    assert "404" in warning
    assert "1 preview could not be downloaded" in result.err
    page = (out / "index.html").read_text()
    assert page.count("<img ") == 5
    assert "preview could not be downloaded" in page
    assert not (out / "previews" / f"{look_id}.png").exists()

    # Fixed upstream: the next run downloads the one missing preview and nothing else.
    data["nodes"]["marco/chef"]["preview_image_url"] = (
        f"{simulator.base_url}/_sim/previews/{look_id}.png"
    )
    manifest.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    others = {p.name: p.stat().st_mtime_ns for p in (out / "previews").iterdir()}
    result = looks("catalog", recipe, "--out", out)
    assert result.code == 0, result.err
    assert "3 files written" in result.out
    after = {p.name: p.stat().st_mtime_ns for p in (out / "previews").iterdir()}
    assert after == {**others, f"{look_id}.png": after[f"{look_id}.png"]}
    with chromium(chromium_path) as browser:
        check_gallery(browser, (out / "index.html").as_uri(), out.as_uri() + "/", images=6)


def test_replaced_looks_drop_their_old_preview(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    tmp_path: Path,
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    out = tmp_path / "gallery"
    assert looks("catalog", recipe, "--out", out).code == 0
    old = json.loads(manifest_path_for(recipe).read_text())["nodes"]["marco/chef"]["look_id"]

    # Edited but not applied yet: the old picture stays, flagged as out of date.
    recipe.write_text(recipe.read_text().replace("White chef's jacket", "Black chef's jacket"))
    assert looks("catalog", recipe, "--out", out).code == 0
    page = (out / "index.html").read_text()
    assert "Black chef&#x27;s jacket" in page
    assert "out of date (prompt changed): the next apply replaces it" in page
    assert (out / "previews" / f"{old}.png").exists()

    assert looks("apply", recipe).code == 0
    result = looks("catalog", recipe, "--out", out)
    assert result.code == 0, result.err
    assert "1 stale preview removed" in result.out
    new = json.loads(manifest_path_for(recipe).read_text())["nodes"]["marco/chef"]["look_id"]
    assert new != old
    assert (out / "previews" / f"{new}.png").exists()
    assert not (out / "previews" / f"{old}.png").exists()


def test_catalog_refuses_an_out_that_is_a_file(
    recipes: Path, looks: Callable[..., Run], tmp_path: Path
) -> None:
    out = tmp_path / "taken"
    out.write_text("not a directory")
    result = looks("catalog", recipes / "sarah.yaml", "--out", out)
    assert result.code == 1
    assert result.err.startswith("looks: ") and result.err.count("\n") == 1
    # Nothing applied yet: every card is a placeholder, with no download at all.
    fresh = tmp_path / "fresh"
    result = looks("catalog", recipes / "sarah.yaml", "--out", fresh)
    assert result.code == 0, result.err
    assert "0 completed" not in result.out and "6 not applied" in result.out
    assert "<img " not in (fresh / "index.html").read_text()
    assert list((fresh / "previews").iterdir()) == []
