"""`matterhub dataset …` against a real data folder."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from matterhub.cli.main import app
from tests.publish.conftest import DC

runner = CliRunner()


def run(data_dir: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--data-dir", str(data_dir), *args])
    return result.exit_code, result.output


def test_create_upload_publish_cite_download(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    assert run(hub, "user", "add", "alice")[0] == 0
    dc_file = tmp_path / "dc.json"
    dc_file.write_text(json.dumps({"dc": DC}))
    code, out = run(
        hub, "dataset", "create", str(dc_file), "--source-name", "radium", "--as", "alice"
    )
    assert code == 0, out
    assert '"radium_v1.0"' in out
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    (data / "raw" / "a.xy").write_bytes(b"1 2\n")
    code, out = run(hub, "dataset", "upload", "radium_v1.0", str(data), "--as", "alice")
    assert code == 0 and "data/raw/a.xy\t4" in out, out
    code, out = run(hub, "dataset", "upload", "radium_v1.0", str(data), "--as", "nobody")
    assert code == 2 and "nobody" in out
    code, out = run(hub, "dataset", "publish", "radium_v1.0", "--as", "alice")
    assert code == 0 and "Published radium_v1.0 as mh/" in out
    code, out = run(hub, "dataset", "cite", "radium", "--format", "ris")
    assert code == 0 and out.startswith("TY  - DATA")
    code, out = run(hub, "dataset", "list")
    assert code == 0 and "radium\tlatest=radium_v1.0" in out
    code, out = run(hub, "dataset", "download", "radium", "--dest", str(tmp_path / "dl"))
    assert code == 0, out
    assert (tmp_path / "dl" / "radium_v1.0" / "data" / "raw" / "a.xy").read_bytes() == b"1 2\n"
