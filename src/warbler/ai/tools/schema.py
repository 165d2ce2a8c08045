"""JSON Schema for tool arguments: check an admin's schema, validate a model's arguments."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from warbler.errors import InvalidRequest

MAX_SCHEMA_BYTES = 16 * 1024
EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


def check_schema(schema: dict[str, Any] | None, *, field: str = "parameters") -> dict[str, Any]:
    """An admin-given argument schema, checked: a valid JSON Schema of an object, not huge."""
    if not schema:
        return dict(EMPTY_OBJECT)
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise InvalidRequest(
            f"the schema is larger than {MAX_SCHEMA_BYTES} bytes", details={"field": field}
        )
    if schema.get("type") != "object":
        raise InvalidRequest(
            'the arguments schema must have "type": "object" at the top',
            details={"field": field},
        )
    try:
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(
            schema
        ).check_schema(schema)
    except SchemaError as exc:
        raise InvalidRequest(
            f"not a valid JSON Schema: {exc.message}", details={"field": field}
        ) from None
    return schema


def argument_problem(schema: dict[str, Any], args: Any) -> str | None:
    """Why ``args`` do not fit ``schema`` (one sentence for the model), or None if they do."""
    if not isinstance(args, dict):
        return "the arguments must be a JSON object"
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        error = jsonschema.exceptions.best_match(cls(schema).iter_errors(args))
    except SchemaError:
        return None  # a server's broken schema is the server's problem: let it answer
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message
