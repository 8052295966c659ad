"""`collections-hub up` (the embedded stack) and `collections-hub admin ...` (operator tools)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from types import FrameType

from collections_hub.stack import EmbeddedStack, StackConfig
from collections_hub.supervisor import Supervisor


def up(args: argparse.Namespace) -> int:
    """Start the stack, print how to reach it, and supervise it until Ctrl-C or SIGTERM."""
    config = StackConfig.from_env(args.port, args.data_dir)
    stack = EmbeddedStack(config)
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"starting collections-hub (data in {config.data_dir}) ...", flush=True)
    try:
        stack.start()
        print(
            f"collections-hub is up at {stack.gateway_url}\n"
            f"  admin API key: {stack.admin_api_key}\n"
            f'  try: curl -H "X-API-KEY: $HUB_ADMIN_API_KEY" {stack.gateway_url}/v1/me\n'
            f"  logs: {config.data_dir / 'logs'}    pids: {stack.state_path}    stop: Ctrl-C",
            flush=True,
        )
        exit_code = Supervisor(stack, config.restart_policy).run(stopping)
    finally:
        stack.stop()
    print("collections-hub stopped", flush=True)
    return exit_code


def _admin_call(args: argparse.Namespace, method: str, path: str, body: dict[str, object]) -> int:
    key = args.api_key or os.environ.get("HUB_ADMIN_API_KEY")
    if not key:
        print("set HUB_ADMIN_API_KEY or pass --api-key", file=sys.stderr)
        return 2
    request = urllib.request.Request(  # noqa: S310 - the operator's own gateway URL
        f"{args.url.rstrip('/')}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"X-API-KEY": key, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            print(response.read().decode())
            return 0
    except urllib.error.HTTPError as error:
        print(f"{error.code}: {error.read().decode()}", file=sys.stderr)
        return 1


def create_user(args: argparse.Namespace) -> int:
    """`admin create-user`: POST /admin/users."""
    body: dict[str, object] = {"email": args.email, "role": args.role}
    if args.first_name:
        body["first_name"] = args.first_name
    if args.last_name:
        body["last_name"] = args.last_name
    return _admin_call(args, "POST", "/admin/users", body)


def create_key(args: argparse.Namespace) -> int:
    """`admin create-key`: POST /admin/users/{id}/api-keys (the key is printed once)."""
    body: dict[str, object] = {"name": args.name} if args.name else {}
    return _admin_call(args, "POST", f"/admin/users/{args.user_id}/api-keys", body)


def parser() -> argparse.ArgumentParser:
    """The command line."""
    root = argparse.ArgumentParser(prog="collections-hub", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("up", help="start the embedded stack")
    run.add_argument("--port", type=int, default=None, help="gateway port (HUB_PORT, default 8080)")
    run.add_argument("--data-dir", default=None, help="where data lives (HUB_DATA_DIR, default .hub-data)")
    run.set_defaults(func=up)
    admin = commands.add_parser("admin", help="operator tools against a running gateway")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    default_url = f"http://127.0.0.1:{os.environ.get('HUB_PORT', '8080')}"
    user = admin_commands.add_parser("create-user", help="create a user")
    user.add_argument("--email", required=True)
    user.add_argument("--role", choices=["admin", "user", "guest"], default="user")
    user.add_argument("--first-name")
    user.add_argument("--last-name")
    user.set_defaults(func=create_user)
    key = admin_commands.add_parser("create-key", help="issue an API key for a user")
    key.add_argument("--user-id", type=int, required=True)
    key.add_argument("--name")
    key.set_defaults(func=create_key)
    for sub in (user, key):
        sub.add_argument("--url", default=default_url, help="gateway URL")
        sub.add_argument("--api-key", default=None, help="admin API key (default: HUB_ADMIN_API_KEY)")
    return root


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `collections-hub` console script."""
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
