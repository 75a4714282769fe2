"""Plugins: ports load through entry points with typed settings; a third party's package is
picked up by being installed, without editing MatterHub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matterhub.bootstrap import build_services, executor_opener, open_search_backend
from matterhub.cli.main import app
from matterhub.core.errors import InvalidInput
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.core.search import GSearchRequest
from matterhub.hub.adapters import ENTRY_POINT_GROUP as MODEL_ADAPTERS
from matterhub.hub.adapters import ModelAdapter
from matterhub.hub.runtime import ENTRY_POINT_GROUP as EXECUTORS
from matterhub.hub.runtime import Executor
from matterhub.plugins import env_prefix, load_plugin, plugin_names, plugin_settings
from matterhub.search.backend import ENTRY_POINT_GROUP as SEARCH_BACKENDS
from matterhub.search.backend import SearchBackend
from matterhub.settings import Settings
from tests.distributions import install_distribution

DOCS = Path(__file__).parents[1] / "docs" / "plugins.md"

# A third party's package: its own backend and executor, each with its own settings. They build
# on the built-in engines (tantivy, local workers) so that the hub really searches and runs.
ACME = '''
"""Acme's MatterHub plugins."""

import json
from pathlib import Path

from pydantic import Field

from matterhub.hub.runtime import ExecutorContext, LocalExecutor
from matterhub.plugins import PluginSettings
from matterhub.search.tantivy import TantivyIndex


class AcmeSearchSettings(PluginSettings):
    shards: int = Field(default=1, ge=1, le=8, description="Shards per index.")


class AcmeIndex(TantivyIndex):
    """Tantivy kept in a folder per shard count."""

    settings_model = AcmeSearchSettings

    @classmethod
    def open(cls, location: Path, settings: AcmeSearchSettings) -> "AcmeIndex":
        return cls(location / f"acme-{settings.shards}-shards")


class AcmeExecutorSettings(PluginSettings):
    label: str = Field(default="plain", max_length=20, description="A label.")


class AcmeExecutor(LocalExecutor):
    """Local workers under another name."""

    name = "acme"
    settings_model = AcmeExecutorSettings

    @classmethod
    def check_target(cls, target: str) -> None:
        pass  # acme or acme:<anything>

    @classmethod
    def open(cls, target: str, context: ExecutorContext, settings: AcmeExecutorSettings):
        executor = cls(context.scratch_dir, context.sandbox, inputs_dir=context.inputs_dir)
        executor.target, executor.label = target, settings.label
        return executor


class NotABackend:
    """Registered in the wrong group."""
'''

ENTRY_POINTS = """
[matterhub.search_backends]
acme = acme_hub_plugins:AcmeIndex
wrong = acme_hub_plugins:NotABackend
missing = acme_hub_plugins_absent:Index [opensearch]

[matterhub.executors]
acme = acme_hub_plugins:AcmeExecutor
"""


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Acme's distribution installed: a module and its .dist-info on sys.path."""
    return install_distribution(
        tmp_path / "site",
        monkeypatch,
        name="acme-hub-plugins",
        files={"acme_hub_plugins/__init__.py": ACME},
        entry_points=ENTRY_POINTS,
    )


def test_builtins_register_like_anyone_else() -> None:
    assert "tantivy" in plugin_names(SEARCH_BACKENDS)
    assert {"local", "ray"} <= set(plugin_names(EXECUTORS))
    for name in plugin_names(SEARCH_BACKENDS):
        assert issubclass(load_plugin(SEARCH_BACKENDS, name, field="f", what="w"), SearchBackend)
    # The Ray executor's module imports Ray only when it opens: it loads without the extra.
    for name in plugin_names(EXECUTORS):
        assert issubclass(load_plugin(EXECUTORS, name, field="f", what="w"), Executor)
    for name in plugin_names(MODEL_ADAPTERS):
        assert issubclass(load_plugin(MODEL_ADAPTERS, name, field="f", what="w"), ModelAdapter)


def test_a_third_party_backend_and_executor_are_picked_up(
    acme: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MATTERHUB_SEARCH_ACME_SHARDS", "3")
    settings = Settings(
        data_dir=tmp_path / "hub",
        search_backend="acme",
        executor="acme:fast",
        executor_options={"label": "quick"},
    )
    services = build_services(settings)
    services.start()
    try:
        executor = services.runs.executor
        assert type(executor).__name__ == "AcmeExecutor" and executor.name == "acme"
        assert (executor.target, executor.label) == ("acme:fast", "quick")  # type: ignore[attr-defined]
        body = {
            "ingest_type": "GMetaEntry",
            "ingest_data": {"subject": "s1", "visible_to": ["public"], "content": {"w": "acme"}},
        }
        task = services.search.ingest(SYSTEM_IDENTITY, "mdf", body)
        assert services.search.wait(task.task_id).state == "SUCCESS"
        page = services.search.search(SYSTEM_IDENTITY, "mdf", GSearchRequest(q="acme"))
        assert [h.subject for h in page.hits] == ["s1"]
        backend = services.search.backend(services.search.get_index(SYSTEM_IDENTITY, "mdf").id)
        assert type(backend).__name__ == "AcmeIndex"
        assert (settings.index_dir / backend.path.parent.name / "acme-3-shards").is_dir()  # type: ignore[attr-defined,operator]
    finally:
        services.close()


def test_a_bad_plugin_setting_stops_the_start_naming_it(
    acme: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "hub", search_backend="acme")
    monkeypatch.setenv("MATTERHUB_SEARCH_ACME_SHARDS", "9")
    with pytest.raises(InvalidInput) as caught:
        build_services(settings)
    assert caught.value.field == "search_options.shards"
    assert "MATTERHUB_SEARCH_ACME_SHARDS" in str(caught.value.detail)
    monkeypatch.delenv("MATTERHUB_SEARCH_ACME_SHARDS")
    typo = Settings(data_dir=tmp_path / "hub", search_backend="acme", search_options={"shard": 2})
    with pytest.raises(InvalidInput) as caught:
        open_search_backend(typo)
    assert caught.value.field == "search_options.shard"
    long = Settings(
        data_dir=tmp_path / "hub", executor="acme", executor_options={"label": "x" * 21}
    )
    with pytest.raises(InvalidInput) as caught:
        executor_opener(long)
    assert caught.value.field == "executor_options.label"


@pytest.mark.parametrize(
    ("values", "field", "says"),
    [
        (
            {"search_backend": "opensearch"},
            "search_backend",
            "known: acme, missing, tantivy, wrong",
        ),
        ({"search_backend": "wrong"}, "search_backend", "not a SearchBackend subclass"),
        ({"search_backend": "missing"}, "search_backend", "install acme-hub-plugins[opensearch]"),
        ({"executor": "kubernetes://cluster"}, "executor", "unknown executor 'kubernetes'"),
        ({"executor": "ray:nowhere"}, "executor", "use 'ray:local' or 'ray://host:port'"),
        ({"executor": "local:two"}, "executor", "not 'local:two'"),
        (
            {"executor_options": {"namespace": ""}, "executor": "ray:local"},
            "executor_options.namespace",
            "at least 1",
        ),
    ],
)
def test_unknown_or_broken_plugins_name_the_setting(
    acme: Path, tmp_path: Path, values: dict[str, object], field: str, says: str
) -> None:
    settings = Settings(data_dir=tmp_path / "hub", **values)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as caught:
        services = build_services(settings)
        services.close()
    assert caught.value.field == field
    assert says in str(caught.value.detail)
    assert not (tmp_path / "hub" / "catalog.db").exists()  # refused before anything was opened


def test_the_existing_values_keep_working(tmp_path: Path) -> None:
    defaults = Settings(data_dir=tmp_path)
    opened = open_search_backend(defaults)(tmp_path / "index" / "x")
    try:
        assert type(opened).__name__ == "TantivyIndex"
    finally:
        opened.close()
    tuned = open_search_backend(Settings(data_dir=tmp_path, search_options={"heap_mb": 64}))
    assert tuned.keywords["settings"].heap_mb == 64  # type: ignore[attr-defined]
    executor_opener(Settings(data_dir=tmp_path, executor="ray://head:10001"))  # checked, not opened
    executor_opener(Settings(data_dir=tmp_path, executor="ray:local"))


def test_plugin_settings_come_from_options_then_environment_then_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from matterhub.search.tantivy import TantivySettings

    prefix = env_prefix("search", "tantivy")
    assert prefix == "MATTERHUB_SEARCH_TANTIVY_"
    assert env_prefix("executor", "my-k8s.v2") == "MATTERHUB_EXECUTOR_MY_K8S_V2_"
    assert plugin_settings(TantivySettings, {}, prefix=prefix, field="f").heap_mb == 128
    monkeypatch.setenv("MATTERHUB_SEARCH_TANTIVY_HEAP_MB", "128")
    monkeypatch.setenv("MATTERHUB_SEARCH_TANTIVY_THREADS", "3")
    got = plugin_settings(TantivySettings, {"heap_mb": 256}, prefix=prefix, field="f")
    assert (got.heap_mb, got.threads) == (256, 3)
    assert type(got) is TantivySettings


def test_the_cli_names_a_bad_plugin_variable(tmp_path: Path) -> None:
    env = {"MATTERHUB_SEARCH_TANTIVY_HEAP_MB": "1"}
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "user", "list"], env=env)
    assert result.exit_code == 2
    assert "MATTERHUB_SEARCH_TANTIVY_HEAP_MB" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("group", "port"), [(SEARCH_BACKENDS, "search"), (EXECUTORS, "executor")])
def test_every_builtin_plugin_setting_is_described_and_documented(group: str, port: str) -> None:
    docs = DOCS.read_text()
    for name in plugin_names(group):
        model = load_plugin(group, name, field="f", what="w").settings_model
        for key, info in model.model_fields.items():
            assert info.description and len(info.description) > 15, f"{name}.{key}"
            variable = f"{env_prefix(port, name)}{key.upper()}"
            assert variable in docs, f"document {variable} in docs/plugins.md"


def test_settings_shows_the_chosen_plugins_and_their_settings(tmp_path: Path) -> None:
    env = {"MATTERHUB_SEARCH_TANTIVY_THREADS": "3", "MATTERHUB_EXECUTOR": "ray://head:10001"}
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "settings"], env=env)
    assert result.exit_code == 0, result.output
    plugins = json.loads(result.output)["plugins"]
    assert plugins["search_backend"] == {"tantivy": {"heap_mb": 128, "threads": 3}}
    assert plugins["executor"] == {"ray://head:10001": {"namespace": None}}
    assert plugins["model_adapters"]["onnx.ONNXServable"] == {}
