"""Identifier resolution: `/pid/<id>` → the version's landing page (or JSON on request)."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.api.errors import ERROR_RESPONSES
from matterhub.core.datasets import VersionPublic

router = APIRouter(tags=["datasets"], responses=ERROR_RESPONSES)


@router.get("/pid/{pid:path}", summary="Resolve an identifier to its landing page")
def resolve(
    pid: str, request: Request, identity: CurrentIdentity, services: ServicesDep
) -> Response:
    """HTML for people; `Accept: application/json` gives the version document."""
    version = services.datasets.resolve_pid(identity, pid)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(version.model_dump(mode="json"))
    _media, citation = services.datasets.cite(identity, version.source_id, "bibtex")
    return HTMLResponse(_landing(version, citation))


def _landing(v: VersionPublic, bibtex: str) -> str:
    title = escape(str((v.dc.get("titles") or [{}])[0].get("title", v.source_id)))
    creators = "; ".join(escape(str(c.get("creatorName", ""))) for c in v.dc.get("creators", []))
    api = f"/api/datasets/{escape(v.source_id)}"
    if v.state == "withdrawn":
        files = f"<p><strong>Withdrawn:</strong> {escape(v.reason or '')}</p>"
    else:
        files = (
            f'<p><a href="{api}/archive.zip">Download all (zip)</a> · '
            f'<a href="{api}/archive.tar">tar</a> · <a href="{api}/manifest">manifest</a></p>'
        )
    cites = " · ".join(
        f'<a href="{api}/cite?format={f}">{f}</a>'
        for f in ("bibtex", "ris", "datacite-xml", "datacite-json", "schema.org")
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<script type="application/ld+json">{{"@context": "https://schema.org", "@type": "Dataset",
"name": "{title}", "version": "{escape(v.version)}"}}</script></head>
<body><main>
<h1>{title}</h1>
<p>{creators} ({escape(str(v.dc.get("publicationYear", "")))}).
Version {escape(v.version)} · <code>{escape(v.source_id)}</code> · {escape(v.pid or "")}</p>
{files}
<p>Cite as: {cites}</p>
<pre>{escape(bibtex)}</pre>
</main></body></html>
"""
