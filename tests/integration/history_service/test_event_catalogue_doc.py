"""docs/events.md stays in step with the event catalogue in shared/event_types.py."""

from __future__ import annotations

import re
from pathlib import Path

from shared.event_types import EVENT_TYPES

DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"


def test_every_event_type_has_a_row_with_its_history_name() -> None:
    """Each catalogued type has one row in docs/events.md naming its history event_type."""
    rows = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^\| `([a-z_.]+)` \|.*\| `([A-Z_]+)` \|$", DOC.read_text(), re.M)
    }
    assert rows == {event_type: name for event_type, (_, name) in EVENT_TYPES.items()}
