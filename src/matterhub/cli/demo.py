"""`matterhub demo`: an embedded hub in a local folder with demo content, ready to try."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from matterhub.bootstrap import Services, build_services, open_sandbox
from matterhub.cli.demo_data import demo_source_root, publish_demo_datasets
from matterhub.cli.demo_servable import publish_demo_servable
from matterhub.cli.server import check_port_free, run_server
from matterhub.core.errors import Conflict
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.settings import Settings

__all__ = ["run_demo", "seed_demo"]

DEMO_USER = "alice"
DEMO_GROUP = "demo-lab"


def _remember(path: Path, secret: str) -> None:
    """Keep a demo token beside the data (mode 0600) so a second `make demo` can show it again."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)


def seed_demo(services: Services) -> dict[str, str]:
    """Create the demo accounts once; return the tokens to show, by username."""
    data_dir = services.settings.data_dir
    tokens: dict[str, str] = {}
    admin_file = data_dir / "demo-admin-token"
    created = services.accounts.ensure_admin(services.settings.admin_username)
    if created is not None:
        _remember(admin_file, created[1].token)
    alice_file = data_dir / "demo-alice-token"
    try:
        services.accounts.create_user(
            SYSTEM_IDENTITY, DEMO_USER, email="alice@example.org", full_name="Alice Demo"
        )
        services.accounts.create_group(
            SYSTEM_IDENTITY, DEMO_GROUP, description="Everyone trying the demo"
        )
        services.accounts.add_member(SYSTEM_IDENTITY, DEMO_GROUP, DEMO_USER)
        token = services.accounts.create_token(SYSTEM_IDENTITY, DEMO_USER, name="demo")
        _remember(alice_file, token.token)
    except Conflict:
        pass  # seeded by an earlier run
    for name, path in ((services.settings.admin_username, admin_file), (DEMO_USER, alice_file)):
        if path.exists():
            tokens[name] = path.read_text().strip()
    return tokens


def run_demo(settings: Settings, *, console: Console, serve: bool = True) -> None:
    """Set up the demo hub, print what to try, and serve until Ctrl-C."""
    if serve:
        check_port_free(settings.host, settings.port)
    roots = [*settings.connect_allowed_roots, demo_source_root(settings.data_dir)]
    settings = settings.model_copy(update={"connect_allowed_roots": roots})
    problem = open_sandbox(settings).problem()
    if problem is not None and "hub_sandbox" not in settings.model_fields_set:
        # The demo publishes only its own servable; a real hub would refuse to run it.
        console.print(
            f"[yellow]No working sandbox on this machine ({problem}). This demo hub runs its "
            "own demo servable unsandboxed (hub_sandbox=none); do not publish anyone else's "
            "code to it. See docs/security.md.[/yellow]"
        )
        settings = settings.model_copy(update={"hub_sandbox": "none"})
    services = build_services(settings)
    services.start()
    tokens = seed_demo(services)
    console.print("Submitting the demo datasets through Connect (first start only)…")
    alice_token = tokens.get(DEMO_USER) or (
        services.accounts.create_token(SYSTEM_IDENTITY, DEMO_USER, name="demo").token
    )
    alice_identity = services.accounts.authenticate(alice_token)
    datasets = publish_demo_datasets(services, alice_identity)
    servable = None
    if datasets:
        console.print("Publishing the demo servable (a Δ-model trained on dcdft)…")
        servable = publish_demo_servable(services, alice_identity, datasets[0])
    base = settings.base_url
    alice = tokens.get(DEMO_USER, "<token>")
    admin = tokens.get(settings.admin_username, "<token>")
    lines = [
        f"[bold]MatterHub demo[/bold] — data in {settings.data_dir}",
        "",
        f"  Home         {base}/",
        f"  Search       {base}/search?q=Fe",
        f"  Servables    {base}/servables",
        f"  API docs     {base}/docs",
        f"  Health       {base}/health",
        "",
        f"Demo user [bold]{DEMO_USER}[/bold] (group {DEMO_GROUP}) has the token:",
        f"  {alice}",
        f"Administrator [bold]{settings.admin_username}[/bold] has the token:",
        f"  {admin}",
        "",
        "Try it:",
        f'  curl -H "Authorization: Bearer {alice}" {base}/api/whoami',
        f"  matterhub --data-dir {settings.data_dir} user list",
    ]
    if datasets:
        dcdft = datasets[0]
        lines += [
            "",
            f"Datasets: {', '.join(datasets)} (published, with identifiers, searchable in 'mdf')",
            f"  {base}/api/datasets/{dcdft}",
            f"  {base}/api/datasets/{dcdft}/archive.zip",
            f"  curl '{base}/v1/index/mdf/search?q=material.elements:Fe&advanced=true'",
            f"  curl '{base}/api/datasets/{dcdft}/cite?format=bibtex'",
            f"  matterhub --data-dir {settings.data_dir} dataset list",
            "Python, with the unmodified MDF client (pip install mdf-forge):",
            f'  GLOBUS_SDK_SERVICE_URL_SEARCH={base}/ python -c "from mdf_forge import Forge; '
            "f = Forge(index='mdf', anonymous=True); "
            "print([r['material']['composition'] for r in "
            "f.match_source_names('dcdft').match_elements(['Fe']).search()])\"",
        ]
        lines += [
            "Python, with MatterHub's client (Forge's names; pip install matterhub):",
            f'  python -c "from matterhub import Forge; '
            f"f = Forge(base_url='{base}', anonymous=True); "
            "print(f.match_source_names('dcdft').facets('material.elements', size=5))\"",
            "The command line, as a user of this hub:",
            f'  matterhub login --url {base} --token ""',
            "  matterhub search --elements Fe --limit 5 --facet material.elements",
            "  matterhub download dcdft --dest dcdft-data",
        ]
    else:
        lines += ["", "Install matterhub[demo] (ASE) for the demo datasets."]
    if servable:
        lines += [
            "",
            f"Servable {servable}: a Δ-model correcting PBE bulk moduli toward experiment",
            f"  {base}/servables/{servable}   (a page with a 'try it' form)",
            f"  curl '{base}/api/servables?q=bulk+modulus'",
            f"  curl -H 'Content-Type: application/json' -d '{{\"inputs\": 100.0}}' "
            f"{base}/servables/{servable}/run",
            f"  matterhub servable show {servable}",
            f"  matterhub run {servable} --input 100.0 --debug",
            f'  python -c "from matterhub import Client; '
            f"print(Client('{base}').run('{servable}', 100.0))\"",
        ]
    # Plain lines, never boxed or cut: they are meant to be copied into a terminal.
    console.rule("MatterHub demo")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
    console.rule()
    if serve:
        console.print("Serving; press Ctrl-C to stop.")
        run_server(settings, services)
