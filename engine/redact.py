"""Keeping the API key out of everything a server says: messages, headers, answers.

Pure: no I/O. The client redacts every text that comes from a server *before* anything
else sees it (and before anything is cut short), so neither a message, a `--log-json` line
nor a manifest can carry the key, however the server came to echo it.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MASK", "MIN_SUBSTRING_LENGTH", "Redactor"]

MASK = "***"
# A key this long is a secret wherever it appears, even inside a longer word. A shorter one
# (a test key such as "x") is masked only where it stands alone: masking it inside words
# would turn "credits" into "***redits" and hide nothing worth hiding.
MIN_SUBSTRING_LENGTH = 8
_WORD = "A-Za-z0-9"


@dataclass(frozen=True)
class Redactor:
    """Masks one secret (its percent-encoded and base64 forms too, in any casing) in text
    and in decoded JSON."""

    secret: str
    # Any casing: an error code echoing the key in capitals is lower-cased after masking.
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    # The same in lower case, for a lower-cased ASCII text: finds what _pattern finds there
    # ten times faster (a case-insensitive search walks every character both ways).
    _lowered: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Percent-encoded wholly, as a path (quote's default keeps "/") or as a form field.
        quoted = {
            urllib.parse.quote(self.secret, safe=""),
            urllib.parse.quote(self.secret),
            urllib.parse.quote_plus(self.secret),
            urllib.parse.quote_plus(self.secret, safe="/"),
        }
        forms = {self.secret, *quoted} - {""}
        if len(self.secret) >= MIN_SUBSTRING_LENGTH:
            forms |= _base64_forms(self.secret)
        object.__setattr__(self, "_pattern", self._compile(forms, re.IGNORECASE))
        lowered = None
        if all(f.isascii() for f in forms):
            lowered = self._compile({f.lower() for f in forms}, re.NOFLAG)
        object.__setattr__(self, "_lowered", lowered)

    def _compile(self, forms: set[str], flags: re.RegexFlag) -> re.Pattern[str] | None:
        if not forms:
            return None
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        if len(self.secret) < MIN_SUBSTRING_LENGTH:
            alternatives = f"(?<![{_WORD}])(?:{alternatives})(?![{_WORD}])"
        return re.compile(alternatives, flags)

    def __repr__(self) -> str:
        return "Redactor(***)"

    def text(self, value: str) -> str:
        """The text with every occurrence of the secret masked."""
        if self._pattern is None:
            return value
        return self._pattern.sub(MASK, value)

    def optional(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def loads(self, raw: bytes) -> Any:
        """A JSON answer decoded, with the secret masked in every string (ValueError when
        it is no JSON). Most answers hold no escape and no trace of the secret: decoded,
        every string of theirs is a piece of that text, so none can hold it and the walk
        over every string (a quarter of a poll's cost) is skipped.

        The text checked is the one the parser reads: decoded as json.loads decodes bytes
        (UTF-8, -16 or -32, told apart by the first bytes, BOM or not). An ASCII answer in
        UTF-16 is valid UTF-8 as well, where the key, a NUL between each of its characters,
        would not show."""
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        try:
            value = json.loads(text)
            if self._pattern is None:
                return value
            if "\\" in text or self._holds(text):
                return self.json(value)
            return value
        except RecursionError:  # decoding it or walking it: deeper than the stack
            raise ValueError("JSON nested too deeply") from None

    def _holds(self, text: str) -> bool:
        """Whether the secret shows in the text, in any casing."""
        assert self._pattern is not None
        if self._lowered is not None and text.isascii():
            return self._lowered.search(text.lower()) is not None
        return self._pattern.search(text) is not None

    def json(self, value: Any) -> Any:
        """A decoded JSON value with the secret masked in every string, keys included."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        return value


def _base64_forms(secret: str) -> set[str]:
    """The base64 characters (standard and URL-safe) that encode only the secret's bytes,
    at each of the three alignments it can have inside a longer encoded text (an echoed
    `Authorization: Basic`, a token). The one or two edge characters shared with its
    neighbours stay: they carry at most a few bits of the secret."""
    raw = secret.encode()
    forms: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        start = -(-8 * offset // 6)  # the first character holding secret bits only
        end = 8 * (offset + len(raw)) // 6  # past the last one
        core = encoded[start:end]
        forms |= {core, core.translate(str.maketrans("+/", "-_"))}
    return forms
