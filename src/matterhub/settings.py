"""The one settings class. Every field is documented; the environment prefix is MATTERHUB_."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


def _default_data_dir() -> Path:
    return Path.cwd() / "matterhub-data"


class Settings(BaseSettings):
    """Everything an operator can configure, read from `MATTERHUB_*` variables or a `.env` file.

    Only the CLI (and tests) construct it; services receive what they need from `bootstrap`.
    """

    model_config = SettingsConfigDict(
        env_prefix="MATTERHUB_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description=(
            "Folder holding the embedded catalog, blobs and index unless their URLs say otherwise."
        ),
    )
    database_url: str = Field(
        default="",
        description=(
            "Catalog database URL: sqlite:///<path> (default sqlite:///<data_dir>/catalog.db) or "
            "postgresql://user:pass@host/db."
        ),
    )
    storage_url: str = Field(
        default="",
        description=(
            "Blob store URL: file://<path> (default file://<data_dir>/blobs) or s3://bucket/prefix."
        ),
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Extra options for the blob store's fsspec filesystem as JSON, e.g. "
            '{"endpoint_url": "http://127.0.0.1:9000", "key": "...", "secret": "..."} for S3.'
        ),
    )
    index_dir: Path | None = Field(
        default=None, description="Folder of the search indexes (default <data_dir>/index)."
    )
    malloc_arenas: int = Field(
        default=2,
        ge=0,
        le=64,
        description=(
            "glibc malloc arenas of the server process (0: glibc's default of 8 per core). Few "
            "arenas keep memory flat under many threads: freed memory is reused across them."
        ),
    )
    search_backend: str = Field(
        default="tantivy",
        min_length=1,
        max_length=100,
        description=(
            "The search engine behind Discover: 'tantivy' (embedded, indexes under index_dir) "
            "or any backend registered under the matterhub.search_backends entry points."
        ),
    )
    search_options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            'The search backend\'s own settings as a JSON object, e.g. {"heap_mb": 256} for '
            "tantivy; each key may also be set as MATTERHUB_SEARCH_<BACKEND>_<KEY>."
        ),
    )
    executor: str = Field(
        default="local",
        min_length=1,
        max_length=2000,
        description=(
            "Where servables and heavy pipeline work run: 'local' (sandboxed worker processes) "
            "or ray://host:port / ray:local, or any executor registered under the "
            "matterhub.executors entry points (named by the part before the first ':')."
        ),
    )
    executor_options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            'The executor\'s own settings as a JSON object, e.g. {"namespace": "hub1"} for '
            "Ray; each key may also be set as MATTERHUB_EXECUTOR_<NAME>_<KEY>."
        ),
    )
    model_adapter_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description=(
            "Settings of the installed model adapters as a JSON object per adapter name, e.g. "
            '{"acme": {"max_layers": 10}}; each key may also be set as '
            "MATTERHUB_MODEL_ADAPTER_<NAME>_<KEY>."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `matterhub serve` binds to.")
    port: int = Field(
        default=8000, ge=0, le=65535, description="Port `matterhub serve` listens on."
    )
    base_url: str = Field(
        default="",
        description=(
            "Public URL of this hub, used in links and identifiers (default http://<host>:<port>)."
        ),
    )
    secret: SecretStr | None = Field(
        default=None,
        description=(
            "Server secret for signing (sessions, webhooks). Default: generated once and kept in "
            "<data_dir>/secret with mode 0600."
        ),
    )
    max_request_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Largest request body the API accepts, in bytes; larger ones get 413.",
    )
    max_json_depth: int = Field(
        default=64,
        ge=2,
        le=1000,
        description="Deepest nesting of arrays and objects in a JSON request body; deeper: 400.",
    )
    max_query_bytes: int = Field(
        default=32 * 1024,
        gt=0,
        description="Longest search query string, in UTF-8 bytes; longer gets 400 before parsing.",
    )
    max_query_clauses: int = Field(
        default=1024,
        gt=0,
        description="Most terms, phrases, ranges and groups one query string may hold; more: 400.",
    )
    max_query_depth: int = Field(
        default=30,
        gt=0,
        le=200,
        description="Deepest nesting of parentheses in a query string; deeper gets 400.",
    )
    token_ttl_days: int | None = Field(
        default=365,
        gt=0,
        description="Default lifetime of new API tokens in days; unset: tokens never expire.",
    )
    web_session_hours: int = Field(
        default=14 * 24,
        gt=0,
        description=(
            "How long a web sign-in lasts, in hours; the server forgets the session then, at "
            "sign-out, or when the user's password changes."
        ),
    )
    admin_username: str = Field(
        default="admin",
        description="Name of the first administrator, made by `matterhub init` or on first serve.",
    )
    pid_provider: str = Field(
        default="local",
        description=(
            "Who mints dataset and servable identifiers: 'local' (this hub, resolved at "
            "/pid/<id>) or 'datacite' (DOIs), or any provider registered under "
            "matterhub.pid_providers."
        ),
    )
    pid_retry_s: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description=(
            "Seconds the idle build worker waits before it retries servable identifiers the "
            "PID registry refused (a version goes live without one; see docs/hub-identifiers.md)."
        ),
    )
    pid_prefix: str = Field(
        default="mh", description="Prefix of identifiers minted by the local provider (<prefix>/…)."
    )
    datacite_url: str = Field(
        default="",
        description=(
            "DataCite REST API URL (default: the test API in test mode, else the production one)."
        ),
    )
    datacite_user: str = Field(default="", description="DataCite repository account (client id).")
    datacite_password: SecretStr | None = Field(
        default=None, description="Password of the DataCite repository account."
    )
    datacite_prefix: str = Field(default="", description="DOI prefix to mint under, e.g. 10.5072.")
    datacite_test_mode: bool = Field(
        default=True,
        description="Mint test DOIs against DataCite's test service (set false for real DOIs).",
    )
    curator_group: str = Field(
        default="curators",
        description="Group whose members see and publish or reject datasets in curation.",
    )
    connect_allowed_roots: list[Path] = Field(
        default_factory=list,
        description=(
            "Server folders Connect may collect `file://` data sources from, as a JSON list; "
            "empty allows none."
        ),
    )
    connect_allow_private_urls: bool = Field(
        default=False,
        description=(
            "Let the server reach loopback and private-network addresses: Connect's sources, "
            "servables' URL inputs, webhooks and peer hubs (the outbound guard's address check "
            "off)."
        ),
    )
    outbound_allowed_networks: list[str] = Field(
        default_factory=list,
        description=(
            "Private networks the server may reach although private addresses are refused, as a "
            'JSON list of CIDRs, e.g. ["10.0.5.0/24"] for a peer hub or a mirror on the LAN.'
        ),
    )
    connect_fsspec_protocols: list[str] = Field(
        default_factory=lambda: ["s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "zip", "tar"],
        description=(
            "fsspec protocols a data source may use, as a JSON list; in a chained URL "
            "(zip://x::https://…) every link is checked and only zip/tar may wrap another."
        ),
    )
    connect_git_protocols: list[str] = Field(
        default_factory=lambda: ["https", "http", "git", "file"],
        description=(
            "git transports a git data source may use (https, http, git, ssh, file), as a JSON "
            "list; file:// only inside connect_allowed_roots; remote helpers (ext::) never."
        ),
    )
    connect_max_bytes: int = Field(
        default=50 * 1024**3,
        gt=0,
        description=(
            "Largest total size of one submission's data, all its sources and uploads together "
            "(downloads, unpacked archives)."
        ),
    )
    publish_max_upload_bytes: int = Field(
        default=50 * 1024**3,
        gt=0,
        description="Largest file size a resumable upload may declare; more is refused with 413.",
    )
    organizations_file: Path | None = Field(
        default=None,
        description=(
            "JSON list of organisations whose rules Connect applies when a submission names them "
            "in mdf.organizations: name, required_fields, curation, acl."
        ),
    )
    connect_zenodo_url: str = Field(
        default="https://zenodo.org", description="Zenodo's base URL for `zenodo:` data sources."
    )
    connect_figshare_url: str = Field(
        default="https://api.figshare.com",
        description="Figshare's API base URL for `figshare:` data sources.",
    )
    connect_fsspec_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description=(
            "Credentials and options per fsspec protocol for Connect data sources, as JSON, "
            'e.g. {"s3": {"key": "…", "secret": "…", "client_kwargs": {"endpoint_url": "…"}}}.'
        ),
    )
    connect_notify_url: str | None = Field(
        default=None,
        description=(
            "Webhook that hears every curation decision and submission outcome "
            "(JSON signed with the server secret in X-MatterHub-Signature)."
        ),
    )
    smtp_url: str | None = Field(
        default=None,
        description="SMTP server (`smtp://host:port`) for e-mailing submitters; unset sends none.",
    )
    smtp_sender: str = Field(
        default="matterhub@localhost", description="From address of the e-mails MatterHub sends."
    )
    hub_max_bundle_bytes: int = Field(
        default=512 * 1024**2,
        gt=0,
        description="Largest servable bundle (document + files, unpacked) accepted; more gets 413.",
    )
    hub_source_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Longest wait for one network read when fetching a servable's files from a source "
            "(URL download); a git clone of a source may take five times this, in seconds."
        ),
    )
    hub_source_max_files: int = Field(
        default=10_000,
        gt=0,
        description="Most files a servable fetched from a git repository or URL may have.",
    )
    hub_installer: Literal["auto", "uv", "pip"] = Field(
        default="auto",
        description="What builds servable environments: `uv` if installed (auto), or venv + pip.",
    )
    hub_cache_dir: Path | None = Field(
        default=None,
        description="Shared wheel/package cache of servable builds (default <data_dir>/hub/cache).",
    )
    hub_envs_dir: Path | None = Field(
        default=None,
        description=(
            "Where servable environments are built (default <data_dir>/hub/envs). They are "
            "content-addressed and complete or absent, so hubs on one machine may share it."
        ),
    )
    hub_index_url: str | None = Field(
        default=None,
        description="Package index servable environments install from (default: the installer's).",
    )
    hub_extra_index_urls: list[str] = Field(
        default_factory=list,
        description="Extra package indexes for servable environments, as a JSON list.",
    )
    hub_find_links: list[str] = Field(
        default_factory=list,
        description="Local folders or pages of wheels for servable environments, as a JSON list.",
    )
    hub_source_builds: bool = Field(
        default=False,
        description=(
            "Let servable installs build packages from source distributions. Their build "
            "scripts run in the install sandbox but share the package cache with other builds; "
            "off: wheels only, so no package code runs before the servable's own check."
        ),
    )
    hub_build_timeout_s: float = Field(
        default=1800.0,
        gt=0,
        description="Longest time one installer command of a servable build may take, in seconds.",
    )
    hub_example_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="Longest time loading a servable and running its example may take, in seconds.",
    )
    hub_sandbox: Literal["auto", "bwrap", "none"] = Field(
        default="bwrap",
        description=(
            "Sandbox of every execution of servable code (workers, build checks, installs): "
            "'bwrap' (bubblewrap + seccomp + rlimits, as an unprivileged uid; where none works, "
            "servable code is refused) or 'none' (unsandboxed: published code runs as the "
            "server's user — only for a hub whose servables you wrote). 'auto' means 'bwrap'."
        ),
    )
    hub_sandbox_uid: int = Field(
        default=100_000,
        ge=1000,
        description=(
            "When the server runs as root: installs run as this uid, each worker as one of the "
            "next `hub_sandbox_uids` uids (no user need exist; none may own anything else)."
        ),
    )
    hub_sandbox_uids: int = Field(
        default=1000,
        ge=1,
        description="How many uids above `hub_sandbox_uid` workers are given (root servers).",
    )
    hub_worker_processes: int = Field(
        default=64,
        ge=4,
        description="Most processes and threads one servable worker may have (RLIMIT_NPROC).",
    )
    hub_worker_open_files: int = Field(
        default=256,
        ge=16,
        description="Most files one servable worker may hold open (RLIMIT_NOFILE).",
    )
    hub_worker_output_mb: int = Field(
        default=64,
        ge=1,
        description=(
            "Largest file a servable may write (its log included) and largest reply, in MiB."
        ),
    )
    hub_worker_scratch_mb: int = Field(
        default=256,
        ge=1,
        description="Size of each sandboxed process's private /tmp (its scratch), in MiB.",
    )
    hub_run_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest time one servable call may run before its worker is killed, seconds.",
    )
    hub_worker_memory_mb: int = Field(
        default=2048,
        ge=0,
        description="Address-space limit of each servable worker in MiB (0: no limit).",
    )
    hub_max_workers: int = Field(
        default=8,
        ge=1,
        description="Warm servable workers kept at most; the least recently used idle one goes.",
    )
    hub_worker_idle_s: float = Field(
        default=600.0,
        gt=0,
        description="Seconds an idle servable worker stays warm before it is stopped.",
    )
    hub_max_replicas: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Cap on replicas (workers or Ray actors) per servable version; owners may "
        "set `max_replicas` up to it.",
    )
    hub_default_min_replicas: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Replicas kept warm per servable when neither its document nor its owner "
        "sets `min_replicas` (0: the last worker stops after `hub_worker_idle_s`).",
    )
    hub_default_max_replicas: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Replicas per servable at most when neither its document (`replicas` or "
        "`max_replicas`) nor its owner sets `max_replicas` (clamped to `hub_max_replicas`).",
    )
    hub_target_queue: float = Field(
        default=1.0,
        ge=0,
        le=1000,
        description="Default autoscaling target: waiting calls per replica before the "
        "autoscaler adds one (a servable may set its own `target_queue`).",
    )
    hub_autoscale: bool = Field(
        default=True,
        description="Run the autoscaler: replicas follow demand within each servable's bounds "
        "(off: a pool grows to `max_replicas` as calls need workers and never shrinks early).",
    )
    hub_autoscale_interval_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="Seconds between the autoscaler's looks at each servable's pool.",
    )
    hub_scale_down_idle_s: float = Field(
        default=30.0,
        ge=0,
        description="Seconds a pool must need fewer replicas than it has before the autoscaler "
        "retires idle ones (never below `min_replicas`).",
    )
    hub_results_ttl_s: float = Field(
        default=7 * 86400.0,
        gt=0,
        description="How long run results, statuses and provenance are kept, in seconds.",
    )
    hub_max_input_bytes: int = Field(
        default=256 * 1024**2,
        gt=0,
        description="Largest file input of a run (an upload or a URL the hub fetches); more: 413.",
    )
    oai_repository_name: str = Field(
        default="MatterHub",
        max_length=200,
        description="The repository name the OAI-PMH endpoint (/oai) gives in Identify.",
    )
    oai_admin_email: str = Field(
        default="",
        max_length=320,
        description="The OAI-PMH adminEmail given in Identify (default: `smtp_sender`).",
    )
    oai_namespace: str = Field(
        default="",
        max_length=200,
        description="The namespace of OAI-PMH item identifiers `oai:<namespace>:<source_name>` "
        "(default: the host name of `base_url`).",
    )
    oai_page_size: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Items per OAI-PMH list response; a longer list continues with a "
        "resumption token.",
    )
    oai_token_ttl_s: int = Field(
        default=3600,
        ge=60,
        le=7 * 86400,
        description="How long an OAI-PMH resumption token stays valid, in seconds (tokens are "
        "signed cursors: nothing is kept on the server).",
    )
    harvest_max_records: int = Field(
        default=10000,
        ge=1,
        le=1_000_000,
        description="Most records one harvest run of a followed repository reads; a longer "
        "list goes on from its resumption token at the next run.",
    )
    harvest_max_response_bytes: int = Field(
        default=32 * 1024**2,
        ge=1024,
        description="Largest OAI-PMH response a harvest reads, in bytes; a larger one fails "
        "the run.",
    )
    harvest_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Longest wait for one network read of a harvest request, in seconds.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Logging level of the server."
    )

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        """Fill URLs that default to places under data_dir, and the base URL."""
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'catalog.db'}"
        if not self.storage_url:
            self.storage_url = f"file://{self.data_dir / 'blobs'}"
        if self.index_dir is None:
            self.index_dir = self.data_dir / "index"
        if not self.base_url:
            shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
            self.base_url = f"http://{shown}:{self.port}"
        self.base_url = self.base_url.rstrip("/")
        return self
