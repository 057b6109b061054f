"""The catalog: a static, offline gallery of what recipes made. Pure: no I/O here.

`build_section` turns a recipe and its manifest records into cards (one per base and
look, in recipe order); `render_html` and `render_markdown` turn cards into text. The
gallery (`engine/gallery.py`) downloads previews and writes the files.

Everything taken from a recipe or the API is escaped. The page loads nothing but its own
preview files: inline CSS and JS only, pinned by a Content-Security-Policy with their
hashes, and the remote preview URLs never appear in the output.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import re
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from .errors import LooksError
from .manifest import STATUSES, NodeRecord
from .plan import PlanAction, build_plan, consent_address
from .recipe import AvatarSpec, BaseSpec, LookSpec, Recipe

PREVIEW_DIR = "previews"
IMAGE_EXTENSIONS = ("png", "jpg", "gif", "webp")
NOT_APPLIED = "not applied"

CardKind = Literal["base", "look"]


class CatalogError(LooksError):
    """The catalog cannot be written (output directory, files)."""


@dataclass(frozen=True)
class Card:
    """One picture of the gallery: an avatar's base or one of its looks."""

    address: str
    kind: CardKind
    name: str
    built_from: str  # a look's `from` address, or how a base is made ("photo media/x.png")
    status: str  # the manifest's status, or NOT_APPLIED
    prompt: str | None = None  # as sent: with the recipe's prompt_suffix
    look_id: str | None = None
    reason: str | None = None  # why a node failed or is blocked: "code: message"
    note: str | None = None  # a pending change, a twin's consent status
    preview_url: str | None = None  # remote, only to download; never rendered
    preview: str | None = None  # path of the downloaded preview, relative to the gallery
    preview_failed: bool = False  # the download failed this run
    look_set: str | None = None  # the look set a look comes from (`include`)


@dataclass(frozen=True)
class AvatarEntry:
    """An avatar: its base card first, then its own looks, then each look set's, in recipe order."""

    address: str
    name: str
    cards: tuple[Card, ...]

    def groups(self) -> list[tuple[str | None, list[Card]]]:
        """The cards by look set: (None, base and own looks) first, then one group per set."""
        groups: dict[str | None, list[Card]] = {None: []}
        for card in self.cards:
            groups.setdefault(card.look_set, []).append(card)
        return list(groups.items())


@dataclass(frozen=True)
class Section:
    """One recipe of the gallery."""

    recipe: str  # the recipe's path as shown (relative to the gallery directory)
    avatars: tuple[AvatarEntry, ...]


@dataclass(frozen=True)
class Catalog:
    """The whole gallery: one section per recipe, in command-line order."""

    sections: tuple[Section, ...]

    def cards(self) -> list[Card]:
        return [c for s in self.sections for a in s.avatars for c in a.cards]

    def wanted_previews(self) -> dict[str, tuple[str, str]]:
        """look id -> (address, preview URL) of every completed card with a preview, once."""
        wanted: dict[str, tuple[str, str]] = {}
        for card in self.cards():
            if card.status == "completed" and card.look_id and card.preview_url:
                wanted.setdefault(card.look_id, (card.address, card.preview_url))
        return wanted


# -- model ----------------------------------------------------------------------------


def build_section(recipe: Recipe, records: Mapping[str, NodeRecord], label: str) -> Section:
    """The cards of one recipe, from its manifest records (missing ones are 'not applied')."""
    actions = {a.address: a for a in build_plan(recipe, records).actions}
    avatars = []
    for avatar in recipe.avatars:
        cards = [_base_card(avatar, records, actions.get(avatar.address))]
        for look in avatar.looks:
            cards.append(_look_card(look, records.get(look.address), actions.get(look.address)))
        cards.sort(key=lambda c: c.look_set is not None)  # own looks first; sets stay in order
        avatars.append(AvatarEntry(avatar.address, avatar.name, tuple(cards)))
    return Section(label, tuple(avatars))


def _base_card(
    avatar: AvatarSpec, records: Mapping[str, NodeRecord], action: PlanAction | None
) -> Card:
    card = _card(avatar.address, "base", avatar.name, _base_origin(avatar.base), records, action)
    notes = [card.note] if card.note else []
    if avatar.base.type == "digital_twin":
        consent = records.get(consent_address(avatar.address))
        notes.append(f"consent: {consent.status if consent else NOT_APPLIED}")
    return dataclasses.replace(card, prompt=avatar.base.prompt, note="; ".join(notes) or None)


def _look_card(look: LookSpec, record: NodeRecord | None, action: PlanAction | None) -> Card:
    source = f"{look.avatar} (base)" if look.source == "base" else f"{look.avatar}/{look.source}"
    records = {look.address: record} if record else {}
    card = _card(look.address, "look", look.name, source, records, action)
    return dataclasses.replace(card, prompt=look.prompt, look_set=look.look_set)


def _base_origin(base: BaseSpec) -> str:
    if base.type == "existing":
        return f"existing look {base.look_id}"
    if base.type == "prompt":
        return "prompt"
    kind = "digital twin" if base.type == "digital_twin" else base.type
    return f"{kind} {base.file.describe()}" if base.file else kind


def _card(
    address: str,
    kind: CardKind,
    name: str,
    built_from: str,
    records: Mapping[str, NodeRecord],
    action: PlanAction | None,
) -> Card:
    record = records.get(address)
    if record is None:
        return Card(address, kind, name, built_from, NOT_APPLIED)
    reason = None
    if record.error is not None and record.status in (
        "failed",
        "blocked",
        "awaiting_consent",
        "missing",
    ):
        reason = f"{record.error.code}: {record.error.message}"
    note = None
    if action is not None and action.action == "replace":
        note = f"out of date ({action.reason}): the next apply replaces it"
    elif action is not None and action.action == "update":
        note = f"rename pending ({action.reason})"
    return Card(
        address,
        kind,
        name,
        built_from,
        record.status,
        look_id=record.look_id,
        reason=reason,
        note=note,
        preview_url=record.preview_image_url,
    )


_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def preview_stem(look_id: str) -> str:
    """The file name (without extension) of a look's preview: the id, if it is file-safe."""
    if _SAFE_ID.fullmatch(look_id) and not look_id.endswith("."):
        return look_id
    return "look-" + hashlib.sha256(look_id.encode()).hexdigest()[:24]


def preview_path(look_id: str, extension: str) -> str:
    """`previews/<stem>.<ext>`, relative to the gallery directory (always with '/')."""
    return f"{PREVIEW_DIR}/{preview_stem(look_id)}.{extension}"


def sniff_image(data: bytes) -> str | None:
    """The extension of an image a browser shows (by its magic bytes), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def with_previews(
    catalog: Catalog, previews: Mapping[str, str], failed: Collection[str] = ()
) -> Catalog:
    """The catalog with local preview paths (by look id) and failed downloads marked."""

    def attach(card: Card) -> Card:
        if card.look_id is None or card.status != "completed":
            return card
        if card.look_id in previews:
            return dataclasses.replace(card, preview=previews[card.look_id])
        if card.look_id in failed:
            return dataclasses.replace(card, preview_failed=True)
        return card

    return Catalog(
        tuple(
            Section(
                s.recipe,
                tuple(
                    AvatarEntry(a.address, a.name, tuple(attach(c) for c in a.cards))
                    for a in s.avatars
                ),
            )
            for s in catalog.sections
        )
    )


def placeholder_text(card: Card) -> str:
    """What a card without a picture says instead."""
    if card.preview_failed:
        return "preview could not be downloaded"
    if card.status == "completed":
        return "no preview"
    return card.status


def summary(catalog: Catalog) -> str:
    """`2 bases and 5 looks: 6 completed, 1 failed` (one base per avatar)."""
    cards = catalog.cards()
    bases = sum(1 for c in cards if c.kind == "base")
    looks = len(cards) - bases
    counts = Counter(c.status for c in cards)
    order = [*STATUSES, NOT_APPLIED]
    statuses = ", ".join(f"{counts[s]} {s}" for s in order if counts[s])
    return f"{_count(bases, 'base')} and {_count(looks, 'look')}: {statuses or 'nothing'}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# -- HTML -----------------------------------------------------------------------------

_STYLE = """
:root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --fg: #1d2330; --muted: #5f6b7a;
  --line: #dde2e8; --ok: #1f7a3f; --bad: #b42318; --warn: #b54708; --wip: #175cd3; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #14171c; --card: #1d2128; --fg: #e6e9ee; --muted: #9aa4b2; --line: #2e343d;
    --ok: #4ac27a; --bad: #f97066; --warn: #fdb022; --wip: #84adff; }
}
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p, .recipe-path { margin: 0; color: var(--muted); }
section.recipe { margin-top: 32px; }
section.recipe > h2 { margin: 0; font-size: 18px; font-family: ui-monospace, monospace; }
article.avatar { margin-top: 20px; }
article.avatar > h3 { margin: 0 0 10px; font-size: 16px; }
article.avatar > h4.look-set { margin: 14px 0 8px; font-size: 13px; color: var(--muted); }
article.avatar > h3 code { color: var(--muted); font-weight: normal; margin-left: 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 14px; }
.card { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  overflow: hidden; display: flex; flex-direction: column; }
.card.base { border-color: var(--muted); }
.picture { aspect-ratio: 9 / 16; max-height: 320px; width: 100%; display: block;
  object-fit: cover; background: var(--line); }
.placeholder { display: flex; align-items: center; justify-content: center; text-align: center;
  padding: 12px; color: var(--muted); font-weight: 600; background: repeating-linear-gradient(
  45deg, var(--bg), var(--bg) 10px, var(--line) 10px, var(--line) 20px); }
figcaption { padding: 10px 12px 12px; display: flex; flex-direction: column; gap: 5px; }
.name { font-weight: 600; font-size: 15px; }
.address, .id code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.address { color: var(--muted); }
.meta { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
.badge { border-radius: 999px; padding: 1px 8px; font-size: 12px; border: 1px solid currentColor; }
.kind { color: var(--muted); }
.status-completed { color: var(--ok); }
.status-failed { color: var(--bad); }
.status-blocked, .status-awaiting_consent, .status-missing { color: var(--warn); }
.status-pending, .status-submitted, .status-processing { color: var(--wip); }
.status-not-applied { color: var(--muted); }
.prompt { margin: 0; }
.from, .note { margin: 0; color: var(--muted); font-size: 13px; }
.reason { margin: 0; color: var(--bad); font-size: 13px; }
.id { display: flex; align-items: center; gap: 6px; min-width: 0; }
.id code { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; user-select: all; }
.copy { font: inherit; font-size: 12px; padding: 2px 10px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--line); background: var(--bg); color: var(--fg); flex: none; }
.copy:hover { border-color: var(--muted); }
.copy.copied { color: var(--ok); border-color: var(--ok); }
.copy.failed { color: var(--bad); border-color: var(--bad); }
.clipboard-fallback { position: fixed; top: -1000px; left: 0; opacity: 0; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""

# Copy: the async Clipboard API where the page may use it (http://localhost, https), else a
# hidden textarea + execCommand('copy') (file:// pages, older browsers). The button says
# which path worked (data-copied-via) and shows "Copied" for a moment.
_SCRIPT = """
(function () {
  "use strict";
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "clipboard-fallback";
    document.body.appendChild(area);
    area.focus();
    area.select();
    area.setSelectionRange(0, text.length);
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }
  function selectId(button) {
    var code = button.parentNode.querySelector("code");
    if (!code || !window.getSelection) { return; }
    var range = document.createRange();
    range.selectNodeContents(code);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  function feedback(button, ok, via) {
    button.textContent = ok ? "Copied" : "Press Ctrl+C";
    button.className = "copy " + (ok ? "copied" : "failed");
    button.setAttribute("data-copied-via", via);
    if (!ok) { selectId(button); }
    clearTimeout(button._reset);
    button._reset = setTimeout(function () {
      button.textContent = "Copy";
      button.className = "copy";
    }, 2000);
  }
  function copy(button) {
    var text = button.getAttribute("data-id");
    if (navigator.clipboard && navigator.clipboard.writeText && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { feedback(button, true, "clipboard"); },
        function () { feedback(button, fallbackCopy(text), "fallback"); }
      );
    } else {
      feedback(button, fallbackCopy(text), "fallback");
    }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.copy") : null;
    if (button) { copy(button); }
  });
})();
"""


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


# Nothing but the page's own files: no network, and only this exact script and style run.
_CSP = (
    "default-src 'none'; img-src 'self' data:; "
    f"style-src {_csp_hash(_STYLE)}; script-src {_csp_hash(_SCRIPT)}; "
    "base-uri 'none'; form-action 'none'"
)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _status_class(status: str) -> str:
    return "status-" + re.sub(r"[^a-z0-9]+", "-", status.lower()).strip("-")


def _card_html(card: Card) -> str:
    alt = f"{card.name} ({card.address})"
    if card.preview:
        picture = f'<img class="picture" src="{_e(card.preview)}" alt="{_e(alt)}">'
    else:
        picture = (
            f'<div class="picture placeholder" role="img" aria-label="{_e(alt)}: '
            f'{_e(placeholder_text(card))}">{_e(placeholder_text(card))}</div>'
        )
    kind = "base" if card.kind == "base" else "look"
    lines = [
        f'<figure class="card {kind}" id="{_e(_anchor(card.address))}">',
        picture,
        "<figcaption>",
        f'<div class="name">{_e(card.name)}</div>',
        f'<div class="address">{_e(card.address)}</div>',
        '<div class="meta">'
        f'<span class="badge kind">{kind}</span>'
        f'<span class="badge status {_status_class(card.status)}">{_e(card.status)}</span>'
        "</div>",
    ]
    if card.prompt is not None:
        lines.append(f'<p class="prompt">{_e(card.prompt)}</p>')
    label = "from" if card.kind == "look" else "made from"
    lines.append(f'<p class="from">{label}: {_e(card.built_from)}</p>')
    if card.reason:
        lines.append(f'<p class="reason">{_e(card.reason)}</p>')
    if card.note:
        lines.append(f'<p class="note">{_e(card.note)}</p>')
    if card.look_id:
        lines.append(
            f'<div class="id"><code>{_e(card.look_id)}</code>'
            f'<button type="button" class="copy" data-id="{_e(card.look_id)}"'
            f' title="Copy the look id">Copy</button></div>'
        )
    else:
        lines.append('<div class="id"><code>no look id</code></div>')
    lines += ["</figcaption>", "</figure>"]
    return "\n".join(lines)


def _anchor(address: str) -> str:
    return "look-" + re.sub(r"[^A-Za-z0-9_-]+", "-", address)


def render_html(catalog: Catalog) -> str:
    """The gallery page: self-contained but for its preview files; deterministic."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',  # constant, no "
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        '<link rel="icon" href="data:,">',  # no /favicon.ico request
        "<title>Looks catalog</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        "<h1>Looks catalog</h1>",
        f"<p>{_e(summary(catalog))}</p>",
        "</header>",
    ]
    for section in catalog.sections:
        parts += ['<section class="recipe">', f"<h2>{_e(section.recipe)}</h2>"]
        if not section.avatars:
            parts.append('<p class="recipe-path">no avatars</p>')
        for avatar in section.avatars:
            parts += [
                '<article class="avatar">',
                f"<h3>{_e(avatar.name)}<code>{_e(avatar.address)}</code></h3>",
            ]
            for look_set, cards in avatar.groups():
                if look_set is not None:
                    parts.append(f'<h4 class="look-set">look set <code>{_e(look_set)}</code></h4>')
                parts += ['<div class="grid">', *(_card_html(card) for card in cards), "</div>"]
            parts.append("</article>")
        parts.append("</section>")
    parts += [
        "<footer>Written by <code>looks catalog</code>. Previews are files in this directory;"
        " the page loads nothing else.</footer>",
        f"<script>{_SCRIPT}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


# -- Markdown -------------------------------------------------------------------------

# Characters that could start Markdown or HTML inside a table cell; a backslash makes any
# ASCII punctuation literal in CommonMark (and GFM tables need `\|`).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&!#])")
_MD_CODE = re.compile(r"[A-Za-z0-9_.:/-]+")


def md_text(text: str) -> str:
    """Text for a Markdown table cell: one line, nothing interpreted."""
    one_line = " ".join(text.split())
    return _MD_SPECIAL.sub(r"\\\1", one_line)


def _md_code(text: str) -> str:
    return f"`{text}`" if _MD_CODE.fullmatch(text) else md_text(text)


def _md_picture(card: Card) -> str:
    if card.preview:
        alt = _e(f"{card.name} ({card.address})").replace("|", "&#124;")
        return f'<img src="{_e(card.preview)}" alt="{alt}" width="120">'
    return f"*{md_text(placeholder_text(card))}*"


def render_markdown(catalog: Catalog) -> str:
    """`catalog.md`: per avatar, a table with the same pictures (relative paths)."""
    lines = ["# Looks catalog", "", md_text(summary(catalog))]
    for section in catalog.sections:
        lines += ["", f"## {md_text(section.recipe)}"]
        for avatar in section.avatars:
            lines += ["", f"### {md_text(avatar.name)} ({_md_code(avatar.address)})"]
            for look_set, cards in avatar.groups():
                lines += [""] + ([f"look set {_md_code(look_set)}", ""] if look_set else [])
                lines += _md_table(cards)
    return "\n".join(lines) + "\n"


def _md_table(cards: list[Card]) -> list[str]:
    lines = ["| preview | look | prompt | status | look id | from |", "|---|---|---|---|---|---|"]
    for card in cards:
        look = f"**{md_text(card.name)}**<br>{_md_code(card.address)}"
        status = md_text(card.status)
        for extra in (card.reason, card.note):
            if extra:
                status += f"<br>{md_text(extra)}"
        prompt = md_text(card.prompt) if card.prompt is not None else ""
        look_id = _md_code(card.look_id) if card.look_id else ""
        cells = [_md_picture(card), look, prompt, status, look_id, md_text(card.built_from)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
