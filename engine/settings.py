"""Where the API commands go and with which key: HEYGEN_BASE_URL, HEYGEN_API_KEY, timeouts.

Read once per command from the environment, checked up front: a setting that cannot work is a
usage error of one line (never a traceback, never the key itself in the message).
"""

from __future__ import annotations

import math
import os
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import UsageError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_REQUEST_TIMEOUT",
    "SHOW_KEY_TAIL_FROM",
    "ApiSettings",
    "api_settings",
    "api_target",
    "base_url_setting",
]

DEFAULT_BASE_URL = "https://api.heygen.com"
DEFAULT_REQUEST_TIMEOUT = 60.0  # seconds for a whole request (uploads get more, by size)
# The last four characters are shown only for keys at least this long: they then reveal a
# quarter of the key at most, enough to tell two keys apart, not enough to guess one.
SHOW_KEY_TAIL_FROM = 16


@dataclass(frozen=True)
class ApiSettings:
    """The API a command calls, the key it sends, and how long a request may take."""

    base_url: str
    api_key: str
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT

    def __repr__(self) -> str:  # never the key, should a settings object end up in a message
        return f"ApiSettings(base_url={self.base_url!r}, request_timeout={self.request_timeout})"

    @property
    def production(self) -> bool:
        return self.base_url == DEFAULT_BASE_URL

    @property
    def host_port(self) -> str:
        parts = urllib.parse.urlsplit(self.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        return f"{host}:{port}"

    def key_hint(self) -> str:
        """How the key is named on screen: its last four characters, if that is safe."""
        if len(self.api_key) >= SHOW_KEY_TAIL_FROM:
            return f"key ending in {self.api_key[-4:]}"
        return f"key of {len(self.api_key)} characters (too short to show any)"

    def target_line(self) -> str:
        """The first line of every command that calls the API (it goes to stderr)."""
        where = " (HeyGen production)" if self.production else ""
        return f"looks: calling {self.base_url}{where} with {self.key_hint()}"


def base_url_setting(environ: Mapping[str, str] | None = None) -> str:
    """HEYGEN_BASE_URL (default: the real API), checked to be an http(s) URL with a host."""
    env = os.environ if environ is None else environ
    raw = env.get("HEYGEN_BASE_URL", "").strip() or DEFAULT_BASE_URL
    what = f"HEYGEN_BASE_URL={raw!r}"
    if not raw.isascii() or not raw.isprintable():
        raise UsageError(f"{what}: not a URL (non-ASCII or control characters)")
    try:
        parts = urllib.parse.urlsplit(raw)
        port = parts.port  # a ValueError for a port out of 0–65535 or not a number
    except ValueError as e:
        raise UsageError(f"{what}: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"{what}: must start with http:// or https://")
    if not parts.hostname:
        raise UsageError(f"{what}: has no host")
    if port == 0:
        raise UsageError(f"{what}: port 0 is not a port to call")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError(f"{what}: only scheme, host, port and path are allowed")
    return raw.rstrip("/")


def _api_key(env: Mapping[str, str]) -> str:
    # Surrounding whitespace (a trailing newline from a key file) is dropped; whitespace
    # inside, or a character no HTTP header can carry, means the key is not what was meant.
    key = env.get("HEYGEN_API_KEY", "").strip()
    if not key:
        raise UsageError("HEYGEN_API_KEY is not set: export your HeyGen API key first")
    for position, char in enumerate(key, start=1):
        if char.isspace():
            problem = "whitespace"
        elif not char.isascii():
            problem = "a non-ASCII character"
        elif not char.isprintable():
            problem = "a control character"
        else:
            continue
        raise UsageError(
            f"HEYGEN_API_KEY has {problem} at character {position} of {len(key)}:"
            " a key is one word of printable ASCII; check how it was exported"
        )
    return key


def _request_timeout(env: Mapping[str, str]) -> float:
    raw = env.get("LOOKS_REQUEST_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_REQUEST_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"LOOKS_REQUEST_TIMEOUT={raw!r}: must be a number of seconds above 0")
    return seconds


def api_settings(environ: Mapping[str, str] | None = None) -> ApiSettings:
    """The settings of a command that calls the API; UsageError when one cannot work."""
    env = os.environ if environ is None else environ
    return ApiSettings(
        base_url=base_url_setting(env),
        api_key=_api_key(env),
        request_timeout=_request_timeout(env),
    )


def api_target() -> ApiSettings:
    """The settings, named first on stderr (stdout stays for --json and --log-json).

    A user who forgot HEYGEN_BASE_URL sees "HeyGen production" before anything is sent.
    """
    settings = api_settings()
    print(settings.target_line(), file=sys.stderr, flush=True)
    return settings
