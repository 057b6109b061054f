"""Every name the Python API exports (docs/python-api.md) is there in a fresh interpreter:
by attribute, by `from looks import *`, in dir() (what completion and help() list), and with
type hints that resolve at run time (what pydantic, cattrs or typer read)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

_PROBE = """
import json, typing
import looks, looks.api
def unresolved(module):
    names = []
    for n in module.__all__:
        try:
            typing.get_type_hints(getattr(module, n))
        except NameError:
            names.append(n)
        except TypeError:
            pass  # not something that has hints (a constant)
    return names
star, star_api = {}, {}
exec("from looks import *", star)
exec("from looks.api import *", star_api)
print(json.dumps({
    "missing": [n for n in looks.__all__ if not hasattr(looks, n)]
    + [n for n in looks.api.__all__ if not hasattr(looks.api, n)],
    "not_starred": sorted(set(looks.__all__) - set(star))
    + sorted(set(looks.api.__all__) - set(star_api)),
    "not_in_dir": sorted(set(looks.__all__) - set(dir(looks)))
    + sorted(set(looks.api.__all__) - set(dir(looks.api))),
    "unresolved_hints": unresolved(looks) + unresolved(looks.api),
    "same": all(getattr(looks, n) is getattr(looks.api, n)
                for n in ("Drift", "ConsentState", "Gallery", "PruneOutcome")),
}))
"""


def test_every_exported_name_is_there_starred_and_listed_by_dir() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout)
    assert found == {
        "missing": [],
        "not_starred": [],
        "not_in_dir": [],
        "unresolved_hints": [],
        "same": True,
    }
