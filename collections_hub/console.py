"""What the CLI shows: progress bars (counts, rate, ETA) on stderr, a summary table or `--json` on stdout,
and one-line errors with distinct exit codes instead of tracebacks."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from collections_hub.client.errors import ApiError, HubConnectionError, InvalidInput
from collections_hub.transfer.archive import ArchiveError
from collections_hub.transfer.journal import JournalError

# Exit codes (docs/cli.md): 1 the server refused, 2 usage or configuration, 3 the hub cannot be reached,
# 4 finished but some collections failed, 130 interrupted (a rerun of migrate continues where it stopped).
EXIT_API, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_PARTIAL, EXIT_INTERRUPTED = 1, 2, 3, 4, 130

stderr = Console(stderr=True)
stdout = Console()


def default_url() -> str:
    """The local stack: http://127.0.0.1:$HUB_PORT (8080)."""
    return f"http://127.0.0.1:{os.environ.get('HUB_PORT', '8080')}"


def admin_key(data_dir: str | None = None) -> str | None:
    """HUB_ADMIN_API_KEY, else the key `collections-hub up` generated in `<data dir>/secrets.json`."""
    if key := os.environ.get("HUB_ADMIN_API_KEY"):
        return key
    path = Path(data_dir or os.environ.get("HUB_DATA_DIR", ".hub-data")) / "secrets.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    key = stored.get("admin_api_key") if isinstance(stored, dict) else None
    return key if isinstance(key, str) else None


def fail(message: str, code: int) -> NoReturn:
    """Print one line and exit with `code`."""
    stderr.print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)
    sys.exit(code)


@contextmanager
def friendly_errors(url: str, interrupted: str = "interrupted") -> Iterator[None]:
    """Turn the client's exceptions into one line and an exit code; Ctrl-C prints `interrupted`, which
    says what a rerun would do where the command knows it."""
    try:
        yield
    except HubConnectionError as exc:
        fail(f"cannot reach {url}: {exc.message.removeprefix('cannot reach the hub: ')}", EXIT_UNREACHABLE)
    except ApiError as exc:
        hint = {401: " (check the API key)", 404: " (not found, or not visible to this key)"}
        fail(f"{url} answered {exc.message}{hint.get(exc.status or 0, '')}", EXIT_API)
    except (ArchiveError, JournalError) as exc:
        fail(str(exc), EXIT_USAGE)
    except InvalidInput as exc:  # the hub's request models refused an input before it was sent
        fail(exc.message, EXIT_USAGE)
    except KeyboardInterrupt:
        fail(interrupted, EXIT_INTERRUPTED)


class RateColumn(ProgressColumn):
    """Items a second, from rich's own speed estimate."""

    def render(self, task: Task) -> Text:
        """`12.3/s`, or nothing before there is an estimate."""
        return Text(f"{task.speed:,.1f}/s" if task.speed else "", style="progress.data.speed")


@contextmanager
def progress_bars(enabled: bool) -> Iterator[Progress]:
    """Bars on stderr (so `--json` on stdout stays clean)."""
    columns = (
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr, disable=not enabled, transient=False) as bars:
        yield bars


def emit(report: Any, as_json: bool, title: str, rows: Callable[[Any], list[tuple[str, str]]]) -> None:
    """The summary: a two-column table, or the whole report as JSON."""
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report), indent=2, sort_keys=True))
        return
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows(report):
        table.add_row(name, value)
    stdout.print(table)
    for warning in getattr(report, "warnings", []):
        stderr.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
