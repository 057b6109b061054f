"""`make demo`: the main job end to end against the embedded simulator.

Copies recipes/ to demo-out/ (so the repository's recipes stay clean), starts the
simulator on a free loopback port, and runs the `looks` CLI as a user would:
validate, plan, apply, status, then plan again to show there is nothing left to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from . import sim

ROOT = Path(__file__).resolve().parent.parent
OUT = Path("demo-out")
KEY = "demo-key"


def _looks(*args: str, env: dict[str, str], check: bool = True) -> int:
    print(f"\n$ looks {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "looks.cli", *args], env=env, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"demo: `looks {args[0]}` exited {done.returncode}")
    return done.returncode


def _existing_look(base_url: str) -> str:
    """A look made outside looks, standing in for one an account already has."""
    headers = {"X-Api-Key": KEY}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        body = {
            "type": "photo",
            "name": "Riley",
            "file": {"type": "url", "url": "https://example.com/riley.png"},
        }
        look_id: str = client.post("/v3/avatars", json=body).json()["data"]["avatar_item"]["id"]
        for _ in range(200):
            look = client.get(f"/v3/avatars/looks/{look_id}").json()["data"]
            if look.get("status") == "completed":
                return look_id
            time.sleep(0.05)
    raise SystemExit("demo: the simulator did not finish the stand-in look")


def main() -> int:
    started = time.monotonic()
    shutil.rmtree(OUT, ignore_errors=True)
    shutil.copytree(ROOT / "recipes", OUT / "recipes")
    recipes = sorted(str(p) for p in (OUT / "recipes").glob("*.yaml"))
    config = sim.SimConfig(api_key=KEY, generation_seconds=1.0, auto_consent=1.5)
    with sim.running_simulator(config) as simulator:
        print(f"Simulator of the HeyGen v3 API at {simulator.base_url} (embedded, loopback)")
        existing = OUT / "recipes" / "existing.yaml"
        look_id = _existing_look(simulator.base_url)
        existing.write_text(existing.read_text().replace("look_demo_existing", look_id))
        env = {
            **os.environ,
            "HEYGEN_BASE_URL": simulator.base_url,
            "HEYGEN_API_KEY": KEY,
            "PYTHONPATH": str(ROOT),
        }
        _looks("validate", *recipes, env=env)
        _looks("plan", *recipes, env=env)
        _looks("apply", *recipes, env=env)
        _looks("status", *recipes, env=env)
        changes = _looks("plan", "--detailed-exitcode", *recipes, env=env, check=False)
        if changes != 0:
            raise SystemExit("demo: a second plan still has changes; apply was not complete")
        _looks("catalog", *recipes, "--out", str(OUT / "catalog"), env=env)
        stats = simulator.stats()
        created = len(simulator.state()["looks"]) - 1  # less the stand-in
    creates = stats["by_route"].get("POST /v3/avatars", 0) - 1  # less the stand-in
    print(
        f"\nDemo done in {time.monotonic() - started:.1f}s: {creates} creations sent,"
        f" {created} looks made. Manifests are in {OUT / 'recipes'}/,"
        f" the gallery in {OUT / 'catalog'}/index.html."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
