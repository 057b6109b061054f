"""Peak memory of a direct upload: a 500 MB twin video must cost `looks apply` < 100 MB.

A sparse MP4 of the given size is written to a temporary directory (no disk to speak of),
`looks apply` uploads it through the three-step direct upload to `looks sim` (a separate
process), and wait4 gives the peak RSS of the apply process alone. A one-look prompt apply
gives the baseline (interpreter, imports, client) for comparison.

    .venv/bin/python bench/upload_memory.py [--mb 500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import looks_cmd, machine, run_measured, running_sim, table, verdict

TARGET_MB = 100.0
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def sparse_video(path: Path, size: int) -> None:
    with path.open("wb") as f:
        f.write(MP4_HEAD)
        f.truncate(size)
        f.seek(size - 8)
        f.write(b"the end.")


def recipe(directory: Path, base: str, consent: bool = False) -> Path:
    path = directory / "upload.yaml"
    text = "version: 1\navatars:\n  alex:\n    name: Alex\n"
    text += "    consent: {}\n" if consent else ""
    text += f"    base: {base}\n"
    path.write_text(text)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500, help="video size in MiB")
    args = parser.parse_args()
    size = args.mb * 2**20
    print(f"upload_memory: {machine()}")
    flags = ["--generation-seconds", "0.1", "--auto-consent", "0.1"]
    rows: list[list[object]] = []
    ok = True
    with (
        tempfile.TemporaryDirectory(prefix="looks-bench-upload-") as tmp,
        running_sim(*flags) as sim,
    ):
        base_dir, video_dir = Path(tmp) / "baseline", Path(tmp) / "video"
        base_dir.mkdir()
        video_dir.mkdir()
        prompt = recipe(base_dir, "{type: prompt, prompt: A person in a studio}")
        baseline = run_measured([*looks_cmd(), "apply", str(prompt)], env=sim.env())
        rows.append(
            [
                "one prompt look (baseline)",
                "-",
                f"{baseline.wall:.1f}",
                f"{baseline.maxrss_mb:.0f}",
                "",
                "ok" if baseline.code == 0 else f"exit {baseline.code}",
            ]
        )
        sparse_video(video_dir / "alex.mp4", size)
        twin = recipe(video_dir, "{type: digital_twin, file: {path: alex.mp4}}", consent=True)
        run = run_measured([*looks_cmd(), "apply", str(twin)], env=sim.env())
        routes = sim.stats()["by_route"]
        direct = routes.get("PUT /_sim/uploads/{asset_id}", 0) == 1
        met = run.code == 0 and direct and run.maxrss_mb < TARGET_MB
        ok = ok and met
        rows.append(
            [
                f"{args.mb} MiB twin, direct upload",
                args.mb,
                f"{run.wall:.1f}",
                f"{run.maxrss_mb:.0f}",
                f"< {TARGET_MB:.0f}",
                verdict(met) if run.code == 0 else f"exit {run.code}",
            ]
        )
    print(table(["run", "MiB sent", "wall s", "peak RSS MB", "target", "verdict"], rows))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
