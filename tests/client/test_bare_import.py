"""The bare package is the client: importing it never loads server libraries."""

from __future__ import annotations

import subprocess
import sys


def test_client_imports_without_server_dependencies() -> None:
    code = (
        "import sys, matterhub; matterhub.Client; matterhub.Forge; "
        "import matterhub.client.downloads, matterhub.client.frames, matterhub.client.connect; "
        "bad = [m for m in ('fastapi', 'starlette', 'sqlalchemy', 'tantivy', 'uvicorn') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
