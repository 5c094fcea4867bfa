"""Validating server replies against TGI's published OpenAPI document (tgi-openapi.json here: a copy of the team's
reference file, TGI v3.3).

OpenAPI 3.0 writes "may be null" as `nullable: true`, which JSON Schema does not know: the document's schemas are
rewritten once (`nullable` → `anyOf [schema, null]`) and checked with jsonschema.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import jsonschema

from tests.support.helpers import ROOT

SPEC = ROOT / "tests" / "support" / "tgi-openapi.json"


def _json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items() if key not in ("nullable", "example")}
    return {"anyOf": [out, {"type": "null"}]} if node.get("nullable") is True else out


@functools.cache
def _components() -> dict[str, Any]:
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    return {"components": {"schemas": _json_schema(copy.deepcopy(spec["components"]["schemas"]))}}


def check(schema: str, value: Any) -> None:
    """Raise jsonschema.ValidationError unless `value` is a valid `schema` of TGI's OpenAPI document."""
    jsonschema.validate(value, {"$ref": f"#/components/schemas/{schema}", **_components()})
