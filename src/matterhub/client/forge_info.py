"""Forge's `describe_field`, `describe_organization` and `globus_download` on a hub.

`describe_field` reads the hub's JSON Schemas (`/schemas/<resource_type>`, as Forge read MDF's)
and adds the types the index actually holds (`/beta/index/<index>/mapping`). The hub does not
publish its organisations' rules, so `describe_organization` describes an organisation by what the
index holds for it: the `mdf.organizations` facet, its datasets and record count.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from matterhub.client.errors import APIError, ClientError

if TYPE_CHECKING:
    from matterhub.client.client import Client

__all__ = [
    "GLOBUS_DOWNLOAD_MESSAGE",
    "describe_field",
    "describe_organization",
    "schema_lines",
]

GLOBUS_DOWNLOAD_MESSAGE = (
    "globus_download() needs Globus Transfer, which MatterHub does not use: files are served over "
    "HTTPS. Use Forge.download(results_or_source_id, dest) instead — parallel, resumable, "
    "SHA-512-checked, and anonymous for public data (http_download() for up to 50 records)."
)
_FACET_SIZE = 1000  # the hub's largest terms facet


def _error(exc: ClientError) -> tuple[str, int | None]:
    if isinstance(exc, APIError):
        return f"Error {exc.status}: {exc.detail}", exc.status
    return f"Error: {exc}", None


def _subschema(schema: dict[str, Any], field: str) -> dict[str, Any]:
    """Forge's walk down a dotted field: through `items` and `properties` (KeyError if absent)."""
    node: Any = schema
    for part in field.split("."):
        if part not in node:
            node = node.get("items", node)
            node = node.get("properties", node)
        node = node[part]
    if not isinstance(node, dict):
        raise KeyError(part)
    return node


def describe_field(
    client: Client, index: str, resource_type: str, field: str | None = None
) -> dict[str, Any]:
    """Forge's raw answer `{success, error, schema, status_code}` plus `field_types`."""
    if field in ("None", "all"):
        field = None
    out: dict[str, Any] = {"success": False, "error": None, "schema": None, "status_code": None}
    out["field_types"] = {}
    try:
        response = client._request("GET", f"/schemas/{resource_type}")
    except ClientError as exc:
        out["error"], out["status_code"] = _error(exc)
        return out
    out["status_code"] = response.status_code
    schema: dict[str, Any] = response.json()
    if field:
        try:
            schema = _subschema(schema, field)
        except (KeyError, AttributeError, TypeError) as exc:
            out["error"] = (
                f"Error: Field {exc} (from '{field}') not found in schema for "
                f"resource_type '{resource_type}'"
            )
            return out
    out.update(success=True, schema=schema)
    try:
        mapping: dict[str, str] = client._json("GET", f"/beta/index/{index}/mapping")["mappings"]
    except ClientError:
        mapping = {}  # the schema is the answer; the index's types are a bonus
    prefix = f"{field}." if field else ""
    out["field_types"] = {
        path: kind
        for path, kind in sorted(mapping.items())
        if not field or path == field or path.startswith(prefix)
    }
    return out


def _type_of(node: dict[str, Any]) -> str:
    if "enum" in node:
        return "one of " + ", ".join(repr(v) for v in node["enum"])
    kind = node.get("type", "any")
    if kind == "array" and isinstance(node.get("items"), dict):
        return f"array of {_type_of(node['items'])}"
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def schema_lines(schema: dict[str, Any], indent: int = 0) -> Iterator[str]:
    """A JSON Schema as indented `- name (type, required): description` lines."""
    node = schema.get("items", schema) if schema.get("type") == "array" else schema
    properties = node.get("properties") or {}
    if not properties and indent == 0:
        text = _type_of(schema)
        if schema.get("description"):
            text += f": {schema['description']}"
        yield text
        return
    required = set(node.get("required") or [])
    for name, child in properties.items():
        if not isinstance(child, dict):
            continue
        flags = _type_of(child) + (", required" if name in required else "")
        line = "  " * indent + f"- {name} ({flags})"
        if child.get("description"):
            line += f": {child['description']}"
        yield line
        yield from schema_lines(child, indent + 1) if _nested(child) else iter(())


def _nested(node: dict[str, Any]) -> bool:
    inner = node.get("items", node) if node.get("type") == "array" else node
    return isinstance(inner, dict) and bool(inner.get("properties"))


def _org_facets(client: Client, index: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = client._json(
        "POST", f"/v1/index/{index}/search", json=body, idempotent=True
    )
    return result


def _terms(name: str, field: str) -> dict[str, Any]:
    return {"name": name, "field_name": field, "type": "terms", "size": _FACET_SIZE}


def _buckets(result: dict[str, Any], name: str) -> dict[str, int]:
    for facet in result.get("facet_results") or []:
        if facet.get("name") == name:
            return {b["value"]: b["count"] for b in facet.get("buckets", [])}
    return {}


def _organization(client: Client, index: str, name: str) -> dict[str, Any]:
    body = {
        "q": "*",
        "advanced": True,
        "limit": 0,
        "filters": [{"type": "match_any", "field_name": "mdf.organizations", "values": [name]}],
        "facets": [_terms("types", "mdf.resource_type"), _terms("sources", "mdf.source_name")],
    }
    result = _org_facets(client, index, body)
    types = _buckets(result, "types")
    found = {
        "canonical_name": name,
        "dataset_count": types.get("dataset", 0),
        "record_count": types.get("record", 0),
        "source_names": sorted(_buckets(result, "sources")),
    }
    rules = _rules(client).get(name.lower())
    if rules is not None:  # what the hub's organisations file says (Forge showed these too)
        found.update(
            required_fields=rules.get("required_fields", []),
            curation=bool(rules.get("curation")),
            acl=rules.get("acl", []),
        )
    return found


def _rules(client: Client) -> dict[str, dict[str, Any]]:
    """The hub's organisations by lower-case name; empty from a hub without the route."""
    try:
        answer = client._request("GET", "/connect/organizations").json()
    except ClientError:
        return {}
    return {str(o.get("name", "")).lower(): o for o in answer.get("organizations", [])}


def describe_organization(client: Client, index: str, organization: str) -> dict[str, Any]:
    """Forge's raw answer `{success, error, organization, status_code}`.

    `organization`: a name (case-insensitive), `"list"` (the names) or `"all"` (every one).
    """
    out: dict[str, Any] = {"success": False, "error": None, "organization": None}
    out["status_code"] = None
    body = {"q": "*", "advanced": True, "limit": 0, "facets": [_terms("orgs", "mdf.organizations")]}
    try:
        indexed = _buckets(_org_facets(client, index, body), "orgs")
        configured = {o["name"] for o in _rules(client).values() if o.get("name")}
        names = sorted({*indexed, *configured}, key=str.lower)
        if organization == "list":
            found: Any = names
        elif organization == "all":
            found = [_organization(client, index, name) for name in names]
        else:
            canonical = next((n for n in names if n.lower() == organization.lower()), None)
            if canonical is None:
                out["status_code"] = 404
                out["error"] = (
                    f"Error 404: no organization {organization!r} in index {index!r}; "
                    "describe_organization('list') names them"
                )
                return out
            found = _organization(client, index, canonical)
    except ClientError as exc:
        out["error"], out["status_code"] = _error(exc)
        return out
    out.update(success=True, organization=found, status_code=200)
    return out
