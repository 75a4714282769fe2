"""A small local stand-in for another repository's OAI-PMH endpoint (Zenodo-like, oai_datacite).

It serves one ListRecords page of the records it is given, as a repository outside this hub
would; `Identify` tells seconds granularity. Requests are recorded.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
    "<responseDate>2026-12-07T12:00:00Z</responseDate><request>{url}</request>"
)


def datacite_record(identifier: str, title: str, doi: str) -> str:
    """One `<record>` in oai_datacite, as Zenodo sends it."""
    return (
        f"<record><header><identifier>{identifier}</identifier>"
        "<datestamp>2026-12-01T10:00:00Z</datestamp></header><metadata>"
        '<resource xmlns="http://datacite.org/schema/kernel-4">'
        f'<identifier identifierType="DOI">{doi}</identifier>'
        "<creators><creator><creatorName>Lovelace, Ada</creatorName></creator></creators>"
        f"<titles><title>{title}</title></titles><publisher>Zenodo</publisher>"
        '<publicationYear>2023</publicationYear><resourceType resourceTypeGeneral="Dataset"/>'
        "</resource></metadata></record>"
    )


class FakeOAI:
    """Serves `records` (raw `<record>` XML) as one ListRecords page at `url`."""

    def __init__(self, records: list[str]) -> None:
        self.records = records
        self.requests: list[dict[str, list[str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                params = parse_qs(urlsplit(self.path).query)
                fake.requests.append(params)
                verb = params.get("verb", [""])[0]
                body = _HEAD.format(url=fake.url)
                if verb == "Identify":
                    body += (
                        "<Identify><repositoryName>Fake</repositoryName>"
                        "<granularity>YYYY-MM-DDThh:mm:ssZ</granularity></Identify>"
                    )
                else:
                    body += "<ListRecords>" + "".join(fake.records) + "</ListRecords>"
                data = (body + "</OAI-PMH>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/oai2d"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
