"""Results: each section's tables, notes and profiles, rendered to `latest.md` and `latest.json`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.profiling import Profile

PASS, MISS, SKIP = "PASS", "MISS", "not measured"


@dataclass
class Table:
    """One readable table: a title, column names and rows of cells."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        """Append a row."""
        self.rows.append(list(cells))


@dataclass
class Section:
    """One numbered part of the report."""

    number: int
    title: str
    summary: str = ""
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def table(self, title: str, columns: list[str]) -> Table:
        """A new table in this section."""
        table = Table(title, columns)
        self.tables.append(table)
        return table

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "number": self.number,
            "title": self.title,
            "summary": self.summary,
            "tables": [
                {"title": t.title, "columns": t.columns, "rows": [[_plain(c) for c in r] for r in t.rows]}
                for t in self.tables
            ],
            "notes": self.notes,
            "profiles": [p.as_dict() for p in self.profiles],
            "data": self.data,
        }


def verdict(ok: bool) -> str:
    """PASS or MISS."""
    return PASS if ok else MISS


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, or None when either is missing or the reference is 0."""
    if value is None or not reference:
        return None
    return value / reference


def fmt(value: Any, digits: int = 2) -> str:
    """A cell as text: floats rounded, None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    return value


def render_markdown(meta: dict[str, Any], sections: list[Section]) -> str:
    """The whole report as Markdown."""
    lines = [
        "# collections-hub benchmark results",
        "",
        f"Run {meta['started']} on {meta['machine']}; stack: {meta['stack']}. wrk {meta['wrk']}, "
        f"{meta['load']}. Whole run: {meta['elapsed_s']:.0f} s. Regenerate with `make bench` "
        "(see `bench/README.md`).",
        "",
        "Every figure stands beside its reference measured in the same run on the same machine: absolute "
        "numbers on a shared 2-core box drift between runs, ratios much less.",
        "",
    ]
    if meta.get("notes"):
        lines += [f"- {note}" for note in meta["notes"]] + [""]
    lines += ["## Verdicts", "", "| # | target | verdict |", "| --- | --- | --- |"]
    for section in sections:
        for target, result in section.data.get("verdicts", []):
            lines.append(f"| {section.number} | {fmt(target)} | {fmt(result)} |")
    lines.append("")
    for section in sections:
        lines += [f"## {section.number}. {section.title}", ""]
        if section.summary:
            lines += [section.summary, ""]
        for table in section.tables:
            lines += [f"**{table.title}**", ""]
            lines.append("| " + " | ".join(table.columns) + " |")
            lines.append("| " + " | ".join("---" for _ in table.columns) + " |")
            lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in table.rows]
            lines.append("")
        for note in section.notes:
            lines += [f"- {note}"]
        if section.notes:
            lines.append("")
        for profile in section.profiles:
            lines += [
                f"**Profile: {profile.process}** ({profile.samples} samples, py-spy; "
                f"collapsed stacks in `{profile.file}`)",
                "",
                "| self % | function | | inclusive % | function |",
                "| ---: | --- | --- | ---: | --- |",
            ]
            for index in range(max(len(profile.self_top), len(profile.inclusive_top))):
                left = profile.self_top[index] if index < len(profile.self_top) else ("", "")
                right = profile.inclusive_top[index] if index < len(profile.inclusive_top) else ("", "")
                lines.append(f"| {fmt(left[1])} | `{fmt(left[0])}` | | {fmt(right[1])} | `{fmt(right[0])}` |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write(results_dir: Path, meta: dict[str, Any], sections: list[Section]) -> tuple[Path, Path]:
    """Write `latest.md` and `latest.json`; return their paths."""
    results_dir.mkdir(parents=True, exist_ok=True)
    md = results_dir / "latest.md"
    js = results_dir / "latest.json"
    md.write_text(render_markdown(meta, sections))
    js.write_text(json.dumps({"meta": meta, "sections": [s.as_dict() for s in sections]}, indent=2) + "\n")
    return md, js
