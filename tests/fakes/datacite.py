"""A small DataCite REST API on 127.0.0.1: JSON:API `dois` resources, basic auth, DOI states.

It answers the wire format of `POST /dois` (draft DOI; the suffix is generated when only a
`prefix` is sent), `PUT /dois/<doi>` (update; `event: publish | register | hide`) and
`GET /dois/<doi>`, and records every request so tests can assert the metadata it received.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_EVENTS = {"publish": "findable", "register": "registered", "hide": "registered"}


@dataclass
class Received:
    method: str
    path: str
    body: dict[str, Any] | None


@dataclass
class FakeDataCite:
    user: str = "MH.TEST"
    password: str = "secret"
    prefix: str = "10.5072"
    requests: list[Received] = field(default_factory=list)
    dois: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_next: int = 0
    url: str = ""

    def start(self) -> FakeDataCite:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.api+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                fake.requests.append(Received(self.command, self.path, body))
                expected = base64.b64encode(f"{fake.user}:{fake.password}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    self._reply(401, {"errors": [{"status": "401", "title": "Bad credentials."}]})
                    return
                if fake.fail_next:
                    fake.fail_next -= 1
                    self._reply(500, {"errors": [{"status": "500", "title": "Internal error"}]})
                    return
                if self.command == "POST" and self.path == "/dois":
                    self._create(body or {})
                elif self.path.startswith("/dois/"):
                    doi = self.path[len("/dois/") :].lower()
                    if doi not in fake.dois:
                        self._reply(404, {"errors": [{"status": "404", "title": "Not found"}]})
                    elif self.command == "PUT":
                        self._update(doi, body or {})
                    else:
                        self._reply(200, {"data": fake.dois[doi]})
                else:
                    self._reply(404, {"errors": [{"status": "404", "title": "Not found"}]})

            def _create(self, body: dict[str, Any]) -> None:
                data = body.get("data") or {}
                attrs = dict(data.get("attributes") or {})
                if data.get("type") != "dois" or attrs.get("prefix") != fake.prefix:
                    self._reply(422, {"errors": [{"source": "prefix", "title": "bad prefix"}]})
                    return
                doi = (attrs.get("doi") or f"{fake.prefix}/{secrets.token_hex(4)}").lower()
                attrs.update(doi=doi, state=_EVENTS.get(attrs.pop("event", ""), "draft"))
                fake.dois[doi] = {"id": doi, "type": "dois", "attributes": attrs}
                self._reply(201, {"data": fake.dois[doi]})

            def _update(self, doi: str, body: dict[str, Any]) -> None:
                attrs = dict((body.get("data") or {}).get("attributes") or {})
                event = attrs.pop("event", None)
                record = fake.dois[doi]["attributes"]
                if event == "publish" and not attrs.get("url", record.get("url")):
                    self._reply(422, {"errors": [{"source": "url", "title": "can't be blank"}]})
                    return
                record.update(attrs)
                if event:
                    record["state"] = _EVENTS[event]
                self._reply(200, {"data": fake.dois[doi]})

            do_POST = do_PUT = do_GET = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
