"""`looks merge-driver`: git's merge driver for manifests, and its one-time `install`.

Git runs `looks merge-driver %O %A %B %P` for every `*.manifest.json` it has to merge: the
ancestor, ours (where the result goes) and theirs as temporary files, and the manifest's
path in the work tree. Exit 0 means merged; anything else is a conflict, and git leaves
ours in the file for the user to resolve.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from engine import durable
from engine.errors import LooksError, ManifestError, MergeConflictError, StateWriteError
from engine.manifest import journal_path_for, lock_path_for, read_journal
from engine.manifest_merge import Side, merge_manifests, touched_by

DRIVER = "looks-manifest"
ATTRIBUTE_LINE = f"*.manifest.json merge={DRIVER}"
DRIVER_ARGUMENTS = "merge-driver %O %A %B %P"


def run(base: Path, ours: Path, theirs: Path, path: str | None) -> int:
    """Merge theirs into ours by address; a MergeConflictError is git's conflict."""
    shown = path or str(ours)
    sides = [_read(p, label, shown) for p, label in ((ours, "ours"), (theirs, "theirs"))]
    ancestor = _read(base, "base", shown) if base.exists() else None
    mine, other = sides
    if path is not None:
        mine, other = _with_unfolded_changes(Path(path), ancestor, mine, other)
    result = merge_manifests(ancestor, mine, other, shown)
    _replace(ours, result.text)
    if result.kept_both:
        print(
            f"looks: {shown}: {len(result.kept_both)} address(es) changed on both sides"
            f" ({', '.join(result.kept_both)}): kept the more recent record; the other look"
            " is recorded as superseded (`looks prune` deletes it)",
            file=sys.stderr,
        )
    return 0


def _read(path: Path, label: str, shown: str) -> Side:
    try:
        return Side(path.read_text(encoding="utf-8"), label)
    except (OSError, UnicodeDecodeError) as e:
        raise MergeConflictError(f"{shown}: cannot read the {label} version ({e})") from None


def _with_unfolded_changes(
    manifest: Path, base: Side | None, ours: Side, theirs: Side
) -> tuple[Side, Side]:
    """Ours and theirs, the work tree's journal replayed on its own side; refused when that
    cannot be safe.

    A run in progress would fold its own copy over the merge; a journal left by a run that
    died is replayed on the merged file later, which is only harmless when the other side
    changed none of the addresses it holds (the journal's records then are the merged ones).
    The work tree's side is ours, except in a rebase, where ours is the upstream.
    """
    holder = _lock_holder(lock_path_for(manifest))
    if holder is not None:
        raise MergeConflictError(
            f"{manifest}: a looks run holds it ({holder}): let it finish, then merge again"
        )
    try:
        changes = read_journal(journal_path_for(manifest))
    except ManifestError as e:
        raise MergeConflictError(str(e)) from None
    if not changes:
        return ours, theirs
    rebasing = _rebasing()
    own, other = (theirs, ours) if rebasing else (ours, theirs)
    clash = sorted({str(c["address"]) for c in changes} & touched_by(base, other, str(manifest)))
    if clash:
        raise MergeConflictError(
            f"{manifest}: its journal holds unfolded changes to {clash[0]}, which the other"
            f" side changed too: `git {'rebase' if rebasing else 'merge'} --abort`, run `looks"
            " apply` on its recipe (it finishes the run and folds the journal), commit the"
            " manifest, then merge again"
        )
    own = Side(own.text, own.label, tuple(changes))
    return (other, own) if rebasing else (own, other)


def _rebasing() -> bool:
    """Whether git is rebasing here (git runs the driver from the top of the work tree)."""
    try:
        merge = Path(_git(Path.cwd(), "rev-parse", "--git-path", "rebase-merge"))
        apply = Path(_git(Path.cwd(), "rev-parse", "--git-path", "rebase-apply"))
    except LooksError:
        return False  # run by hand outside a repository: a plain merge
    return merge.is_dir() or (apply / "rebasing").exists()


def _lock_holder(lock: Path) -> str | None:
    """Who holds the manifest's lock, or None when nobody does (the file may be stale)."""
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise MergeConflictError(f"{lock}: cannot check the lock ({e})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
            return text or "another run"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _replace(path: Path, text: str) -> None:
    """Write the merged text atomically: a failure leaves ours as it was (a conflict)."""
    try:
        durable.replace(path, text.encode("utf-8"))
    except StateWriteError as e:
        raise MergeConflictError(f"cannot write the merged manifest: {e}") from None


# -- install --------------------------------------------------------------------------


def install(cwd: Path) -> int:
    """Declare the driver in .gitattributes (committed) and in the local git config."""
    top = Path(_git(cwd, "rev-parse", "--show-toplevel"))
    attributes = top / ".gitattributes"
    try:
        text = attributes.read_text(encoding="utf-8") if attributes.exists() else ""
    except (OSError, UnicodeDecodeError) as e:
        raise LooksError(f"{attributes}: cannot read ({e})") from None
    if any(line.split() == ATTRIBUTE_LINE.split() for line in text.splitlines()):
        print(f"{attributes}: already routes *.manifest.json to the {DRIVER} driver")
    else:
        separator = "" if not text or text.endswith("\n") else "\n"
        _write_attributes(attributes, f"{text}{separator}{ATTRIBUTE_LINE}\n")
        print(f"{attributes}: added `{ATTRIBUTE_LINE}` (commit it)")
    _git(cwd, "config", "--local", f"merge.{DRIVER}.name", "looks manifests, merged by address")
    command = driver_command()
    _git(cwd, "config", "--local", f"merge.{DRIVER}.driver", command)
    print(f"git config (this clone): merge.{DRIVER}.driver = {command}")
    return 0


def driver_command() -> str:
    """The command git runs: this very `looks`, by absolute path (quoted for git's shell).

    Git runs the driver with its own PATH, where a looks installed in a venv that is not
    active (or by pipx, in ~/.local/bin) is "command not found", which is a conflict.
    """
    beside = Path(sys.executable).parent / "looks"  # a venv's or pipx's bin
    if beside.is_file() and os.access(beside, os.X_OK):
        return f"{shlex.quote(str(beside.absolute()))} {DRIVER_ARGUMENTS}"
    found = shutil.which("looks")
    program = shlex.quote(os.path.abspath(found)) if found else "looks"
    return f"{program} {DRIVER_ARGUMENTS}"


def _write_attributes(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise LooksError(f"{path}: cannot write ({e})") from None


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise LooksError(f"cannot run git ({e}): install git first") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
        raise LooksError(f"git {args[0]}: {detail} (run this inside the git repository)")
    return done.stdout.strip()
