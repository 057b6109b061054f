"""The project's JSON Schemas, checked fast and explained well.

Valid documents (nearly all of them) go through the schema compiled to Python by
fastjsonschema; only an invalid one pays for jsonschema, imported on demand, whose errors
carry the paths and wording the user sees.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjsonschema

if TYPE_CHECKING:
    import jsonschema

SCHEMAS = Path(__file__).parent / "schemas"


@functools.cache
def schema(name: str, definition: str | None = None) -> dict[str, Any]:
    """A schema of schemas/ by file stem, or one of its $defs as a schema of its own."""
    whole: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text("utf-8"))
    if definition is None:
        return whole
    return {"$defs": whole["$defs"], **whole["$defs"][definition]}


@functools.cache
def _compiled(name: str, definition: str | None) -> Callable[[Any], Any]:
    # The schemas use nothing draft 2020-12 adds over draft 7, which fastjsonschema compiles.
    draft7 = {**schema(name, definition), "$schema": "http://json-schema.org/draft-07/schema#"}
    check: Callable[[Any], Any] = fastjsonschema.compile(draft7)
    return check


@functools.cache
def _validator(name: str, definition: str | None) -> jsonschema.protocols.Validator:
    import jsonschema

    document = schema(name, definition)
    cls = jsonschema.validators.validator_for(document)
    cls.check_schema(document)
    validator: jsonschema.protocols.Validator = cls(document)
    return validator


def is_valid(data: Any, name: str, definition: str | None = None) -> bool:
    try:
        _compiled(name, definition)(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def errors(data: Any, name: str, definition: str | None = None) -> list[jsonschema.ValidationError]:
    """Every schema error of data, as jsonschema words them; [] when it is valid."""
    if is_valid(data, name, definition):
        return []
    return list(_validator(name, definition).iter_errors(data))
