"""A small local stand-in for Zenodo's and Figshare's public REST APIs (their wire formats)."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeRepositories:
    """Serves Zenodo `/api/records/<id>`, Figshare `/v2/articles/<id>` and their file downloads."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.zenodo: dict[str, list[str]] = {}
        self.figshare: dict[str, list[str]] = {}
        self.corrupt: set[str] = set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if parts[:2] == ["api", "records"] and parts[2] in fake.zenodo:
                    self._json(fake._zenodo_record(parts[2]))
                elif parts[:2] == ["v2", "articles"] and parts[2] in fake.figshare:
                    self._json(fake._figshare_article(parts[2]))
                elif parts[0] == "files" and parts[1] in fake.files:
                    data = fake.files[parts[1]]
                    if parts[1] in fake.corrupt:
                        data = data[:-1] + b"!"
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    self._json({"status": 404, "message": "not found"}, status=404)

            def _json(self, body: Any, status: int = 200) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _file_url(self, name: str) -> str:
        return f"{self.url}/files/{name}"

    def _zenodo_record(self, record_id: str) -> dict[str, Any]:
        return {
            "id": int(record_id),
            "doi": f"10.5281/zenodo.{record_id}",
            "metadata": {"title": f"Record {record_id}"},
            "files": [
                {
                    "key": name,
                    "size": len(self.files[name]),
                    "checksum": "md5:"
                    + hashlib.md5(self.files[name], usedforsecurity=False).hexdigest(),
                    "links": {"self": f"{self._file_url(name)}"},
                }
                for name in self.zenodo[record_id]
            ],
        }

    def _figshare_article(self, article_id: str) -> dict[str, Any]:
        return {
            "id": int(article_id),
            "doi": f"10.6084/m9.figshare.{article_id}",
            "title": f"Article {article_id}",
            "files": [
                {
                    "id": i,
                    "name": name,
                    "size": len(self.files[name]),
                    "computed_md5": hashlib.md5(
                        self.files[name], usedforsecurity=False
                    ).hexdigest(),
                    "download_url": self._file_url(name),
                }
                for i, name in enumerate(self.figshare[article_id])
            ],
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
