"""Real git on loopback for source tests: a repository to commit to and `git daemon` serving it
(`examples/_hubtools.py`, shared with the examples that publish from git)."""

from __future__ import annotations

from examples._hubtools import GIT_ENV, GitDaemon, GitRepo, free_port

__all__ = ["GIT_ENV", "GitDaemon", "GitRepo", "free_port"]
