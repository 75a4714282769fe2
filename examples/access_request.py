"""Access requests, end to end: ask a servable's owner for the right to run it, and get it.

The owner publishes a small servable everyone may see but only the owner may run; another user
sees it, is refused a run (the refusal says how to ask), asks for access with a message; the
owner lists the pending requests and grants one; the user runs the servable and reads the
recorded decision (who, when, to whom).

    python examples/access_request.py --url http://127.0.0.1:8000 \\
        --token <owner token> --requester-token <another user's token>

or with MATTERHUB_URL, MATTERHUB_TOKEN (the owner) and MATTERHUB_REQUESTER_TOKEN set. Create the
users and their tokens on the server with `matterhub user add` and `matterhub token create`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from matterhub import Client
from matterhub.client.describe import describe_files
from matterhub.client.errors import ConflictError, PermissionDeniedError

MODULE = '''"""Scale a list of numbers."""


def scale(values):
    """Every value times 2.5."""
    return [2.5 * v for v in values]
'''


def main() -> int:
    """Publish, ask, grant, run; print each step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("MATTERHUB_URL", "http://127.0.0.1:8000"))
    parser.add_argument(
        "--token", default=os.environ.get("MATTERHUB_TOKEN"), help="the owner's API token"
    )
    parser.add_argument(
        "--requester-token",
        default=os.environ.get("MATTERHUB_REQUESTER_TOKEN"),
        help="the API token of the user who asks for access",
    )
    parser.add_argument("--name", default=f"scaler_{int(time.time())}", help="servable name")
    args = parser.parse_args()
    if not args.token or not args.requester_token:
        parser.error("give --token and --requester-token (or MATTERHUB_TOKEN and "
                     "MATTERHUB_REQUESTER_TOKEN)")  # fmt: skip

    with Client(args.url, args.token) as owner, Client(args.url, args.requester_token) as user:
        me = owner.whoami()["username"]
        ref = f"{me}/{args.name}"

        # 1. The owner publishes a servable everyone sees but only the owner may run.
        with tempfile.TemporaryDirectory() as tmp:
            module = Path(tmp) / "scaler.py"
            module.write_text(MODULE)
            numbers = {"type": "list", "item_type": {"type": "float"}}
            description = describe_files(
                args.name, "scaler:scale", [module], input_type=numbers, output_type=numbers
            )
            description.set_title("Scaler (restricted)").set_creators(["Example, Owner"])
            description.set_example([1.0, 2.0], [2.5, 5.0])
            description.set_visibility(["public"], runnable_by=[f"user:{me}"])
            build = owner.publish_servable(description, wait=True, timeout=600)
        if build["status"] != "succeeded":
            print(build["log"], file=sys.stderr)
            return 1
        print(f"published {ref} version {build['version']} (runnable by {me} only)")

        # 2. The other user sees it but may not run it; the refusal says how to ask.
        requester = user.whoami()["username"]
        try:
            user.run(ref, [1.0])
            print(f"{requester} could already run {ref}; nothing to ask", file=sys.stderr)
            return 1
        except PermissionDeniedError as exc:
            print(f"{requester} may not run it yet: {exc.detail}")

        # 3. ... and asks the owner, with a message.
        try:
            asked = user.request_access(ref, "I would like to scale my band gaps with it.")
        except ConflictError as exc:  # asked before and still pending
            print(exc.detail, file=sys.stderr)
            return 1
        print(f"{requester} asked: request {asked['id']} is {asked['status']}")

        # 4. The owner sees the pending requests on their servables and grants this one.
        pending = owner.access_requests(role="owner", status="pending")
        print(f"{me} has {len(pending)} pending request(s): "
              + ", ".join(f"{r['requester']} for {r['servable']}" for r in pending))  # fmt: skip
        granted = owner.grant_access(asked["id"])
        print(f"{me} granted it to {granted['granted_to']} at {granted['decided_at']}")

        # 5. The user runs it at once and reads the recorded decision.
        result = user.run(ref, [1.0, 2.0, 4.0])
        print(f"{requester} ran {ref}: {result}")
        decision = user.access_request(asked["id"])
        print(f"decision on record: {decision['status']} by {decision['decided_by']} "
              f"at {decision['decided_at']} to {decision['granted_to']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
