"""A tiny SMTP server on loopback that keeps the messages it receives (enough for smtplib)."""

from __future__ import annotations

import email
import socketserver
import threading
from email.message import Message
from typing import Any

__all__ = ["FakeSMTP"]


class FakeSMTP:
    """Speaks just enough RFC 5321 (EHLO, MAIL, RCPT, DATA, QUIT) to receive plain messages."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())

            def handle(self) -> None:
                self.reply("220 fake-smtp ready")
                while line := self.rfile.readline():
                    verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
                    if verb == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        lines = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                        outer.messages.append(email.message_from_bytes(b"".join(lines)))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:  # EHLO, HELO, MAIL, RCPT, RSET, NOOP
                        self.reply("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"smtp://127.0.0.1:{self.server.server_address[1]}"

    def close(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
