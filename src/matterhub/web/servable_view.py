"""What the servable pages show, from a servable's document: summaries, types, snippets, results."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from matterhub.core.servables import BuildPublic, ServablePublic
from matterhub.hub.runtime import RunOutcome
from matterhub.web.typenames import parameter_rows, type_parts, type_text

__all__ = ["call_snippets", "result_view", "servable_view", "summarize_servable"]

# An example longer than this is not pasted into the snippets (they show `inputs` instead).
_SNIPPET_LIMIT = 400
_ONE_LINE = 100


def _title(document: dict[str, Any]) -> str:
    titles = (document.get("datacite") or {}).get("titles") or [{}]
    name = (document.get("dlhub") or {}).get("shorthand_name") or ""
    return str((titles[0] or {}).get("title") or name)


def _published(dlhub: dict[str, Any]) -> str:
    """`publication_date` (ms since the epoch, DLHub's version) as a date."""
    try:
        stamp = int(dlhub.get("publication_date") or dlhub.get("version") or 0)
    except (TypeError, ValueError):
        return ""
    return f"{datetime.fromtimestamp(stamp / 1000, UTC):%Y-%m-%d}" if stamp else ""


def summarize_servable(document: dict[str, Any]) -> dict[str, Any]:
    """A search result row: title, owner/name, authors, domains, input and output types."""
    dlhub = document.get("dlhub") or {}
    run = ((document.get("servable") or {}).get("methods") or {}).get("run") or {}
    ref = str(dlhub.get("shorthand_name") or f"{dlhub.get('owner')}/{dlhub.get('name')}")
    descriptions = (document.get("datacite") or {}).get("descriptions") or []
    return {
        "ref": ref,
        "href": f"/servables/{ref}",
        "title": _title(document),
        "authors": [
            str(c.get("creatorName", ""))
            for c in (document.get("datacite") or {}).get("creators") or []
            if isinstance(c, dict)
        ],
        "domains": [str(d) for d in dlhub.get("domains") or []],
        "input": type_text(run.get("input")),
        "output": type_text(run.get("output")),
        "input_types": (document.get("matterhub") or {}).get("input_types") or [],
        "published": _published(dlhub),
        "abstract": str((descriptions[0] or {}).get("description") or "") if descriptions else "",
    }


def _pretty(value: Any) -> str:
    """JSON on one line when it is short, else indented."""
    compact = json.dumps(value, ensure_ascii=False)
    return compact if len(compact) <= _ONE_LINE else json.dumps(value, indent=2, ensure_ascii=False)


def call_snippets(ref: str, base_url: str, example: Any, *, public: bool) -> dict[str, str]:
    """How to call it from Python (matterhub.Client) and with curl (both run routes)."""
    base = base_url.rstrip("/")
    compact = json.dumps(example, ensure_ascii=False) if example is not None else None
    if compact is None or len(compact) > _SNIPPET_LIMIT:
        py_input, body = "inputs", '{"inputs": …}'
    else:
        py_input, body = repr(example), json.dumps({"inputs": example}, ensure_ascii=False)
    token_py = "" if public else ', token="YOUR_TOKEN"'
    token_curl = "" if public else ' \\\n  -H "Authorization: Bearer $MATTERHUB_TOKEN"'
    python = (
        "from matterhub import Client\n\n"
        f'client = Client("{base}"{token_py})\n'
        f'result = client.run("{ref}", {py_input})\n'
        "print(result)\n"
    )
    body_quoted = body.replace("'", "'\\''")
    curl = (
        f"curl -X POST {base}/servables/{ref}/run{token_curl} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d '{body_quoted}'\n"
        "# or, for an envelope {task_id, status, output, cached}:\n"
        f"curl -X POST {base}/api/servables/{ref}/run{token_curl} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d '{body_quoted}'\n"
    )
    return {"python": python, "curl": curl}


def _method(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    inputs, output = spec.get("input") or {}, spec.get("output") or {}
    return {
        "name": name,
        "input": type_text(inputs),
        "input_description": inputs.get("description") or "",
        "input_parts": type_parts(inputs),
        "output": type_text(output),
        "output_description": output.get("description") or "",
        "output_parts": type_parts(output),
        "parameters": parameter_rows(spec),
    }


def servable_view(
    described: ServablePublic,
    builds: dict[str, BuildPublic],
    names: dict[str, str],
    base_url: str,
) -> dict[str, Any]:
    """The servable page's context (all but the training data link and runnability)."""
    document = described.document
    datacite = document.get("datacite") or {}
    dlhub = document.get("dlhub") or {}
    servable = document.get("servable") or {}
    methods = servable.get("methods") or {}
    example = servable.get("example") or {}
    ref = described.shorthand_name
    versions = [
        {
            "v": v,
            "build": builds.get(v.build_id or ""),
            "shown": v.version == str(dlhub.get("version")),
        }
        for v in described.versions
    ]
    return {
        "s": described,
        "ref": ref,
        "title": _title(document),
        "authors": [c.get("creatorName", "") for c in datacite.get("creators") or []],
        "year": datacite.get("publicationYear"),
        "descriptions": [
            d.get("description") for d in datacite.get("descriptions") or [] if d.get("description")
        ],
        "related": datacite.get("relatedIdentifiers") or [],
        "domains": dlhub.get("domains") or [],
        "shown_version": str(dlhub.get("version") or ""),
        "published": _published(dlhub),
        "kind": servable.get("type") or servable.get("shim") or "",
        "methods": [_method(n, m) for n, m in methods.items() if isinstance(m, dict)],
        "example": example,
        "has_example": "input" in example,
        "takes_structure": ((methods.get("run") or {}).get("input") or {}).get("type")
        == "structure",
        "example_input": _pretty(example.get("input")) if "input" in example else "",
        "example_output": _pretty(example["output"]) if "output" in example else None,
        "versions": versions,
        "viewers": [names[p] for p in dict.fromkeys(described.visible_to)],
        "runners": [names[p] for p in dict.fromkeys(described.runnable_by)],
        "requirements": (dlhub.get("dependencies") or {}).get("python") or {},
        "snippets": call_snippets(
            ref, base_url, example.get("input"), public="public" in described.runnable_by
        ),
    }


def result_view(outcome: RunOutcome) -> dict[str, Any]:
    """One run's answer for the page: the output (or the servable's error) and its timings."""
    timings = outcome.provenance.get("timings") or {}
    return {
        "ok": outcome.ok,
        "output": _pretty(outcome.output) if outcome.ok else None,
        "value": outcome.output if outcome.ok else None,
        "error": None
        if outcome.ok
        else f"{(outcome.error or {}).get('type')}: {(outcome.error or {}).get('message')}",
        "wall_ms": round(float(timings.get("run_s") or 0.0) * 1000, 3),
        "total_ms": round(float(timings.get("total_s") or 0.0) * 1000, 3),
        "cached": outcome.cached,
        "task_id": outcome.task_id,
        "version": outcome.provenance.get("version"),
    }
