"""The manifest: what a recipe has made, kept beside it and under version control.

Writes are crash-proof: every change is appended to a journal and fsynced before the
engine acts on it; the journal is folded into the manifest by an atomic rename. The
manifest's bytes only change when its content does, so a run that does nothing leaves
no diff.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import fcntl
import json
import os
import re
import socket
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from . import _schemas, durable
from .errors import ManifestError, ManifestLockedError, StateWriteError
from .paths import resolved

FORMAT_VERSION = 1

NodeKind = Literal["upload", "base", "consent", "look"]
Status = Literal[
    "pending",
    "submitted",
    "processing",
    "awaiting_consent",
    "completed",
    "failed",
    "blocked",
    "missing",
]
STATUSES: tuple[Status, ...] = get_args(Status)  # in the Literal's order


@dataclass(frozen=True)
class ErrorInfo:
    """Why a node failed or is blocked."""

    code: str
    message: str


@dataclass(frozen=True)
class NodeRecord:
    """What the manifest knows of one node of the graph."""

    address: str
    kind: NodeKind
    fingerprint: str
    status: Status
    name: str | None = None
    request: Mapping[str, Any] | None = None
    look_id: str | None = None
    group_id: str | None = None
    asset_id: str | None = None
    preview_image_url: str | None = None
    consent_url: str | None = None
    idempotency_key: str | None = None
    submitted_at: float | None = None
    attempts: int = 0
    error: ErrorInfo | None = None
    superseded: tuple[str, ...] = ()
    # The run cache: fingerprint -> a superseded look made from it, which a recipe changed
    # back to that fingerprint reuses instead of paying again.
    reusable: Mapping[str, str] = field(default_factory=dict)

    def reusable_look(self, fingerprint: str) -> str | None:
        """The superseded (so not pruned) look made from this fingerprint, if there is one."""
        look_id = self.reusable.get(fingerprint)
        return look_id if look_id is not None and look_id in self.superseded else None

    # A direct upload in progress: {"phase": "put" | "uploaded", "expires_at": unix seconds}.
    upload: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "address" or value is None or value == () or value == {}:
                continue
            if isinstance(value, ErrorInfo):
                value = {"code": value.code, "message": value.message}
            elif isinstance(value, tuple):
                value = list(value)
            elif f.name == "reusable":
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, address: str, data: Mapping[str, Any]) -> NodeRecord:
        fields = dict(data)
        if fields.get("error") is not None:
            fields["error"] = ErrorInfo(**fields["error"])
        fields["superseded"] = tuple(fields.get("superseded", ()))
        fields["reusable"] = dict(fields.get("reusable", {}))
        return cls(address=address, **fields)

    def evolve(self, **changes: Any) -> NodeRecord:
        return dataclasses.replace(self, **changes)


@dataclass
class Manifest:
    """The manifest's content: lineage, serial, recipe and one record per address."""

    lineage: str
    recipe: str
    serial: int = 0
    nodes: dict[str, NodeRecord] = field(default_factory=dict)

    @classmethod
    def new(cls, recipe: str) -> Manifest:
        return cls(lineage=str(uuid.uuid4()), recipe=recipe)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "lineage": self.lineage,
            "serial": self.serial,
            "recipe": self.recipe,
            "nodes": {a: r.to_json() for a, r in self.nodes.items()},
        }

    def dumps(self, *, with_serial: bool = True) -> str:
        """The file's text; without the serial, it compares content across writes."""
        data = self.to_json()
        if not with_serial:
            del data["serial"]
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def manifest_path_for(recipe: Path) -> Path:
    """`<recipe stem>.manifest.json` beside the recipe: the real file, when it is a symlink."""
    recipe = real_path(recipe)
    return recipe.with_name(f"{recipe.stem}.manifest.json")


def real_path(path: Path) -> Path:
    """The file a symlink points to; any other path as given.

    One recipe has one manifest however it is reached, and a rewrite replaces the manifest
    a link points to, not the link.
    """
    try:
        return resolved(path) if path.is_symlink() else path
    except OSError:
        return path


def recipe_label(recipe: Path, manifest: Path) -> str:
    """The recipe as its manifest records it: its real path relative to the manifest's
    directory, so moving or cloning the repository keeps the two together."""
    directory = resolved(real_path(manifest).parent)
    return Path(os.path.relpath(resolved(recipe), directory)).as_posix()


_RECOVER = (
    "restore it from version control (git checkout HEAD -- {name}) or a backup; do not"
    " delete it: a new manifest would pay again for every look this one records"
)


def _note(message: str) -> None:
    """A remark on stderr that needs no action (stdout may be --json)."""
    print(f"looks: note: {message}", file=sys.stderr)


_CONFLICT_MARKER = re.compile(r"^<<<<<<< ", re.MULTILINE)


def parse_manifest(text: str, path: Path) -> Manifest:
    """Parse and validate a manifest's text; a ManifestError names the file and the fix."""
    recover = _RECOVER.format(name=path.name)
    try:
        data = json.loads(text)
    except RecursionError:  # deeper than the parser's stack: no manifest this tool wrote
        raise ManifestError(
            f"{path}: manifest is corrupt (nested too deeply); it was left untouched: {recover}"
        ) from None
    except json.JSONDecodeError as e:
        if _CONFLICT_MARKER.search(text):
            raise ManifestError(
                f"{path}: manifest holds git conflict markers (a merge without the looks merge"
                " driver); it was left untouched: keep one side (git checkout --ours --"
                f" {path.name}, or --theirs; `looks apply` then adopts the other side's looks), or"
                " `git merge --abort`, `looks merge-driver install` and merge again"
            ) from None
        raise ManifestError(
            f"{path}:{e.lineno}: manifest is corrupt ({e.msg}); it was left untouched: {recover}"
        ) from None
    problems = _schemas.errors(data, "manifest")
    if problems:
        import jsonschema  # only to word the error

        error = jsonschema.exceptions.best_match(problems)
        assert error is not None
        where = ".".join(str(p) for p in error.absolute_path) or "top level"
        if isinstance(data, dict) and data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise ManifestError(
                f"{path}: manifest format version {data.get('version')!r} is not supported"
                f" by this looks (it reads version {FORMAT_VERSION}): upgrade looks"
            )
        raise ManifestError(
            f"{path}: manifest is invalid at {where} ({error.message}); it was left"
            f" untouched: {recover}"
        )
    nodes = {a: NodeRecord.from_json(a, r) for a, r in data["nodes"].items()}
    return Manifest(
        lineage=data["lineage"], recipe=data["recipe"], serial=data["serial"], nodes=nodes
    )


def _load(path: Path, recipe: str, *, rehome: bool = False) -> tuple[Manifest, str | None, bool]:
    """The manifest at path (or a new one) with its journal replayed, its text as on disk
    less the serial (None when there is none), and whether it differs from the file."""
    try:
        text = durable.read_state(path).decode("utf-8")
    except FileNotFoundError:
        if not rehome and not journal_path_for(path).exists():
            _refuse_a_renamed_recipes_manifest(path, recipe)
        manifest, written, changed = Manifest.new(recipe), None, False
    except UnicodeDecodeError as e:
        recover = _RECOVER.format(name=path.name)
        raise ManifestError(f"{path}: cannot read manifest ({e}); {recover}") from None
    except OSError as e:
        raise ManifestError(f"{path}: cannot read manifest ({_cause(e)})") from None
    else:
        manifest, written = parse_manifest(text, path), _SERIAL_LINE.sub("", text, count=1)
        home = recipe if rehome else _home(path, manifest.recipe, recipe)
        changed, manifest.recipe = home != manifest.recipe, home
    changes = read_journal(journal_path_for(path))
    _check_lineage(manifest, changes, path, fresh=written is None)
    for change in changes:
        apply_change(manifest, change)
    return manifest, written, changed or bool(changes)


def _check_lineage(
    manifest: Manifest, changes: list[dict[str, Any]], path: Path, *, fresh: bool
) -> None:
    """A journal replays only onto the manifest it was written for (its lines name the
    lineage; older lines do not). With no manifest on disk, its lineage is the journal's,
    so a resumed run sends the idempotency keys the journaled requests were sent with."""
    lineages = {c["lineage"] for c in changes if isinstance(c.get("lineage"), str)}
    if fresh and len(lineages) == 1:
        manifest.lineage = lineages.pop()
        return
    foreign = sorted(lineages - {manifest.lineage})
    if foreign:
        journal = journal_path_for(path)
        raise ManifestError(
            f"{journal}: this journal was written for another manifest (lineage"
            f" {foreign[0]}), not {path.name} (lineage {manifest.lineage}); both were left"
            f" untouched. Put back the manifest it belongs to (a checkout or a restore replaced"
            " it?) or move the journal beside its own manifest; do not delete either: the"
            " looks they record would be paid for again"
        )


def _cause(e: OSError) -> str:
    name = errno.errorcode.get(e.errno or 0)
    return f"{e.strerror or e} [{name}]" if name else str(e.strerror or e)


def _home(path: Path, stored: str, recipe: str) -> str:
    """The recipe field to keep; a manifest that belongs to another recipe is refused."""
    if stored == recipe:
        return stored
    theirs, mine = path.parent / stored, path.parent / recipe
    if _same_file(theirs, mine):
        return recipe  # the same file spelt another way (an absolute path, say)
    if not theirs.exists() and theirs.name == mine.name:
        _note(
            f"{path}: its recipe {stored} no longer exists; taken to be {recipe} (same name),"
            " moved with its repository"
        )
        return recipe
    shown = os.path.relpath(mine)
    raise ManifestError(
        f"{path}: this manifest belongs to recipe {os.path.relpath(theirs)}, not {shown};"
        f" nothing was done. Pass that recipe or {shown}'s own manifest; to make this one"
        f" {shown}'s (a recipe renamed or moved), run: looks rehome {shown} --manifest {path}"
    )


def _refuse_another_recipe(path: Path, recipe: str) -> None:
    """_home's refusal alone, without replaying the journal (it may be damaged)."""
    try:
        text = durable.read_state(path).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return  # nothing recorded there, or _load reports why it cannot be read
    stored = parse_manifest(text, path).recipe
    if stored != recipe and not _same_file(path.parent / stored, path.parent / recipe):
        _home(path, stored, recipe)


def _refuse_a_renamed_recipes_manifest(path: Path, recipe: str) -> None:
    """Before a first manifest is started: a manifest beside it whose recipe no longer
    exists is most likely this recipe's, renamed (`git mv a.yaml b.yaml`); one whose recipe
    is this very file (a hard link) is this recipe's. A new manifest would pay again for
    every look it records, so the choice is the user's."""
    for other in sorted(path.parent.glob("*.manifest.json")):
        try:
            stored = parse_manifest(durable.read_state(other).decode("utf-8"), other).recipe
        except (OSError, UnicodeDecodeError, ManifestError):
            continue  # refused with its own reason when it is used
        theirs, mine = other.parent / stored, path.parent / recipe
        if not mine.exists():
            continue  # nothing to compare with
        shown = os.path.relpath(mine)
        if resolved(theirs) != resolved(mine) and theirs.exists() and _same_file(theirs, mine):
            raise ManifestError(
                f"{path}: no manifest yet, but {shown} is the same file as {stored} (a hard"
                f" link), whose manifest is {other}; nothing was done. Pass --manifest {other}"
                " (one recipe, one manifest)"
            )
        if theirs.exists():
            continue
        raise ManifestError(
            f"{path}: no manifest yet, but {other} records recipe {stored}, which no longer"
            f" exists; nothing was done. If {shown} is that recipe renamed or moved, run: looks"
            f" rehome {shown} --manifest {other} (it becomes {path.name}); if {shown} is a new"
            f" recipe, move {other.name} out of this directory first (its looks stay recorded"
            " there)"
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


# The serial's line as Manifest.dumps writes it (between "recipe" and "version").
_SERIAL_LINE = re.compile(r'^  "serial": \d+,\n', re.MULTILINE)


def with_serial(body: str, serial: int) -> str:
    """Manifest.dumps()'s text from Manifest.dumps(with_serial=False)'s: the serial's line
    goes before the last key's, "version" (keys are sorted; a line break inside a value is
    escaped, so the last line starting `  "version": ` is the key's)."""
    head, version, tail = body.rpartition('\n  "version": ')
    return f'{head}\n  "serial": {serial},{version}{tail}'


def read_manifest(path: Path, recipe: str) -> Manifest:
    """The manifest at path with its journal replayed, or a new one; never writes."""
    return _load(real_path(path), recipe)[0]


# -- journal ------------------------------------------------------------------------


def journal_path_for(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + ".journal")


def lock_path_for(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + ".lock")


@dataclass(frozen=True)
class JournalScan:
    """A journal read line by line: its changes and the lines that are not one."""

    changes: list[dict[str, Any]]
    good: list[bytes]  # the lines of those changes, as written
    damaged: list[tuple[int, bytes]]  # (line number, bytes) of complete lines that are no change
    torn: int | None  # the number of an unfinished last line (a write cut off), if any


def scan_journal(path: Path) -> JournalScan:
    try:
        raw = durable.read_state(path)
    except FileNotFoundError:
        raw = b""
    except OSError as e:
        raise ManifestError(f"{path}: cannot read journal ({_cause(e)})") from None
    lines = raw.split(b"\n")
    scan = JournalScan([], [], [], None)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            change = json.loads(line)
            if not _is_change(change):
                raise ValueError("not a change")
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            if number == len(lines):  # no newline after it: the write was cut off
                return dataclasses.replace(scan, torn=number)
            scan.damaged.append((number, line))
            continue
        scan.changes.append(change)
        scan.good.append(line)
    return scan


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every change in a journal; a torn last line (a crash mid-append) is dropped with a
    note; a damaged line anywhere else is refused, the journal left as it is."""
    scan = scan_journal(path)
    if scan.damaged:
        number = scan.damaged[0][0]
        raise ManifestError(
            f"{path}:{number}: journal is damaged; it was left untouched. Run `looks repair"
            " RECIPE` (with --manifest if not the default) to keep every complete change and"
            " set the damaged lines aside; do not delete the journal: the looks it records"
            " would be paid for again"
        )
    if scan.torn is not None:
        _note(f"{path}:{scan.torn}: ignored an unfinished last line (a write cut off by a crash)")
    return scan.changes


def repair_journal(path: Path) -> JournalScan:
    """Keep every change of a damaged journal; its damaged lines are appended to
    `<journal>.damaged`, never dropped. Only under the manifest's lock.

    Safe from paying twice: an idempotency key is derived from the lineage, the address,
    the fingerprint and the attempt, so a lost line's key is derived again, and the API
    replays what it made.
    """
    scan = scan_journal(path)
    if scan.damaged:
        aside = damaged_path_for(path)
        try:
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise durable.write_error(aside, e) from None
        try:
            durable.append(fd, b"".join(line + b"\n" for _, line in scan.damaged), aside)
        finally:
            os.close(fd)
        durable.replace(path, b"".join(line + b"\n" for line in scan.good))
    return scan


def damaged_path_for(journal: Path) -> Path:
    return journal.with_name(journal.name + ".damaged")


def _is_change(change: Any) -> bool:
    """A journal line: an address and a record that is null (forget) or a valid node."""
    if not isinstance(change, dict) or not isinstance(change.get("address"), str):
        return False
    if "record" not in change:
        return False
    record = change["record"]
    return record is None or _schemas.is_valid(record, "manifest", "node")


def apply_change(manifest: Manifest, change: Mapping[str, Any]) -> None:
    address = change["address"]
    if change.get("record") is None:
        manifest.nodes.pop(address, None)
    else:
        manifest.nodes[address] = NodeRecord.from_json(address, change["record"])


class ManifestStore:
    """An open, locked manifest: records changes durably and folds them atomically.

    A write that fails (disk full, read-only, no permission) raises StateWriteError and
    changes nothing recorded before: the last good manifest and the journal stay as they
    were, and the change is not taken as made.
    """

    def __init__(
        self, path: Path, recipe: str, *, rehome: bool = False, repair: bool = False
    ) -> None:
        """Lock and open; `rehome` makes the manifest recipe's (an explicit act), `repair`
        first sets a damaged journal's bad lines aside (see repair_journal)."""
        self.path = path = real_path(path)
        self.journal_path = journal_path_for(path)
        self.failed: StateWriteError | None = None  # the first write that failed
        self._torn = False  # a failed append left a partial line: append no more
        self._lock = _Lock(lock_path_for(path), path)
        self._lock.acquire()
        try:
            for stale in path.parent.glob(f".{path.name}.*.tmp"):
                durable.unlink(stale)  # a run died between writing and renaming
            if repair and not rehome:
                _refuse_another_recipe(path, recipe)  # before the journal is touched
            self.repaired = repair_journal(self.journal_path) if repair else None
            # Only a change can change the file: a run that changes nothing serialises nothing.
            self.manifest, self._written, self._dirty = _load(path, recipe, rehome=rehome)
            self._journal: int | None = None
            self._pending = 0
            self._unsynced = False  # the journal's last line waits on a later fsync
            self.fold()
        except BaseException:
            self._lock.release()
            raise

    @property
    def nodes(self) -> Mapping[str, NodeRecord]:
        return self.manifest.nodes

    def record(self, node: NodeRecord, *, sync: bool = True) -> None:
        """Make a change durable (journal + fsync) before the caller acts on it.

        `sync=False` for a change no request depends on (what the API already holds and a
        next run can ask again): it is journaled now and fsynced with the next change, or
        with the fold. A killed process loses none of it.
        """
        if self.manifest.nodes.get(node.address) == node:
            return
        self._append({"address": node.address, "record": node.to_json()}, sync=sync)
        self.manifest.nodes[node.address] = node
        self._dirty = True

    def forget(self, address: str) -> None:
        if address not in self.manifest.nodes:
            return
        self._append({"address": address, "record": None})
        del self.manifest.nodes[address]
        self._dirty = True

    def _append(self, change: dict[str, Any], *, sync: bool = True) -> None:
        if self._torn:
            assert self.failed is not None
            raise self.failed
        change = {**change, "lineage": self.manifest.lineage}  # replayed onto this manifest only
        line = json.dumps(change, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        try:
            if self._written is None:
                # A first change: the lineage (part of every idempotency key) goes to disk first.
                self._write(self.manifest.dumps(with_serial=False))
            if self._journal is None:
                self._journal = _open_journal(self.journal_path)
            # At most one line waits on a fsync, the last: a power loss can then only tear
            # the last line (dropped with a note), never leave a hole before a later one.
            sync = sync or self._unsynced
            durable.append(self._journal, line, self.journal_path, sync=sync)
            self._unsynced = not sync
        except StateWriteError as e:
            self.failed = self.failed or e
            self._torn = self._torn or e.torn
            raise
        self._pending += 1

    @property
    def pending_changes(self) -> int:
        return self._pending

    def fold(self) -> None:
        """Write the manifest atomically if its content changed, then drop the journal.

        When the manifest cannot be written, it and the journal are left as they were.
        """
        try:
            if self._dirty:
                body = self.manifest.dumps(with_serial=False)
                # No empty manifest for a run that made nothing.
                fresh = self._written is None
                if (fresh and self.manifest.nodes) or (not fresh and body != self._written):
                    self._write(body)
                self._dirty = False
            if self._journal is not None:
                os.close(self._journal)
                self._journal = None
            durable.unlink(self.journal_path)
        except StateWriteError as e:
            self.failed = self.failed or e
            raise
        self._pending = 0
        self._torn = False  # the journal, torn or not, is folded and gone
        self._unsynced = False

    def _write(self, body: str) -> None:
        """Write the manifest whose text without its serial is `body` (not dumped again:
        a manifest of thousands of looks takes tens of milliseconds to dump)."""
        self.manifest.serial += 1
        try:
            durable.replace(self.path, with_serial(body, self.manifest.serial).encode("utf-8"))
        except StateWriteError:
            self.manifest.serial -= 1
            raise
        self._written = body

    def close(self) -> None:
        """Fold and unlock. A write that fails again is not raised twice: the first
        failure already was."""
        already = self.failed
        try:
            self.fold()
        except StateWriteError:
            if already is None:
                raise
        finally:
            if self._journal is not None:
                os.close(self._journal)
                self._journal = None
            self._lock.release()

    def __enter__(self) -> ManifestStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_journal(path: Path) -> int:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise durable.write_error(path, e) from None
    try:
        durable.fsync_dir(path.parent)
    except StateWriteError:
        os.close(fd)
        raise
    return fd


class _Lock:
    """An flock on a side file: the OS frees it when its holder dies, even by kill -9."""

    def __init__(self, path: Path, manifest: Path) -> None:
        self.path = path
        self.manifest = manifest
        self._fd: int | None = None

    def acquire(self) -> None:
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise ManifestLockedError(f"{self.manifest} is locked by {holder}") from None
            # The previous holder may have unlinked the file between our open and flock.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        info = f"pid {os.getpid()} on {socket.gethostname()} since {now}\n"
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            durable.write_all(fd, info.encode(), self.path)
        except OSError as e:
            self.release()
            raise durable.write_error(self.path, e) from None
        except StateWriteError:
            self.release()
            raise

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            raise ManifestError(
                f"{self.manifest}: directory {self.path.parent} does not exist:"
                " create it, or pass another --manifest"
            ) from None
        except OSError as e:
            raise durable.write_error(self.path, e) from None

    def release(self) -> None:
        if self._fd is None:
            return
        # A lock file left behind is harmless (a lock is the flock, not the file).
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


def _read_holder(fd: int) -> str:
    """Who holds the lock: `pid N on HOST since TIME`, as the holder wrote it.

    A holder writes that line just after taking the lock, so an empty file is given a moment;
    a holder that never writes it (killed in between, or another program, whose text is not
    that line) is found in the kernel's lock table, which only lists this host's locks.
    """
    deadline = time.monotonic() + _HOLDER_WAIT
    while True:
        try:
            text = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
        except OSError:
            text = ""
        if text or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if re.match(r"pid \d+ on \S", text):
        return text
    pid = _flock_pid(os.fstat(fd).st_ino)
    return f"pid {pid if pid is not None else '(unknown)'} on {socket.gethostname()}"


_HOLDER_WAIT = 2.0  # seconds a new holder has to write its line


def _flock_pid(inode: int) -> int | None:
    """The pid holding an flock on this inode, from /proc/locks (Linux), else None."""
    try:
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in table.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:2156065 0 EOF"; "->" marks a waiter.
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].endswith(f":{inode}"):
            try:
                return int(fields[4])
            except ValueError:
                return None
    return None
