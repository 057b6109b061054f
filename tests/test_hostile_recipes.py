"""Hostile recipes through the real CLI: bombs, deep nesting, huge files, odd file types.

Each runs `looks` as a child process under a memory limit (RLIMIT_AS) and a CPU limit, so a
regression fails here (a MemoryError, a crash, a killed child) instead of eating the machine.
Every answer must be one clear problem line per problem, exit 1, and no traceback.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 1024 * 2**20  # address space: the child fails rather than swap the machine
CPU_SECONDS = 120
MAX_LOOKS = 100_000  # the documented limits (README, "Limits")
MAX_DEPTH = 64


@dataclass
class Child:
    code: int
    out: str
    err: str
    max_rss: int  # bytes, of this child alone


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def looks_limited(*args: str | Path, cwd: Path | None = None) -> Child:
    """Run `looks ARGS...` under the limits; its own peak memory comes from wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "looks.cli", *map(str, args)],
            cwd=cwd or ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            preexec_fn=_limits,
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(
            child.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_maxrss * 1024,
        )


def refused(path: Path, *args: str) -> list[str]:
    """Validate path; it must fail cleanly; its stderr lines."""
    child = looks_limited("validate", path, *args)
    assert "Traceback" not in child.err, child.err[-2000:]
    assert (child.code, child.out) == (1, ""), child.err[-2000:]
    return child.err.splitlines()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


HEAD = "version: 1\navatars:\n  s:\n    name: S\n"  # avatar s at line 3
EXISTING = "    base: {type: existing, look_id: x}\n"  # line 5


# -- expansion bombs ----------------------------------------------------------------------


def test_merge_key_bomb_is_one_line(tmp_path: Path) -> None:
    # 10 merges of the level below, 8 levels: 10**8 pairs once merged (a few hundred bytes).
    lines = ["a0: &a0 {" + ", ".join(f"k{i}: x" for i in range(10)) + "}"]
    lines += [
        f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 10)}], z{i}: x}}" for i in range(1, 9)
    ]
    path = write(tmp_path / "merge.yaml", "\n".join(lines) + "\n")
    assert len(path.read_bytes()) < 700
    assert refused(path) == [
        f"{path}:6: more than 2,000,000 nodes once aliases and merge keys are expanded"
    ]


def test_mapping_alias_bomb_is_one_line(tmp_path: Path) -> None:
    lines = ["a0: &a0 {" + ", ".join(f"k{i}: x" for i in range(10)) + "}"]
    lines += [
        f"a{i}: &a{i} {{" + ", ".join(f"k{j}: *a{i - 1}" for j in range(10)) + "}"
        for i in range(1, 9)
    ]
    path = write(tmp_path / "maps.yaml", "\n".join(lines) + "\n")
    assert refused(path) == [
        f"{path}:6: more than 2,000,000 nodes once aliases and merge keys are expanded"
    ]


def test_alias_that_nests_too_deep_once_expanded(tmp_path: Path) -> None:
    half = MAX_DEPTH // 2 + 1
    text = f"deep: &d {'[' * half}x{']' * half}\nagain: {'[' * half}*d{']' * half}\n"
    path = write(tmp_path / "deep-alias.yaml", text)
    assert refused(path) == [f"{path}:2: nested deeper than {MAX_DEPTH} levels"]


def test_matrix_of_a_billion_looks_is_refused_before_expanding(tmp_path: Path) -> None:
    values = ", ".join(str(i) for i in range(1000))
    path = write(
        tmp_path / "matrix.yaml",
        HEAD
        + EXISTING
        + "    looks:\n"
        + "      '{a}-{b}-{c}':\n"
        + "        prompt: '{a} {b} {c}'\n"
        + f"        matrix: {{a: [{values}], b: [{values}], c: [{values}]}}\n",
    )
    assert len(path.read_bytes()) < 20_000
    assert refused(path) == [
        f"{path}:7: avatars.s.looks.{{a}}-{{b}}-{{c}}: too many looks: this look expands to"
        f" 1,000,000,000; a recipe may have at most {MAX_LOOKS:,} (raise it with --max-looks)"
    ]


def test_max_looks_counts_every_look_of_the_recipe_and_can_be_raised(tmp_path: Path) -> None:
    path = write(
        tmp_path / "twelve.yaml",
        HEAD
        + EXISTING
        + "    looks:\n"
        + "      plain: {prompt: p}\n"  # line 7
        + "      '{a}-{b}':\n"  # line 8
        + "        prompt: '{a} {b}'\n"
        + "        matrix: {a: [1, 2, 3], b: [1, 2, 3, 4]}\n",
    )
    assert refused(path, "--max-looks", "12") == [
        f"{path}:8: avatars.s.looks.{{a}}-{{b}}: too many looks: this look expands to 12;"
        " a recipe may have at most 12 (raise it with --max-looks)"
    ]
    ok = looks_limited("validate", path, "--max-looks", "13")
    assert (ok.code, ok.out, ok.err) == (0, f"{path}: ok (1 avatar, 13 looks)\n", "")
    planned = looks_limited("plan", path, "--max-looks", "13")
    assert planned.code == 0, planned.err
    # Raised past any bound, a 1000 x 1000 x 1000 matrix would be expanded: a MemoryError.
    huge = looks_limited("validate", path, "--max-looks", "10" * 13)
    assert (huge.code, huge.out) == (2, "")
    assert huge.err.splitlines() == [
        "looks: argument --max-looks: expected an integer at least 1 and at most 1000000,"
        f" not '{'10' * 13}' (see 'looks validate --help')"
    ]
    bad = looks_limited("plan", path, "--max-looks", "0")
    assert bad.code == 2
    assert "--max-looks: expected an integer at least 1 and at most 1000000, not '0'" in bad.err


def test_a_long_string_aliased_thousands_of_times_is_one_line(tmp_path: Path) -> None:
    # Few nodes, but 2 GB of prompts to check: the text is counted as aliases expand.
    looks = "".join(f"      l{i}: {{prompt: *big}}\n" for i in range(2000))
    path = write(
        tmp_path / "text.yaml",
        "x-big: &big " + "y" * 2**20 + "\n" + HEAD + EXISTING + "    looks:\n" + looks,
    )
    # Line 1 holds the 1 Mi anchor and the looks start at line 8: the 63rd alias passes
    # 64 Mi characters.
    assert refused(path) == [
        f"{path}:{8 + 62}: more than 67,108,864 characters of text once aliases and merge"
        " keys are expanded"
    ]


def test_matrix_value_that_would_fill_a_huge_key_or_name(tmp_path: Path) -> None:
    path = write(
        tmp_path / "fill.yaml",
        HEAD
        + EXISTING
        + "    looks:\n"
        + "      '{v}':\n"  # line 7
        + "        prompt: p\n"
        + "        name: '"
        + "{v}" * 250
        + "'\n"
        + "        matrix: {v: ["
        + "y" * 2**20
        + "]}\n",
    )
    assert refused(path) == [
        f"{path}:7: avatars.s.looks.{{v}}: a key, name, from or file of this look grows to"
        " 1,048,576 characters once its placeholders are filled; at most 2,000"
    ]


# -- nesting --------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [500, 50_000])
def test_deeply_nested_lists(tmp_path: Path, depth: int) -> None:
    path = write(tmp_path / "deep.yaml", "version: 1\navatars: " + "[" * depth + "]" * depth)
    (line,) = refused(path)
    assert line.startswith(f"{path}:2: ")
    assert "nest" in line  # ours, or libyaml's own "exceeded maximum nesting depth"


def test_deeply_nested_flow_mappings(tmp_path: Path) -> None:
    path = write(
        tmp_path / "deep.yaml", "version: 1\navatars: " + "{a: " * 50_000 + "x" + "}" * 50_000
    )
    (line,) = refused(path)
    assert line.startswith(f"{path}:2: ") and "nest" in line


def test_deep_block_nesting_past_the_limit(tmp_path: Path) -> None:
    lines = [f"{'  ' * i}k{i}:" for i in range(MAX_DEPTH + 5)]
    path = write(tmp_path / "block.yaml", "\n".join(lines) + " x\n")
    assert refused(path) == [f"{path}:{MAX_DEPTH + 1}: nested deeper than {MAX_DEPTH} levels"]


@pytest.mark.parametrize("mapping", [False, True])
def test_nesting_exactly_at_the_limit_is_read_and_one_more_is_refused(
    tmp_path: Path, mapping: bool
) -> None:
    def nested(levels: int) -> str:  # the top mapping is level 1
        inner = levels - 1
        return "{a: " * inner + "b" + "}" * inner if mapping else "[" * inner + "]" * inner

    at = write(tmp_path / "at.yaml", "version: 1\navatars: {}\nx: " + nested(MAX_DEPTH) + "\n")
    assert refused(at) == [
        f"{at}:3: x: unknown key 'x'; expected one of avatars, defaults, look_sets, moved, version"
    ]
    over = write(tmp_path / "over.yaml", "version: 1\navatars: {}\nx: " + nested(MAX_DEPTH + 1))
    assert refused(over) == [f"{over}:3: nested deeper than {MAX_DEPTH} levels"]


def test_a_long_list_nested_deep_keeps_memory_bounded(tmp_path: Path) -> None:
    # Every item of a list 40 levels down has a 41-part location: kept for each of 1.5
    # million items, the line table alone took over a gigabyte for a 3 MB file.
    depth, items = 40, 1_500_000
    body = "[" * depth + ",".join(["1"] * items) + "]" * depth
    path = write(tmp_path / "deep.yaml", "version: 1\navatars: {}\nx: " + body + "\n")
    child = looks_limited("validate", path)
    assert "Traceback" not in child.err, child.err[-2000:]
    assert (child.code, child.err) == (
        1,
        f"{path}:3: x: unknown key 'x'; expected one of avatars, defaults, look_sets, moved,"
        " version\n",
    )
    assert child.max_rss < 500 * 2**20


# -- odd values -------------------------------------------------------------------------------


def test_nul_byte_in_a_path(tmp_path: Path) -> None:
    path = write(
        tmp_path / "nul.yaml", HEAD + '    base: {type: photo, file: {path: "a\\0.png"}}\n'
    )
    assert refused(path) == [
        f"{path}:5: avatars.s.base.file.path: 'a\\x00.png' holds a NUL byte, which no file name can"
    ]


def test_huge_string_gives_a_short_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "long.yaml",
        HEAD + "    base: {type: prompt, prompt: " + "x" * 10_000_000 + "}\n"
        "    group_id: [" + "y" * 1_000_000 + "]\n",
    )
    lines = refused(path)
    assert lines == [
        f"{path}:5: avatars.s.base.prompt: prompt is 10000000 characters; the API allows 1000",
        f"{path}:6: avatars.s.group_id: must be a string, not a list",
    ]


def test_huge_key_and_value_are_cut_in_messages(tmp_path: Path) -> None:
    key = "K" * 2_000_000
    path = write(
        tmp_path / "key.yaml",
        HEAD
        + EXISTING
        + f"    ? {key}\n    : 1\n  s2:\n    name: S\n    base: {{type: '{key}'}}\n",
    )
    lines = refused(path)
    assert len(lines) == 2
    assert all(len(line) < 400 for line in lines)
    assert lines[0].startswith(f"{path}:6: avatars.s.KKKK")
    assert "unknown key 'KKKK" in lines[0]
    assert lines[1].startswith(f"{path}:10: avatars.s2.base.type: must be one of photo,")


def test_huge_number(tmp_path: Path) -> None:
    path = write(tmp_path / "int.yaml", "version: " + "9" * 100_000 + "\navatars: {}\n")
    (line,) = refused(path)
    assert line.startswith(f"{path}:1: version: cannot read '9999")
    assert line.endswith("as int") and len(line) < 200


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\navatars:\n  s:\n    name: Jos\xe9\n")
    assert refused(path) == [f"{path}:4: not UTF-8: byte 0xe9 at column 14"]


def test_two_documents_and_an_empty_one(tmp_path: Path) -> None:
    two = write(tmp_path / "two.yaml", "version: 1\navatars: {}\n---\nversion: 1\n")
    assert refused(two) == [f"{two}:3: a recipe is one YAML document; found a second one"]
    empty = write(tmp_path / "empty.yaml", "---\n")
    assert refused(empty) == [f"{empty}:1: must be a mapping, not null"]


def test_merge_keys_follow_yaml(tmp_path: Path) -> None:
    path = write(
        tmp_path / "merge.yaml",
        "version: 1\n"
        "x-base: &common {type: existing, look_id: shared}\n"
        "avatars:\n"
        "  a: {name: A, base: {<<: *common}}\n"
        "  b: {name: B, base: {<<: *common, look_id: own}}\n",
    )
    # x- keys are ignored (a home for anchors); the merges themselves are fine.
    child = looks_limited("validate", path)
    assert (child.code, child.out) == (0, f"{path}: ok (2 avatars, 0 looks)\n"), child.err
    ok = write(
        tmp_path / "ok.yaml",
        "version: 1\navatars:\n"
        "  a: &a {name: A, base: {type: existing, look_id: shared}}\n"
        "  b: {<<: *a, name: B}\n",
    )
    child = looks_limited("validate", ok)
    assert (child.code, child.err) == (0, "")


# -- files that are not recipes ----------------------------------------------------------------


def test_directory_fifo_and_device(tmp_path: Path) -> None:
    directory = tmp_path / "dir.yaml"
    directory.mkdir()
    assert refused(directory) == [f"{directory}:1: is a directory, not a recipe file"]
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    # Nobody writes to the FIFO: a plain open() would block forever.
    done = subprocess.run(
        [sys.executable, "-m", "looks.cli", "validate", str(fifo)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limits,
        check=False,
    )
    assert (done.returncode, done.stderr) == (
        1,
        f"{fifo}:1: is not a regular file (a recipe is a file its manifest sits beside)\n",
    )
    assert refused(Path("/dev/zero")) == [
        "/dev/zero:1: is not a regular file (a recipe is a file its manifest sits beside)"
    ]


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as f:
        f.write("version: 1\navatars: {}\n")
        f.write("# " + "x" * (17 * 2**20) + "\n")
    assert refused(path) == [f"{path}:1: larger than 16 MiB; split it into several recipes"]


# -- scale ---------------------------------------------------------------------------------------


def _many_avatars(path: Path, count: int, body: str) -> Path:
    with path.open("w", encoding="utf-8") as f:
        f.write("version: 1\navatars:\n")
        for i in range(count):
            f.write(body.format(i=i))
    return path


AVATAR = (
    "  a{i}:\n"
    "    name: Avatar number {i}\n"
    "    base: {{type: prompt, prompt: A friendly person number {i} in a studio}}\n"
    "    looks:\n"
    "      suit: {{prompt: wearing a navy suit in an office}}\n"
    "      park: {{prompt: walking in a green park, from: suit}}\n"
)


def test_a_10mb_recipe_loads_within_bounds(tmp_path: Path) -> None:
    path = _many_avatars(tmp_path / "big.yaml", 44_000, AVATAR)
    assert path.stat().st_size > 10_000_000
    child = looks_limited("validate", path)
    assert (child.code, child.out, child.err) == (
        0,
        f"{path}: ok (44000 avatars, 88000 looks)\n",
        "",
    )
    assert child.max_rss < 500 * 2**20


def test_a_huge_number_of_problems_prints_a_bounded_report(tmp_path: Path) -> None:
    path = _many_avatars(tmp_path / "broken.yaml", 50_000, "  a{i}:\n    nmae: x\n")
    child = looks_limited("validate", path)
    assert (child.code, child.out) == (1, "")
    lines = child.err.splitlines()
    assert len(lines) == 101
    assert lines[0] == f"{path}:3: avatars.a0: missing required keys 'name', 'base'"
    assert lines[-1].startswith("looks: … and ") and lines[-1].endswith(" more problems")
    assert child.max_rss < 500 * 2**20


def test_problems_past_the_kept_ones_are_counted_not_worded(tmp_path: Path) -> None:
    # 300,000 unknown keys: each would be a Problem and a "did you mean" search.
    path = tmp_path / "keys.yaml"
    with path.open("w") as f:
        f.write(HEAD + EXISTING)
        f.writelines(f"    k{i}: 1\n" for i in range(300_000))
    child = looks_limited("validate", path)
    assert (child.code, child.out) == (1, "")
    lines = child.err.splitlines()
    assert lines[0] == f"{path}:6: avatars.s.k0: unknown key 'k0'; expected one of base," + (
        " consent, foreach, group_id, include, looks, name"
    )
    assert lines[100:] == ["looks: … and 299,900 more problems"]
    assert child.max_rss < 500 * 2**20
