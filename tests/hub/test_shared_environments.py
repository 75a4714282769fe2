"""Hubs sharing one environments folder (`hub_envs_dir`): an environment is built once, a build
that finds another hub's finished environment keeps that one, and nothing half-made is left."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from matterhub.hub.environments import EnvironmentBuilder
from matterhub.settings import Settings
from tests.hub.conftest import SHARED_CACHE, hub_settings


def _builder(envs: Path, cache: Path = SHARED_CACHE) -> EnvironmentBuilder:
    from matterhub.bootstrap import open_sandbox

    sandbox = open_sandbox(Settings(data_dir=envs.parent / "data"))
    return EnvironmentBuilder(envs_dir=envs, cache_dir=cache, sandbox=sandbox)


def test_a_second_hub_reuses_the_environment_and_a_race_keeps_the_first(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    first, second = _builder(envs), _builder(envs)
    logs: dict[str, list[str]] = {"first": [], "second": []}
    env_hash = first.ensure([], logs["first"].append)
    ready = envs / env_hash / ".matterhub-ready"
    assert ready.read_text() == env_hash and any("$ " in line for line in logs["first"])
    # Another hub on the same folder: nothing is built again.
    assert second.ensure([], logs["second"].append) == env_hash
    assert logs["second"] == [f"environment {env_hash} exists; reusing it"]

    # A race: while this builder stages its environment, another one finishes the same one.
    finished: list[int] = []

    class Racing(EnvironmentBuilder):
        def _create(
            self, box: Path, where: Path, requirements: Sequence[str], log: Callable[[str], None]
        ) -> None:
            finished.append((fresh / other.ensure(requirements, log)).stat().st_ino)
            super()._create(box, where, requirements, log)

    fresh = tmp_path / "fresh"
    other = _builder(fresh)
    racing = Racing(envs_dir=fresh, cache_dir=SHARED_CACHE, sandbox=other.sandbox)
    raced: list[str] = []
    assert racing.ensure([], raced.append) == env_hash
    assert raced[-1] == f"environment {env_hash} was built meanwhile; using it"
    # The other builder's environment stays (not replaced), and no staging folder is left.
    assert sorted(p.name for p in fresh.iterdir()) == [env_hash]
    assert finished == [(fresh / env_hash).stat().st_ino]
    assert (fresh / env_hash / "bin" / "python").exists()


def test_a_hub_allowing_source_builds_never_shares_a_wheels_only_environment(
    tmp_path: Path,
) -> None:
    wheels_only = _builder(tmp_path / "envs")
    sources = EnvironmentBuilder(
        envs_dir=tmp_path / "envs", cache_dir=SHARED_CACHE, source_builds=True
    )
    assert wheels_only.environment_hash(["numpy"]) != sources.environment_hash(["numpy"])


def test_test_hubs_share_one_folder_unless_told_otherwise(tmp_path: Path) -> None:
    shared = hub_settings(tmp_path / "a").hub_envs_dir
    assert shared is not None and shared == hub_settings(tmp_path / "b").hub_envs_dir
    assert hub_settings(tmp_path / "c", hub_envs_dir=None).hub_envs_dir is None
