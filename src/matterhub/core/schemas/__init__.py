"""MDF's record and dataset and DLHub's servable JSON Schemas (package data), and validation."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

__all__ = ["SCHEMAS", "schema", "validation_errors"]

SCHEMAS = ("record", "dataset", "servable")


@cache
def schema(name: str) -> dict[str, Any]:
    """A shipped schema by name (`record`, `dataset`, `servable`)."""
    if name not in SCHEMAS:
        raise KeyError(name)
    loaded: dict[str, Any] = json.loads(files(__package__).joinpath(f"{name}.json").read_text())
    return loaded


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name), format_checker=FormatChecker())


def validation_errors(document: dict[str, Any], name: str) -> list[tuple[str, str]]:
    """Every (dotted path, message) where `document` breaks schema `name`; empty when valid."""
    out = []
    for error in _validator(name).iter_errors(document):
        path = ".".join(str(p) for p in error.absolute_path) or "(top)"
        out.append((path, error.message))
    return sorted(out)
