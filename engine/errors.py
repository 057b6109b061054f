"""The one error hierarchy: every message is meant for the user, never a traceback."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class LooksError(Exception):
    """Base of every error the CLI reports as one line and a non-zero exit code."""

    exit_code = 1


class UsageError(LooksError):
    """The command line itself is wrong."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, located as FILE:LINE: path: message."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}: {where}{self.message}"


class RecipeError(LooksError):
    """A recipe is invalid; carries every problem found in one pass (`omitted` more were
    only counted: a hostile recipe can have millions)."""

    def __init__(self, problems: Iterable[Problem], *, omitted: int = 0) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: (p.file, p.line)))
        self.omitted = omitted
        super().__init__("\n".join(str(p) for p in self.problems))


class ManifestError(LooksError):
    """A manifest (or its journal) cannot be read, or must not be written."""


class ManifestLockedError(ManifestError):
    """Another run holds the manifest's lock."""


class StateWriteError(ManifestError):
    """A state file (manifest, journal, lock, temp file) could not be written in full.

    Whatever was recorded before the failure is intact; a run that meets it stops
    submitting and exits 1.
    """

    torn = False  # an append that failed could not be cut back: the file ends mid-line


class MergeConflictError(LooksError):
    """Two versions of a manifest cannot be merged by address; git reports a conflict."""


class ApiError(LooksError):
    """The HeyGen API (or the simulator) answered an error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        retry_after: float | None = None,
        param: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after
        self.param = param  # the request field a validation error names
        suffix = f" (request {request_id})" if request_id else ""
        super().__init__(f"HTTP {status} {code}: {message}{suffix}")


class BudgetError(LooksError):
    """The plan costs more than `apply --max-credits` allows."""


class TransportError(LooksError):
    """The API could not be reached, or the connection broke before an answer."""


class ApiStalledError(TransportError):
    """The API gave no complete answer for several request deadlines: retrying stops."""


class FileChangedError(LooksError):
    """A local file changed while it was being uploaded; the next apply plans its new content."""


class CaBundleError(OSError):
    """The CA bundle https is verified against (SSL_CERT_FILE, SSL_CERT_DIR or certifi's)
    cannot be read. An OSError, as when httpx read it up front: the command line names the
    bundle; it is never a failed connection to retry, nor a local file of the recipe's."""
