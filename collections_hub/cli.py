"""`collections-hub`: `up` (the embedded stack), `admin ...` (operator tools), migrate, export, import."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click
import httpx

from collections_hub.client import Hub
from collections_hub.client.errors import Conflict, HubConnectionError
from collections_hub.client.transport import Credentials
from collections_hub.console import (
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    admin_key,
    default_url,
    emit,
    fail,
    friendly_errors,
    progress_bars,
)
from collections_hub.stack import EmbeddedStack, StackConfig
from collections_hub.supervisor import Supervisor
from collections_hub.transfer.export import Exporter, ExportReport, partial_file, unwritable_reason
from collections_hub.transfer.importer import Importer, ImportReport
from collections_hub.transfer.journal import Journal
from collections_hub.transfer.migrate import OUTCOMES, Listener, MigrationReport, Migrator
from collections_hub.transfer.source import SourceCollection, SourceReader

URL_HELP = "gateway URL (default: the local stack, http://127.0.0.1:$HUB_PORT)"


def run_stack(port: int | None, data_dir: str | None) -> int:
    """Start the stack, print how to reach it, and supervise it until Ctrl-C or SIGTERM."""
    config = StackConfig.from_env(port, data_dir)
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


def hub_key(api_key: str | None) -> str:
    """The key for this hub: `--api-key`, HUB_API_KEY, HUB_ADMIN_API_KEY, or `.hub-data/secrets.json`."""
    key = api_key or os.environ.get("HUB_API_KEY") or admin_key()
    if not key:
        fail(
            "no API key: pass --api-key, set HUB_ADMIN_API_KEY, or run `collections-hub up` here", EXIT_USAGE
        )
    return key


def admin_hub(url: str) -> Hub | None:
    """A client with the admin key, when one is known (it creates users and groups that shares name)."""
    key = admin_key()
    return Hub(url, api_key=key) if key else None


def project_arg(value: str | None) -> tuple[str, str] | None:
    """`namespace/project` as a pair."""
    if value is None:
        return None
    namespace, _, slug = value.partition("/")
    if not namespace or not slug:
        raise click.BadParameter("expected NAMESPACE/PROJECT")
    return namespace, slug


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """collections-hub: run the stack, administer it, and move collections in and out."""


@cli.command()
@click.option("--port", type=int, default=None, help="gateway port (HUB_PORT, default 8080)")
@click.option("--data-dir", default=None, help="where data lives (HUB_DATA_DIR, default .hub-data)")
def up(port: int | None, data_dir: str | None) -> int:
    """Start the embedded stack."""
    return run_stack(port, data_dir)


@cli.group()
def admin() -> None:
    """Operator tools against a running gateway."""


def admin_options(command: Any) -> Any:
    """`--url` and `--api-key` (the admin key: HUB_ADMIN_API_KEY or `.hub-data/secrets.json`)."""
    command = click.option("--api-key", default=None, help="admin API key (default: HUB_ADMIN_API_KEY)")(
        command
    )
    return click.option("--url", default=default_url, show_default="local stack", help=URL_HELP)(command)


def admin_client(url: str, api_key: str | None) -> Hub:
    """A client holding the admin key."""
    key = api_key or admin_key()
    if not key:
        fail("set HUB_ADMIN_API_KEY, pass --api-key, or run `collections-hub up` here first", EXIT_USAGE)
    return Hub(url, api_key=key)


@admin.command("create-user")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["admin", "user", "guest"]), default="user")
@click.option("--first-name")
@click.option("--last-name")
@admin_options
def create_user(
    *, email: str, role: str, first_name: str | None, last_name: str | None, url: str, api_key: str | None
) -> int:
    """Create a user."""
    with friendly_errors(url), admin_client(url, api_key) as hub:
        user = hub.admin.create_user(email, role=role, first_name=first_name, last_name=last_name)
    click.echo(user.model_dump_json())
    return 0


@admin.command("create-key")
@click.option("--user-id", type=int, required=True)
@click.option("--name")
@admin_options
def create_key(user_id: int, name: str | None, url: str, api_key: str | None) -> int:
    """Issue an API key for a user (the key is printed once)."""
    with friendly_errors(url), admin_client(url, api_key) as hub:
        key = hub.admin.create_key(user_id, name)
    click.echo(key.model_dump_json())
    return 0


@dataclasses.dataclass
class VerifyReport:
    """What `views verify` found."""

    checked: int = 0
    drifted_views: list[str] = dataclasses.field(default_factory=list)
    missing: int = 0
    extra: int = 0
    twice: int = 0
    repaired: bool = False


def verify_rows(report: VerifyReport) -> list[tuple[str, str]]:
    """The summary table of a verify run."""
    return [
        ("views checked", f"{report.checked:,}"),
        ("views that drifted", f"{len(report.drifted_views):,}"),
        ("collections missing", f"{report.missing:,}"),
        ("collections held wrongly", f"{report.extra:,}"),
        ("collections held twice", f"{report.twice:,}"),
        ("repaired", "yes" if report.repaired and report.drifted_views else "no"),
    ]


@cli.group()
def views() -> None:
    """The lists' views (which collections each reader sees)."""


@views.command("verify")
@click.option("--repair", is_flag=True, help="repair what differs (a held or missing collection)")
@click.option("--batch", type=click.IntRange(1, 500), default=100, show_default=True, help="views per call")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@admin_options
def verify_views(*, repair: bool, batch: int, as_json: bool, url: str, api_key: str | None) -> int:
    """Check every view against the rules (docs/scale.md, "Lists: the verifier"): exit 0 when all match,
    4 when some differed (each one is logged by catalog and counted in catalog_view_repairs_total)."""
    report = VerifyReport(repaired=repair)
    with (
        progress_bars(not as_json) as bars,
        friendly_errors(url, "interrupted; views checked so far are in the catalog log"),
        admin_client(url, api_key) as hub,
    ):
        task = bars.add_task("views", total=None)
        after: str | None = ""
        while after is not None:
            page = hub.admin.verify_views(after, batch, repair=repair)
            report.checked += page.checked
            for drift in page.drifted:
                report.drifted_views.append(drift.view)
                report.missing += len(drift.missing)
                report.extra += len(drift.extra)
                report.twice += len(drift.twice)
            bars.advance(task, page.checked)
            after = page.next
    emit(report, as_json, "list views", verify_rows)
    return EXIT_PARTIAL if report.drifted_views else 0


class BarListener(Listener):
    """Moves the migrate bars."""

    def __init__(self, bars: Any) -> None:
        self.bars = bars
        self.collections = bars.add_task("collections", total=None)
        self.members = bars.add_task("members", total=None)

    def started(self, total: int) -> None:
        """The collection count is known."""
        self.bars.update(self.collections, total=total)

    def collection_done(self, collection: SourceCollection, members: int) -> None:
        """One more collection, and its members."""
        self.bars.advance(self.collections)
        self.bars.advance(self.members, members)


def state_file(*identity: str) -> Path:
    """`$HUB_DATA_DIR/migrations/<hash of identity>.jsonl`."""
    digest = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:16]
    return Path(os.environ.get("HUB_DATA_DIR", ".hub-data")) / "migrations" / f"{digest}.jsonl"


def state_path(source: str, dialect: str, key: str, dest: str) -> Path:
    """The default state file: one per (source, dialect, key, destination hub and user), so the same
    command finds its own and a copy into another hub or another user starts afresh."""
    return state_file(source, dialect, key, dest)


def chosen_state(state: Path | None, source: str, dialect: str, key: str, dest: str) -> Path:
    """`--state`, else the default; refused while a state file named before destinations counted (by
    source, dialect and key only) is there, since only the user knows which destination it was for."""
    if state is not None:
        return state
    path, legacy = state_path(source, dialect, key, dest), state_file(source, dialect, key)
    if legacy.exists() and not path.exists():
        fail(
            f"{legacy} records an earlier migration from {source} without saying into which hub and user: "
            f"if it was into this one, rerun with --state {legacy}; if not, with --state {path}",
            EXIT_USAGE,
        )
    return path


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port: what tells two services apart."""
    return url.scheme, url.host, url.port


def unreachable_end(exc: HubConnectionError, ends: tuple[str, ...]) -> str:
    """Which of `ends` (URLs) the failed call went to, from the transport error the client wraps."""
    cause = exc.__cause__
    try:
        called = cause.request.url if isinstance(cause, httpx.RequestError) else None
    except RuntimeError:  # an error raised without its request
        called = None
    if called is not None:
        matching = [end for end in ends if origin(httpx.URL(end)) == origin(called)]
        if len(matching) == 1:
            return matching[0]
    return " or ".join(ends)


@contextmanager
def naming_unreachable(*ends: str) -> Iterator[None]:
    """A lost connection names the end it was lost to (friendly_errors knows only one URL)."""
    try:
        yield
    except HubConnectionError as exc:
        why = exc.message.removeprefix("cannot reach the hub: ")
        fail(f"cannot reach {unreachable_end(exc, ends)}: {why}", EXIT_UNREACHABLE)


def migration_rows(report: MigrationReport) -> list[tuple[str, str]]:
    """The summary table of a migration."""
    if report.plan:
        return [
            (
                f"{row.name} ({row.source_id})",
                f"{row.assets} assets, {row.models} models, "
                f"{row.users} users, {row.groups} groups{', public' if row.public else ''}"
                f"{' (already copied)' if row.done else ''}",
            )
            for row in report.plan
        ] + [("members in all", str(report.members)), ("state file", report.state_file)]
    outcomes = [
        (kind, ", ".join(f"{counts[outcome]:,} {outcome}" for outcome in OUTCOMES))
        for kind, counts in report.outcomes.items()
    ]
    return [
        ("collections at the source", f"{report.total:,}"),
        *outcomes,
        ("assets and models linked", f"{report.members:,}"),
        ("items given a new id", f"{len(report.items_remapped):,}"),
        ("shares restored", f"{report.shares:,}"),
        ("state file", report.state_file),
    ]


@cli.command()
@click.option("--from", "source", required=True, help="URL of the service to copy from")
@click.option("--dialect", type=click.Choice(["b", "c"]), required=True, help="the API the source speaks")
@click.option("--api-key", required=True, help="source key (C: the key as Bearer, or key_id:secret)")
@click.option("--url", default=default_url, show_default="local stack", help=URL_HELP)
@click.option("--to-api-key", default=None, help="key of the user who will own the copies here")
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path), default=None, help="state file")
@click.option("--rate", type=float, default=None, help="at most this many requests a second to each side")
@click.option("--dry-run", is_flag=True, help="only say what would be copied")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def migrate(
    *,
    source: str,
    dialect: str,
    api_key: str,
    url: str,
    to_api_key: str | None,
    state: Path | None,
    rate: float | None,
    dry_run: bool,
    as_json: bool,
) -> int:
    """Copy everything the key's user owns at a dialect B or C service into this hub (resumable)."""
    resume = "interrupted; run the same command again to continue"  # the journal says where
    with ExitStack() as resources:
        bars = resources.enter_context(progress_bars(not as_json))
        resources.enter_context(friendly_errors(f"{source} or {url}", resume))
        resources.enter_context(naming_unreachable(source, url))
        source_hub = resources.enter_context(
            Hub(source, credentials=Credentials.for_dialect(api_key, dialect), rate=rate)
        )
        dest = resources.enter_context(Hub(url, api_key=to_api_key or hub_key(None), rate=rate))
        # The copies' owner here, with the hub, names the destination (in the state file's name and start).
        dest_identity = f"{url.rstrip('/')} user {dest.me().user_id}"
        path = chosen_state(state, source, dialect, api_key, dest_identity)
        journal = Journal(path, source, dest_identity)
        resources.callback(journal.close)
        admin = admin_hub(url)
        if admin is not None:
            resources.enter_context(admin)
        reader = SourceReader(source_hub, dialect)
        migrator = Migrator(reader, dest, journal, admin=admin, listener=BarListener(bars))
        migrator.report.state_file = str(path)
        report = migrator.plan() if dry_run else migrator.run()
    emit(report, as_json, "dry run: would copy" if dry_run else "migration", migration_rows)
    for source_id, why in report.failed.items():
        click.echo(f"failed: {source_id}: {why}", err=True)
    return EXIT_PARTIAL if report.failed else 0


def collection_bar(bars: Any, label: str) -> Any:
    """A collections bar and a members bar; the callback advances both."""
    collections = bars.add_task(label, total=None)
    members = bars.add_task("members", total=None)

    def advance(count: int) -> None:
        bars.advance(collections)
        bars.advance(members, count)

    return advance


def export_rows(report: ExportReport) -> list[tuple[str, str]]:
    """The summary table of an export."""
    return [
        ("collections", str(report.collections)),
        ("members", str(report.members)),
        ("shares", str(report.shares)),
        ("history entries", str(report.history)),
    ]


def output_path(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """`-o`: `-` (stdout), or a file whose directory exists and is writable; refused before any work."""
    if value != "-" and (why := unwritable_reason(Path(value))):
        raise click.BadParameter(why)
    return value


@cli.command("export")
@click.option("--project", default=None, help="NAMESPACE/PROJECT to export")
@click.option("--user", "user_id", type=int, default=None, help="export what this user owns (admin key)")
@click.option("-o", "--output", default="-", callback=output_path, help="file (- stdout)")
@click.option("--url", default=default_url, show_default="local stack", help=URL_HELP)
@click.option("--api-key", default=None, help="key (default: HUB_API_KEY, then the admin key)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON (on stderr with -o -)")
def export_command(
    *, project: str | None, user_id: int | None, output: str, url: str, api_key: str | None, as_json: bool
) -> int:
    """Write one project's or one user's collections, members, shares and history as JSON Lines (a file
    appears only when the export finished: a failed or interrupted one leaves none)."""
    if project and user_id is not None:
        fail("give --project or --user, not both", EXIT_USAGE)
    to_stdout = output == "-"
    interrupted = (
        "interrupted; the output is incomplete (import refuses it): run the export again"
        if to_stdout
        else f"interrupted; nothing was written to {output}: run the export again"
    )
    with ExitStack() as resources:
        # Entered first so it is left last: whatever stops the export (friendly_errors' exit included)
        # removes the partial file.
        out = sys.stdout if to_stdout else resources.enter_context(partial_file(Path(output)))
        bars = resources.enter_context(progress_bars(not as_json))
        resources.enter_context(friendly_errors(url, interrupted))
        hub = resources.enter_context(Hub(url, api_key=hub_key(api_key)))
        exporter = Exporter(
            hub,
            out,
            project=project_arg(project),
            user_id=user_id,
            on_collection=collection_bar(bars, "collections"),
        )
        report = exporter.run()
        out.flush()
    if to_stdout:
        if as_json:
            click.echo(json.dumps(report.__dict__, indent=2, sort_keys=True), err=True)
        return 0
    emit(report, as_json, f"exported to {output}", export_rows)
    return 0


def import_rows(report: ImportReport) -> list[tuple[str, str]]:
    """The summary table of an import."""
    return [
        ("collections", str(report.collections)),
        ("members", str(report.members)),
        ("shares restored", str(report.shares)),
        ("collection ids remapped (always)", str(len(report.collection_ids))),
        ("item ids remapped (taken here)", str(len(report.items_remapped))),
        ("history entries not imported", str(report.history_skipped)),
    ]


def import_interrupted(report: ImportReport) -> str:
    """What Ctrl-C during an import leaves: nothing before the file is checked, else the collections made
    so far, which a rerun would make again (an import keeps no journal)."""
    made = len(report.collection_ids)
    if not made:
        return "interrupted before any collection was imported"
    return (
        f"interrupted after creating {made} collection(s) here, the last perhaps in part; running the same "
        "import again creates every collection again, as copies"
    )


def owner_key(url: str, email: str) -> str:
    """Create the owner (admin key) and a key for it, so the import runs as that user."""
    admin_client_ = admin_hub(url)
    if admin_client_ is None:
        fail("--owner-email needs the admin key (HUB_ADMIN_API_KEY or .hub-data/secrets.json)", EXIT_USAGE)
    with admin_client_:
        try:
            user = admin_client_.admin.create_user(email)
        except Conflict:
            fail(f"{email} has an account here already: pass that user's --api-key instead", EXIT_USAGE)
        return admin_client_.admin.create_key(user.id, "import").key


@cli.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--project", default=None, help="NAMESPACE/PROJECT to import into (default: as exported)")
@click.option("--owner-email", default=None, help="create this user (admin key) and import as them")
@click.option("--url", default=default_url, show_default="local stack", help=URL_HELP)
@click.option("--api-key", default=None, help="key of the importing user (default: the admin key)")
@click.option("--json", "as_json", is_flag=True, help="print the report (with every id map) as JSON")
def import_command(
    *, file: Any, project: str | None, owner_email: str | None, url: str, api_key: str | None, as_json: bool
) -> int:
    """Load an export file into this hub (collection and item ids kept where free here, else new; keeping
    a collection id needs the admin key)."""
    with ExitStack() as resources:
        bars = resources.enter_context(progress_bars(not as_json))
        resources.enter_context(friendly_errors(url))
        key = owner_key(url, owner_email) if owner_email else hub_key(api_key)
        hub = resources.enter_context(Hub(url, api_key=key))
        admin = admin_hub(url)
        if admin is not None:
            resources.enter_context(admin)
        importer = Importer(
            hub, admin=admin, project=project_arg(project), on_collection=collection_bar(bars, "collections")
        )
        try:
            report = importer.run(file)
        except KeyboardInterrupt:
            fail(import_interrupted(importer.report), EXIT_INTERRUPTED)
    emit(report, as_json, "import", import_rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `collections-hub` console script."""
    try:
        result = cli.main(args=argv, prog_name="collections-hub", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
