"""The only place that picks implementations from settings and wires the services together."""

from __future__ import annotations

import ctypes
import functools
import gc
import json
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from matterhub.blobs import BlobStore, open_blobs
from matterhub.catalog import Catalog, open_catalog
from matterhub.catalog.accounts import AccountService
from matterhub.catalog.sessions import SessionService
from matterhub.connect.collectors import CollectorContext, load_collectors
from matterhub.connect.dispatch import load_dispatchers
from matterhub.connect.extractors.registry import iter_extractors
from matterhub.connect.notify import EmailNotifier, Notifier, WebhookNotifier
from matterhub.connect.service import ConnectService
from matterhub.core.errors import InvalidInput
from matterhub.core.organizations import Organization
from matterhub.core.policy import Policy
from matterhub.hub import EnvironmentBuilder, PackageSources, ServableService
from matterhub.hub.access import AccessRequests
from matterhub.hub.adapters import ENTRY_POINT_GROUP as MODEL_ADAPTERS
from matterhub.hub.adapters import ModelAdapter, ModelAdapters
from matterhub.hub.cache import ResultCache
from matterhub.hub.identifiers import ServableIdentifiers
from matterhub.hub.inputs import InputFiles
from matterhub.hub.runtime import ENTRY_POINT_GROUP as EXECUTORS
from matterhub.hub.runtime import Executor, ExecutorContext, RunLimits, RunService
from matterhub.hub.runtime.autoscale import Autoscaler, ScalingDefaults
from matterhub.hub.runtime.scaling import ScalingService
from matterhub.hub.sources import SourceFetcher
from matterhub.hub.tasks import TaskService
from matterhub.interop.harvest import HarvestService, OAIClient
from matterhub.interop.oai import OAIRepository, RepositoryInfo, TokenCodec
from matterhub.interop.optimade import FilterLimits, OptimadeService
from matterhub.jobs import JobQueue
from matterhub.netguard import NetGuard
from matterhub.plugins import (
    PluginSettings,
    env_prefix,
    iter_plugins,
    load_plugin,
    plugin_settings,
)
from matterhub.publish import DatasetService, load_pid_provider
from matterhub.sandbox import Limits, Sandbox
from matterhub.search.backend import ENTRY_POINT_GROUP as SEARCH_BACKENDS
from matterhub.search.backend import SearchBackend
from matterhub.search.parser import QueryLimits
from matterhub.search.service import SearchService
from matterhub.settings import Settings

__all__ = [
    "PRIVATE_UMASK",
    "ExecutorOpener",
    "Services",
    "build_services",
    "executor_opener",
    "open_search_backend",
    "plugin_report",
    "restrict_file_modes",
    "server_secret",
]

PRIVATE_UMASK = 0o077
_M_ARENA_MAX = -8  # glibc's <malloc.h>
"""What a server process masks off: everything it creates is 0600 (files) or 0700 (folders)."""


@dataclass
class Services:
    """Every service of one hub, built from one `Settings`."""

    settings: Settings
    catalog: Catalog
    blobs: BlobStore
    policy: Policy
    accounts: AccountService
    search: SearchService
    secret: str = field(repr=False)
    datasets: DatasetService = field(repr=False)
    connect: ConnectService = field(repr=False)
    jobs: JobQueue = field(repr=False)
    servables: ServableService = field(repr=False)
    runs: RunService = field(repr=False)
    tasks: TaskService = field(repr=False)
    sessions: SessionService = field(repr=False)
    access: AccessRequests = field(repr=False)
    scaling: ScalingService = field(repr=False)
    optimade: OptimadeService = field(repr=False)
    oai: OAIRepository = field(repr=False)
    harvest: HarvestService = field(repr=False)
    sandbox: Sandbox = field(repr=False, default_factory=Sandbox)

    def start(self) -> None:
        """Start background work: the search ingest worker and the Connect pipeline; both resume."""
        self.search.start()
        self.connect.start()
        self.servables.start()
        self.tasks.start()

    def close(self) -> None:
        """Stop background work and release connections and files."""
        self.connect.stop()
        self.servables.stop()
        self.tasks.stop()
        self.runs.executor.close()
        self.search.stop()
        self.catalog.close()


def server_secret(settings: Settings) -> str:
    """The configured secret, or one generated once and kept in `<data_dir>/secret` (mode 0600)."""
    if settings.secret is not None:
        return settings.secret.get_secret_value()
    path = settings.data_dir / "secret"
    try:
        _tighten(path)  # a secret written by an older version may be readable by others
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    _ensure_dir(settings.data_dir, field="data_dir")
    value = secrets.token_urlsafe(48)
    # O_EXCL: when two processes start at once, one writes and the other reads its value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def build_services(settings: Settings, *, migrate: bool = True) -> Services:
    """Wire ports to the backends named in settings; the only place that does.

    Raises:
        CatalogError / StorageError / InvalidInput: a setting names a backend that cannot be
            opened; the error's `field` is the setting.
    """
    restrict_file_modes()
    _ensure_dir(settings.data_dir, field="data_dir")
    _tune_gc()
    _limit_malloc_arenas(settings.malloc_arenas)
    # The plugins and their settings are checked before anything is opened.
    open_backend = open_search_backend(settings)
    open_executor = executor_opener(settings)
    adapters = model_adapters(settings)
    catalog = open_catalog(settings.database_url, migrate=migrate)
    blobs = open_blobs(settings.storage_url, settings.storage_options)
    policy = Policy()
    guard = outbound_guard(settings)  # the one outbound guard, shared by every caller below
    ttl = timedelta(days=settings.token_ttl_days) if settings.token_ttl_days else None
    accounts = AccountService(
        catalog, policy, default_token_ttl=ttl, curator_group=settings.curator_group
    )
    # Role groups exist from `init` on, and catalogs made before them get them at start.
    accounts.ensure_role_groups()
    # One PID provider: dataset versions and servable versions get identifiers the same way.
    pids = load_pid_provider(settings.pid_provider, _pid_options(settings, guard))
    datasets = DatasetService(
        catalog,
        blobs,
        policy,
        pids,
        base_url=settings.base_url,
        curator_group=settings.curator_group,
    )
    assert settings.index_dir is not None  # derived from data_dir by Settings
    limits = QueryLimits(
        max_bytes=settings.max_query_bytes,
        max_clauses=settings.max_query_clauses,
        max_depth=settings.max_query_depth,
    )
    search = SearchService(
        catalog,
        policy,
        index_dir=settings.index_dir,
        open_backend=open_backend,
        query_limits=limits,
    )
    secret = server_secret(settings)
    jobs = JobQueue(catalog)
    notifiers = _notifiers(settings, guard)
    connect = ConnectService(
        catalog,
        policy,
        datasets,
        search,
        staging_dir=settings.data_dir / "staging",
        collectors=load_collectors(),
        collector_context=CollectorContext(
            allowed_roots=tuple(settings.connect_allowed_roots),
            allow_private_addresses=settings.connect_allow_private_urls,
            max_bytes=settings.connect_max_bytes,
            guard=guard,
            options={
                "zenodo_url": settings.connect_zenodo_url,
                "figshare_url": settings.connect_figshare_url,
                "fsspec_options": settings.connect_fsspec_options,
                "uploads_dir": str(settings.data_dir / "uploads"),
            },
        ),
        base_url=settings.base_url,
        secret=secret,
        dispatchers=load_dispatchers(guard),
        organizations=_organizations(settings),
        notifiers=notifiers,
        jobs=jobs,
        extract=_extract(settings),
    )
    sandbox = open_sandbox(settings)
    servables = _servables(settings, catalog, blobs, policy, search, sandbox, guard, adapters)
    servables.identifiers = ServableIdentifiers(
        catalog,
        policy,
        search,
        pids,
        base_url=settings.base_url,
        retry_s=settings.pid_retry_s,
        kinds=adapters.kinds(),
    )
    runs = _runs(settings, servables, sandbox, guard, open_executor)
    return Services(
        settings=settings,
        catalog=catalog,
        blobs=blobs,
        policy=policy,
        accounts=accounts,
        search=search,
        secret=secret,
        datasets=datasets,
        connect=connect,
        jobs=jobs,
        servables=servables,
        runs=runs,
        tasks=TaskService(catalog, runs, jobs, ttl_s=settings.hub_results_ttl_s),
        sessions=SessionService(catalog, ttl=timedelta(hours=settings.web_session_hours)),
        access=AccessRequests(
            catalog,
            policy,
            servables,
            notifiers=notifiers,
            secret=secret,
            base_url=settings.base_url,
        ),
        scaling=ScalingService(catalog, policy, runs),
        optimade=OptimadeService(
            search,
            datasets,
            blobs,
            limits=FilterLimits(max_depth=limits.max_depth),
        ),
        oai=_oai(settings, catalog, policy, datasets, secret),
        harvest=HarvestService(
            catalog,
            policy,
            search,
            OAIClient(
                guard,
                timeout=settings.harvest_timeout_s,
                max_bytes=settings.harvest_max_response_bytes,
            ),
            max_records=settings.harvest_max_records,
        ),
        sandbox=sandbox,
    )


def _oai(
    settings: Settings, catalog: Catalog, policy: Policy, datasets: DatasetService, secret: str
) -> OAIRepository:
    """The OAI-PMH repository over the public datasets (docs/interop.md)."""
    info = RepositoryInfo(
        name=settings.oai_repository_name,
        base_url=settings.base_url,
        admin_email=settings.oai_admin_email or settings.smtp_sender,
        namespace=settings.oai_namespace,
        page_size=settings.oai_page_size,
    )
    tokens = TokenCodec(secret, ttl=timedelta(seconds=settings.oai_token_ttl_s))
    return OAIRepository(catalog, policy, datasets, tokens, info)


def restrict_file_modes() -> None:
    """Make everything this process creates from now on private to the server's user.

    The data folder holds the catalog, the server secret, private blobs and uploads; a umask of
    0o077, set once for the whole server process, covers every writer (SQLite, tantivy, fsspec,
    the collectors) without each having to remember. The hub's servable environments and
    unpacked servable files, which the sandbox's unprivileged user must read, are the one
    exception: the hub gives those their modes itself.
    """
    os.umask(PRIVATE_UMASK)


def _extract(settings: Settings) -> Callable[..., Any]:
    """Connect's extraction: on warm local processes, or as Ray tasks with a `ray:` executor."""
    if not settings.executor.startswith("ray"):
        return iter_extractors
    from matterhub.connect.extractors.ray_pool import RayExtractorPool

    return functools.partial(iter_extractors, pool=RayExtractorPool(settings.executor))


def open_sandbox(settings: Settings) -> Sandbox:
    """The one sandbox every execution of servable code goes through, with the hub's maxima."""
    maxima = Limits(
        memory_mb=settings.hub_worker_memory_mb,
        cpu_s=settings.hub_run_timeout_s,
        wall_s=settings.hub_run_timeout_s,
        processes=settings.hub_worker_processes,
        open_files=settings.hub_worker_open_files,
        output_mb=settings.hub_worker_output_mb,
        scratch_mb=settings.hub_worker_scratch_mb,
    )
    return Sandbox(
        mode=settings.hub_sandbox,
        maxima=maxima,
        uid_base=settings.hub_sandbox_uid,
        uid_count=settings.hub_sandbox_uids,
    )


def _runs(
    settings: Settings,
    servables: ServableService,
    sandbox: Sandbox,
    guard: NetGuard,
    open_executor: ExecutorOpener,
) -> RunService:
    """The runtime of issue #8: the executor named by `executor`, the result cache, limits."""
    executor = open_executor(
        ExecutorContext(
            scratch_dir=settings.data_dir / "hub" / "scratch",
            sandbox=sandbox,
            inputs_dir=settings.data_dir / "hub" / "inputs",
            max_workers=settings.hub_max_workers,
            idle_s=settings.hub_worker_idle_s,
        )
    )
    limits = RunLimits(
        worker=sandbox.maxima,
        scaling=ScalingDefaults(
            max_replicas_cap=settings.hub_max_replicas,
            min_replicas=min(settings.hub_default_min_replicas, settings.hub_max_replicas),
            max_replicas=min(settings.hub_default_max_replicas, settings.hub_max_replicas),
            target_queue=settings.hub_target_queue,
        ),
    )
    if settings.hub_autoscale:
        executor.autoscale(
            Autoscaler(scale_down_idle_s=settings.hub_scale_down_idle_s),
            interval_s=settings.hub_autoscale_interval_s,
        )
    files = InputFiles(
        settings.data_dir / "hub" / "inputs",
        max_bytes=settings.hub_max_input_bytes,
        guard=guard,
    )
    return RunService(servables, executor, ResultCache(), limits=limits, files=files)


def _port_plugin(group: str, name: str, port: type[Any], *, field: str, what: str) -> Any:
    """The class registered as `name` under `group`, checked to implement `port`."""
    found = load_plugin(group, name, field=field, what=what)
    if not (isinstance(found, type) and issubclass(found, port)):
        raise InvalidInput(
            f"{what} {name!r} ({group}) is not a {port.__name__} subclass", field=field
        )
    return found


def open_search_backend(settings: Settings) -> Callable[[Path], SearchBackend]:
    """How the search service opens an index folder: the backend `search_backend` names, with
    its settings from `search_options` and `MATTERHUB_SEARCH_<NAME>_*`, checked now."""
    name = settings.search_backend
    backend = _port_plugin(
        SEARCH_BACKENDS, name, SearchBackend, field="search_backend", what="search backend"
    )
    options: PluginSettings = plugin_settings(
        backend.settings_model,
        settings.search_options,
        prefix=env_prefix("search", name),
        field="search_options",
    )
    return functools.partial(backend.open, settings=options)


@dataclass(frozen=True)
class ExecutorOpener:
    """The executor plugin `executor` names, its target and settings, checked; called with the
    hub's context when the run service is built."""

    plugin: type[Executor]
    target: str
    settings: PluginSettings

    def __call__(self, context: ExecutorContext) -> Executor:
        opened = self.plugin.open(self.target, context, self.settings)
        if not isinstance(opened, Executor):
            raise InvalidInput(f"executor {self.target!r} opened no Executor", field="executor")
        return opened


def executor_opener(settings: Settings) -> ExecutorOpener:
    """How the run service's executor is opened: the plugin `executor` names (by the part before
    its first ':'), with its settings from `executor_options` and `MATTERHUB_EXECUTOR_<NAME>_*`,
    checked now."""
    name = settings.executor.partition(":")[0]
    executor = _port_plugin(EXECUTORS, name, Executor, field="executor", what="executor")
    executor.check_target(settings.executor)
    options: PluginSettings = plugin_settings(
        executor.settings_model,
        settings.executor_options,
        prefix=env_prefix("executor", name),
        field="executor_options",
    )
    return ExecutorOpener(executor, settings.executor, options)


def plugin_report(settings: Settings) -> dict[str, Any]:
    """The plugins `settings` choose, with their effective settings (secrets hidden): what
    `matterhub settings` shows beside the hub's own. Raises as `build_services` would."""
    search = open_search_backend(settings)
    executor = executor_opener(settings)
    adapters = model_adapters(settings)
    return {
        "search_backend": {
            settings.search_backend: search.keywords["settings"].model_dump(mode="json")  # type: ignore[attr-defined]
        },
        "executor": {executor.target: executor.settings.model_dump(mode="json")},
        "model_adapters": {
            shim: adapter.settings.model_dump(mode="json")
            for shim, adapter in sorted(adapters.by_shim.items())
        },
    }


def model_adapters(settings: Settings) -> ModelAdapters:
    """Every model adapter installed (`matterhub.model_adapters`), each with its settings from
    `model_adapter_options.<name>` and `MATTERHUB_MODEL_ADAPTER_<NAME>_*`, checked now."""
    known = set(settings.model_adapter_options)
    out = ModelAdapters()
    for name, adapter in iter_plugins(MODEL_ADAPTERS):
        known.discard(name)
        if not (isinstance(adapter, type) and issubclass(adapter, ModelAdapter)):
            raise InvalidInput(
                f"model adapter {name!r} ({MODEL_ADAPTERS}) is not a ModelAdapter subclass",
                field=f"model_adapter_options.{name}",
            )
        options = plugin_settings(
            adapter.settings_model,
            settings.model_adapter_options.get(name, {}),
            prefix=env_prefix("model_adapter", name),
            field=f"model_adapter_options.{name}",
        )
        out.add(adapter(options))
    if not out.shims:
        raise InvalidInput(
            f"no model adapters are registered under {MODEL_ADAPTERS!r} (is matterhub installed? "
            "`pip install -e .` refreshes a source checkout's entry points)",
            field="model_adapter_options",
        )
    if known:
        raise InvalidInput(
            "model_adapter_options names adapters that are not installed: "
            + ", ".join(sorted(known)),
            field="model_adapter_options",
        )
    return out


def _servables(
    settings: Settings,
    catalog: Catalog,
    blobs: BlobStore,
    policy: Policy,
    search: SearchService,
    sandbox: Sandbox,
    guard: NetGuard,
    adapters: ModelAdapters,
) -> ServableService:
    """The servable registry, its environment builder (issue #7) and its source fetcher."""
    hub_dir = settings.data_dir / "hub"
    envs = EnvironmentBuilder(
        envs_dir=settings.hub_envs_dir or hub_dir / "envs",
        cache_dir=settings.hub_cache_dir or hub_dir / "cache",
        sources=PackageSources(
            index_url=settings.hub_index_url,
            extra_index_urls=tuple(settings.hub_extra_index_urls),
            find_links=tuple(settings.hub_find_links),
        ),
        installer=settings.hub_installer,
        timeout_s=settings.hub_build_timeout_s,
        sandbox=sandbox,
        source_builds=settings.hub_source_builds,
        adapters=adapters.sources(),
    )
    return ServableService(
        catalog,
        blobs,
        policy,
        search,
        envs,
        hub_dir=hub_dir,
        max_bundle_bytes=settings.hub_max_bundle_bytes,
        example_timeout_s=settings.hub_example_timeout_s,
        sources=_sources(settings, guard),
        adapters=adapters,
    )


def _sources(settings: Settings, guard: NetGuard) -> SourceFetcher:
    """Servable files from git or URLs: Connect's collectors, the same guard and allow-lists."""
    context = CollectorContext(
        allowed_roots=tuple(settings.connect_allowed_roots),
        allow_private_addresses=settings.connect_allow_private_urls,
        max_bytes=settings.hub_max_bundle_bytes,
        timeout_s=settings.hub_source_timeout_s,
        guard=guard,
        options={
            "zenodo_url": settings.connect_zenodo_url,
            "figshare_url": settings.connect_figshare_url,
            "fsspec_options": settings.connect_fsspec_options,
        },
    )
    return SourceFetcher(load_collectors(), context, max_files=settings.hub_source_max_files)


def _pid_options(settings: Settings, guard: NetGuard) -> dict[str, object]:
    """What PID providers may read; passed as plain values so providers never see Settings."""
    password = settings.datacite_password
    return {
        "pid_prefix": settings.pid_prefix,
        "datacite_url": settings.datacite_url,
        "datacite_user": settings.datacite_user,
        "datacite_password": password.get_secret_value() if password else "",
        "datacite_prefix": settings.datacite_prefix,
        "datacite_test_mode": settings.datacite_test_mode,
        # Its requests go through the one outbound guard too (the configured origin is trusted,
        # the connection still pinned to the address checked).
        "transport": guard.trusting(settings.datacite_url).transport(),
    }


def outbound_guard(settings: Settings) -> NetGuard:
    """The one outbound guard every request the server makes goes through (see netguard)."""
    return NetGuard.build(
        allow_private=settings.connect_allow_private_urls,
        allowed_networks=settings.outbound_allowed_networks,
        allowed_roots=settings.connect_allowed_roots,
        fsspec_protocols=settings.connect_fsspec_protocols,
        git_protocols=settings.connect_git_protocols,
    )


def _notifiers(settings: Settings, guard: NetGuard) -> list[Notifier]:
    """Who tells submitters about curation and outcomes, and people about access requests."""
    out: list[Notifier] = [WebhookNotifier(settings.connect_notify_url, guard=guard)]
    if settings.smtp_url:
        out.append(EmailNotifier(settings.smtp_url, settings.smtp_sender))
    return out


def _organizations(settings: Settings) -> list[Organization]:
    """The organisations file, read once; a broken file names the setting."""
    if settings.organizations_file is None:
        return []
    try:
        raw = json.loads(settings.organizations_file.read_text())
        return [Organization.model_validate(item) for item in raw]
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"organizations_file {settings.organizations_file}: {exc}", field="organizations_file"
        ) from exc


def _tune_gc() -> None:
    """Collect the young generation every 50,000 allocations instead of 700.

    A hub allocates many short-lived containers per request and per indexed entry; with the
    default threshold, garbage collection was ~20% of bulk-ingest time (measured: 200k entries
    searchable in 23.1 s → 20.4 s). Process-wide, which is what a hub process wants.
    """
    generation0, generation1, generation2 = gc.get_threshold()
    if generation0 < 50_000:
        gc.set_threshold(50_000, max(generation1, 50), max(generation2, 100))


def _limit_malloc_arenas(arenas: int) -> None:
    """Cap glibc's malloc arenas for the whole process (0: leave glibc's default, 8 per core).

    Every thread that allocates (the search writer, Connect's worker, the request threads, the
    tantivy threads) gets an arena of its own by default, and memory freed in one is not reused
    by another: a search ingest of 40,000 records left 379 MiB of anonymous memory, still
    growing; with 2 arenas it stays at 196–200 MiB (`bench/bench_bandgap_connect.py`). Applies
    to arenas created from now on, which is every thread's, as the hub starts none before this.
    Ignored where the C library is not glibc.
    """
    if arenas <= 0:
        return
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt(_M_ARENA_MAX, arenas)


def _ensure_dir(path: Path, *, field: str) -> None:
    """Create the folder (0700) unless it exists.

    An existing data folder is closed to group and others only when it holds our secret, so a
    data_dir pointed at a shared folder by mistake is never chmod-ed.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (path / "secret").is_file():
            _tighten(path)
    except OSError as exc:
        raise InvalidInput(f"{field} {str(path)!r} cannot be created: {exc}", field=field) from exc


def _tighten(path: Path) -> None:
    """Drop group and other permissions from a file or folder this user owns."""
    info = path.stat()
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(stat.S_IMODE(info.st_mode) & 0o700)
