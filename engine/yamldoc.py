"""Bounded, safe YAML: plain data from a YAML file, with the line of every key and item.

The document is built from libyaml's event stream with an explicit stack, never by
recursion (libyaml's own composer recurses in C and crashes on deep nesting), and under
limits checked *before* anything grows: the file's size, the nesting depth and the number
of nodes once aliases and merge keys (`<<`) are expanded. A hostile recipe (a "billion
laughs" alias or merge bomb, 50,000 nested lists, /dev/zero, a FIFO) is one problem line
in bounded time and memory, never a crash, a hang or a MemoryError.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import Problem

Location = tuple[str | int, ...]

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 2_000_000  # after expanding aliases and merge keys
MAX_TEXT = 64 * 2**20  # characters of all scalars, after expanding aliases and merge keys
MAX_SHOWN = 60  # characters of a value or key quoted in a message
MAX_PROBLEMS_KEPT = 10_000  # then problems are only counted
# Lines are recorded down to this depth (a recipe's deepest place is 6 levels down); deeper
# places report their ancestor's line. Recording them all would keep a 60-item tuple per item
# of a list nested 60 deep: 2,000,000 such items are a 4 MB file and 1.2 GB of line table.
MAX_LINE_DEPTH = 8

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_SAFE_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq")
)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser (when present: 5x faster) and the safe resolver, without dates.

    A name like 2024-01-01 is a string, not a date.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def shown(value: object) -> str:
    """A value quoted for a message, cut so a 10 MB string cannot make a 10 MB line."""
    if isinstance(value, str) and len(value) > MAX_SHOWN:
        # The repr of the two ends only: cheap whatever the length.
        return repr(value[: MAX_SHOWN - 12])[:-1] + "…" + repr(value[-6:])[1:]
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 4] + "…" + text[-3:]


def _path_part(part: str | int) -> str:
    text = str(part)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


@dataclass
class YamlDocument:
    """A parsed YAML document: its data, the line of every location, and its problems."""

    file: str
    data: Any = None
    lines: dict[Location, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    unreadable: set[Location] = field(default_factory=set)  # a problem was reported there
    omitted: int = 0  # problems past MAX_PROBLEMS_KEPT: counted, not kept

    @property
    def full(self) -> bool:
        """Whether further problems are only counted (skip the work of wording them)."""
        return len(self.problems) >= MAX_PROBLEMS_KEPT

    def mark(self, loc: Location, line: int) -> None:
        """Record where loc starts, unless known already or deeper than recorded."""
        if len(loc) <= MAX_LINE_DEPTH:
            self.lines.setdefault(loc, line)

    def line(self, loc: Location) -> int:
        while loc not in self.lines and loc:
            loc = loc[:-1]
        return self.lines.get(loc, 1)

    def add(self, loc: Location, message: str, line: int | None = None) -> None:
        if self.full:
            self.omitted += 1
            return
        path = ".".join(_path_part(p) for p in loc)
        where = self.line(loc) if line is None else line
        self.problems.append(Problem(self.file, where, path, message))


class _Fatal(Exception):
    """Parsing cannot go on: a syntax error or a limit; one problem says why."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def read_text(path: Path, doc: YamlDocument) -> str | None:
    """The file's text, or None with a problem: never blocks (FIFOs), never reads unbounded."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        doc.add((), "no such file")
        return None
    except (OSError, ValueError) as e:
        doc.add((), f"cannot read: {getattr(e, 'strerror', None) or e}")
        return None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            doc.add((), "is a directory, not a recipe file")
            return None
        if not stat.S_ISREG(mode):
            doc.add((), "is not a regular file (a recipe is a file its manifest sits beside)")
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        doc.add((), f"cannot read: {e.strerror}")
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        doc.add((), f"larger than {MAX_FILE_BYTES // 2**20} MiB; split it into several recipes")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        byte = data[e.start]
        doc.add((), f"not UTF-8: byte 0x{byte:02x} at column {column}", line=line)
        return None


@dataclass
class _Frame:
    """A mapping or sequence being built."""

    loc: Location
    value: dict[str, Any] | list[Any] | None  # None: discarded (a bad tag, a complex key)
    anchor: str | None
    size: int = 1  # nodes once expanded
    text_before: int = 0  # the builder's text count when this frame started
    height: int = 1
    record: bool = True  # record lines (False inside a complex key)
    # mappings only
    key: Any = None
    has_key: bool = False
    key_ok: bool = False
    merge: bool = False
    merges: list[dict[str, Any]] = field(default_factory=list)
    first_line: dict[str, int] = field(default_factory=dict)


class _Builder:
    """Turns the event stream into plain data, under the limits."""

    def __init__(self, loader: _Loader, doc: YamlDocument, max_nodes: int) -> None:
        self.loader = loader
        self.doc = doc
        self.max_nodes = max_nodes
        self.nodes = 0
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int, int, int]] = {}  # value, size, height, text
        self.text = 0  # characters of scalars read so far, aliases expanded
        self.building: set[str] = set()
        self._resolved: dict[str, str] = {}  # plain scalar -> its implicit tag (short ones)
        self.result: Any = None

    # -- where the next node goes ------------------------------------------------------

    def _child_loc(self) -> tuple[Location, bool, bool]:
        """Where the node about to start goes: its location, whether its lines are
        recorded, and whether it is a mapping key (then the location is its mapping's)."""
        if not self.stack:
            return (), True, False
        top = self.stack[-1]
        if isinstance(top.value, list):
            return top.loc + (len(top.value),), top.record, False
        if isinstance(top.value, dict):
            if not top.has_key:
                return top.loc, top.record, True
            if top.key_ok and not top.merge:
                return top.loc + (top.key,), top.record, False
            return top.loc + ("<<",), False, False
        return top.loc, False, False  # inside a discarded collection

    def _count_text(self, chars: int, line: int) -> None:
        # A 1 MB string aliased 100,000 times is few nodes but 100 GB of text to check.
        self.text += chars
        if self.text > MAX_TEXT:
            raise _Fatal(
                line,
                f"more than {MAX_TEXT:,} characters of text once aliases and merge keys"
                " are expanded",
            )

    def _count(self, size: int, height: int, line: int) -> None:
        self.nodes += size
        if self.nodes > self.max_nodes:
            raise _Fatal(
                line,
                f"more than {self.max_nodes:,} nodes once aliases and merge keys are expanded",
            )
        if len(self.stack) + height > MAX_DEPTH:
            raise _Fatal(line, f"nested deeper than {MAX_DEPTH} levels")

    def _deliver(self, value: Any, size: int, height: int, line: int) -> None:
        """A finished node: into its parent (as item, key or value), or the result."""
        if not self.stack:
            self.result = value
            return
        top = self.stack[-1]
        top.size += size
        top.height = max(top.height, height + 1)
        if isinstance(top.value, dict) and not top.has_key:
            self._take_key(top, value, line)
            return
        if value is _UNREADABLE:
            value = None  # reported where it was read; the schema skips it
        if isinstance(top.value, list):
            top.value.append(value)
            return
        if not isinstance(top.value, dict):
            return
        top.has_key = False
        if top.merge:
            self._take_merge(top, value)
        elif top.key_ok:
            top.value[top.key] = value

    def _take_key(self, top: _Frame, key: Any, line: int) -> None:
        top.has_key, top.key, top.key_ok, top.merge = True, key, False, False
        if key is _MERGE_KEY:
            top.merge = True
            return
        if not isinstance(key, str):
            if top.record and key is not _UNREADABLE:
                loc = top.loc + (str(key),)
                self.doc.mark(loc, line)
                self.doc.add(loc, "keys must be strings")
            return
        loc = top.loc + (key,)
        if key in top.first_line:
            if top.record:
                first = top.first_line[key]
                self.doc.add(loc, f"duplicate key {shown(key)} (first at line {first})", line)
            return
        top.first_line[key] = line
        top.key_ok = True
        if top.record and len(loc) <= MAX_LINE_DEPTH:
            self.doc.lines[loc] = line

    def _take_merge(self, top: _Frame, value: Any) -> None:
        sources = value if isinstance(value, list) else [value]
        if not all(isinstance(s, dict) for s in sources):
            if top.record:
                self.doc.add(top.loc, "a merge key (<<) takes a mapping or a list of mappings")
                self.doc.unreadable.add(top.loc)
            return
        top.merges.extend(sources)

    # -- events --------------------------------------------------------------------------

    def scalar(self, event: yaml.ScalarEvent) -> None:
        text: str = event.value
        self.nodes += 1
        self.text += len(text)
        if self.nodes > self.max_nodes or self.text > MAX_TEXT:
            self._count(0, 0, _line(event))
            self._count_text(0, _line(event))
        top = self.stack[-1] if self.stack else None
        if (
            top is not None
            and top.record
            and event.anchor is None
            and event.tag is None
            and top.value.__class__ is dict
        ):
            # The common case, kept short: a plain key or value of a mapping.
            tag = self._implicit_tag(event) if event.implicit[0] else _STR
            if not top.has_key:
                if tag == _STR:
                    top.size += 1
                    self._take_key(top, text, _line(event))
                    return
            elif top.key_ok and not top.merge and tag != _MERGE:
                value = self._construct(tag, event)
                if value is not _UNREADABLE:
                    top.size += 1
                    top.height = max(top.height, 1)
                    top.has_key = False
                    assert isinstance(top.value, dict)
                    top.value[top.key] = value
                    return
        line = _line(event)
        loc, record, in_key = self._child_loc()
        if record and loc and not in_key and isinstance(top and top.value, list):
            self.doc.mark(loc, line)
        value = self._scalar_value(event, loc, record, in_key)
        self._anchor(event.anchor, value, 1, 0, len(text))
        self._deliver(value, 1, 0, line)

    def _implicit_tag(self, event: yaml.ScalarEvent) -> str:
        """The tag of a plain scalar (str, int, bool, ...), short ones remembered."""
        value: str = event.value
        short = len(value) <= 24
        tag = self._resolved.get(value) if short else None
        if tag is None:
            tag = self.loader.resolve(yaml.ScalarNode, value, event.implicit)
            if short and len(self._resolved) < 10_000:
                self._resolved[value] = tag
        return tag

    def _construct(self, tag: str, event: yaml.ScalarEvent) -> Any:
        """The value of a scalar of a safe or implicit tag; _UNREADABLE when it fails."""
        value: str = event.value
        if tag == _STR or tag not in _SAFE_TAGS:
            return value  # `=` and the like: plain text here
        # Plain decimal ints, the common case, without the general constructor
        # (012 is octal in YAML 1.1: left to it).
        decimal = value.isdigit() and value.isascii() and (value[0] != "0" or len(value) == 1)
        if tag == _INT and decimal and len(value) < 19:
            return int(value)
        node = yaml.ScalarNode(tag, event.value, style=event.style)
        try:
            return self.loader.yaml_constructors[tag](self.loader, node)
        except (yaml.YAMLError, ValueError, OverflowError):
            return _UNREADABLE

    def _scalar_value(
        self, event: yaml.ScalarEvent, loc: Location, record: bool, in_key: bool
    ) -> Any:
        tag = event.tag
        if tag in (None, "!"):
            if tag is None and event.implicit[0]:
                tag = self._implicit_tag(event)
            else:
                tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
            if tag == _MERGE and in_key:
                return _MERGE_KEY
            if tag not in _SAFE_TAGS:
                tag = _STR  # `=` and the like: plain text here
        if tag == _STR:
            return event.value
        if tag not in _SAFE_TAGS:
            return self._bad_tag(tag, loc, record, in_key, _line(event))
        value = self._construct(tag, event)
        if value is _UNREADABLE and record:
            what = tag.rsplit(":", 1)[-1]
            self.doc.add(loc, f"cannot read {shown(event.value)} as {what}", _line(event))
            if not in_key:
                self.doc.unreadable.add(loc)
        return value

    def _bad_tag(self, tag: str, loc: Location, record: bool, in_key: bool, line: int) -> Any:
        if record:
            name = tag.replace("tag:yaml.org,2002:", "!!")
            message = f"unsupported YAML tag {shown(name)}; recipes hold plain data only"
            if in_key:
                self.doc.add(loc, message, line)  # at its mapping; the pair is dropped
            else:
                self.doc.mark(loc, line)
                self.doc.add(loc, message)
                self.doc.unreadable.add(loc)
        return _UNREADABLE

    def start_mapping(self, event: yaml.MappingStartEvent) -> None:
        self._start(event, mapping=True)

    def start_sequence(self, event: yaml.SequenceStartEvent) -> None:
        self._start(event, mapping=False)

    def _start(self, event: yaml.CollectionStartEvent, *, mapping: bool) -> None:
        line = _line(event)
        self._count(1, 1, line)
        loc, record, in_key = self._child_loc()
        if record and loc and not in_key:
            self.doc.mark(loc, line)
        tag = event.tag
        value: dict[str, Any] | list[Any] | None = {} if mapping else []
        if tag not in (None, "!", _MAP if mapping else _SEQ):
            self._bad_tag(tag, loc, record, in_key, line)
            value, record = None, False
        if in_key:
            record = False  # a complex key: reported as "keys must be strings" once built
        if event.anchor is not None:
            self.building.add(event.anchor)
        self.stack.append(_Frame(loc, value, event.anchor, record=record, text_before=self.text))

    def end(self, event: yaml.CollectionEndEvent) -> None:
        frame = self.stack.pop()
        value: Any = frame.value
        if isinstance(value, dict) and frame.merges:
            # YAML merge: explicit keys win, then the earlier merged mapping.
            for source in frame.merges:
                for k, v in source.items():
                    value.setdefault(k, v)
        if value is None:
            value = _UNREADABLE
        if frame.anchor is not None:
            self.building.discard(frame.anchor)
            self._anchor(
                frame.anchor, value, frame.size, frame.height, self.text - frame.text_before
            )
        self._deliver(value, frame.size, frame.height, _line(event))

    def alias(self, event: yaml.AliasEvent) -> None:
        line = _line(event)
        loc, record, in_key = self._child_loc()
        if event.anchor in self.building:
            raise _Fatal(line, f"alias *{event.anchor} refers to the node that contains it")
        if event.anchor not in self.anchors:
            raise _Fatal(line, f"alias *{event.anchor} has no anchor &{event.anchor} before it")
        value, size, height, text = self.anchors[event.anchor]
        self._count(size, height, line)
        self._count_text(text, line)
        if record and loc and not in_key:
            self.doc.mark(loc, line)
        self._deliver(value, size, height, line)

    def _anchor(self, name: str | None, value: Any, size: int, height: int, text: int) -> None:
        if name is not None:
            self.anchors[name] = (value, size, height, text)


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else 1


class _Marker:
    """A value that is not data: a merge key, or a node already reported as unreadable."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_MERGE_KEY = _Marker("<<")
_UNREADABLE = _Marker("unreadable")


def parse_yaml(text: str, doc: YamlDocument, *, max_nodes: int = MAX_NODES) -> None:
    """Fill doc.data (None when nothing could be read) and doc.problems from a YAML text."""
    loader = _Loader(text)
    builder = _Builder(loader, doc, max_nodes)
    documents = 0
    try:
        handlers: dict[type[yaml.Event], Callable[[Any], None]] = {
            yaml.ScalarEvent: builder.scalar,
            yaml.MappingStartEvent: builder.start_mapping,
            yaml.SequenceStartEvent: builder.start_sequence,
            yaml.MappingEndEvent: builder.end,
            yaml.SequenceEndEvent: builder.end,
            yaml.AliasEvent: builder.alias,
        }
        while True:
            event = loader.get_event()
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _Fatal(_line(event), "a recipe is one YAML document; found a second one")
            elif event is None or isinstance(event, yaml.StreamEndEvent):
                break
    except _Fatal as e:
        doc.problems.append(Problem(doc.file, e.line, "", e.message))
        return
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        doc.problems.append(Problem(doc.file, line, "", f"invalid YAML: {e.problem or e.context}"))
        return
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        doc.problems.append(
            Problem(doc.file, line, "", f"invalid YAML: character {e.character!r} not allowed")
        )
        return
    except yaml.YAMLError as e:
        doc.problems.append(Problem(doc.file, 1, "", f"invalid YAML: {e}"))
        return
    finally:
        loader.dispose()
    if documents == 0:
        doc.problems.append(Problem(doc.file, 1, "", "empty recipe"))
        return
    doc.data = None if builder.result is _UNREADABLE else builder.result
