"""Publish a tiny servable, wait until it is live, then print its identifier and citations.

The hub mints an identifier for every servable version when it goes live, with the PID
provider it uses for datasets (a local `mh/…` PID, or a DataCite DOI when configured):

    python examples/cite_servable.py --url http://127.0.0.1:8000 --token mh_…
    MATTERHUB_URL=… MATTERHUB_TOKEN=… python examples/cite_servable.py --dataset mydata_v1.1

`--dataset` names a training dataset on the hub (a source_id); its identifier then appears in
the citation as the one the servable `IsDerivedFrom`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import textwrap
from pathlib import Path

from matterhub import Client
from matterhub.client.describe import describe_function

SOURCE = '''
def scale(x: list[float], factor: float = 2.0) -> list[float]:
    """Multiply every value by a factor."""
    return [v * factor for v in x]
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("MATTERHUB_URL"), help="the hub")
    parser.add_argument("--token", default=os.environ.get("MATTERHUB_TOKEN"), help="API token")
    parser.add_argument("--name", default="cite_example", help="the servable's name")
    parser.add_argument("--dataset", help="source_id of the training dataset on the hub")
    args = parser.parse_args()
    if not args.url or not args.token:
        parser.error("give --url and --token (or set MATTERHUB_URL and MATTERHUB_TOKEN)")
    client = Client(args.url, args.token)
    try:
        return publish_and_cite(client, args)
    finally:
        client.close()


def publish_and_cite(client: Client, args: argparse.Namespace) -> int:
    """Publish the servable, wait until it is live, print its identifier and citations."""
    me = client.whoami()["username"]

    with tempfile.TemporaryDirectory() as folder:
        module = Path(folder) / "scaler.py"
        module.write_text(textwrap.dedent(SOURCE))
        spec = importlib.util.spec_from_file_location("scaler", module)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        description = describe_function(loaded.scale, args.name)
        description.set_title("Scale a list of numbers").set_creators(["Doe, Jane"])
        description.set_license("MIT", "https://opensource.org/license/mit")
        description.set_example([1.0, 2.5], [2.0, 5.0])
        if args.dataset:
            description.link_dataset(source_id=args.dataset)
        build = client.publish_servable(description, wait=True, timeout=600)
    ref = f"{me}/{args.name}"
    if build["status"] != "succeeded":
        print(f"build of {ref} {build['status']}:\n{build['log']}", file=sys.stderr)
        return 1

    live = client.describe_servable(ref)["latest_version"]
    identifier = client.servable_identifier(ref)
    print(f"servable:   {ref} (version {live})")
    print(f"identifier: {identifier or 'not registered yet (the hub retries)'}")
    print(f"landing:    {args.url.rstrip('/')}/servables/{ref}/versions/{live}")
    print("\n# BibTeX")
    print(client.cite_servable(ref, format="bibtex"), end="")
    print("\n# DataCite XML")
    print(client.cite_servable(ref, format="datacite-xml"), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
