"""Shell completion: the installed `matterhub` script prints, installs and answers completions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = str(Path(sys.executable).with_name("matterhub"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, env={**full, **(env or {})}, timeout=60
    )


def test_show_completion_prints_the_named_shells_script() -> None:
    bash = run("--show-completion", "bash")
    assert bash.returncode == 0, bash.stderr
    assert "_matterhub_completion()" in bash.stdout
    assert "complete -o default -F _matterhub_completion matterhub" in bash.stdout
    zsh = run("--show-completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef matterhub")
    fish = run("--show-completion", "fish")
    assert "complete --command matterhub" in fish.stdout


def test_install_completion_writes_the_script(tmp_path: Path) -> None:
    done = run("--install-completion", "bash", env={"HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "bash completion installed" in done.stdout
    script = tmp_path / ".bash_completions" / "matterhub.sh"
    assert "_matterhub_completion" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()


def test_completions_are_answered() -> None:
    words = {
        "_MATTERHUB_COMPLETE": "complete_bash",
        "COMP_WORDS": "matterhub ser",
        "COMP_CWORD": "1",
    }
    top = run(env=words)
    assert top.returncode == 0 and top.stdout.split() == ["serve", "servable"]
    sub = run(env={**words, "COMP_WORDS": "matterhub servable ", "COMP_CWORD": "2"})
    assert {"describe", "publish", "list"} <= set(sub.stdout.split())
