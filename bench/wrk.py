"""Driving load with wrk: a generated Lua script per run, and the summary parsed from its output."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

# One Lua state per wrk thread: `setup` numbers the threads, `request` builds each request, so every
# request can carry a unique member id (a write that really changes something, every time).
LUA_TEMPLATE = """\
local paths = {paths}
local method = {method}
local headers = {headers}
local body_template = {body_template}
local run = {run}
local counter = 0
local thread_count = 0

local threads = {{}}
statuses = {{}}  -- a global: `done` reads each thread's with thread:get

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {{}}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses") or {{}}) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {{}}
  for status, n in pairs(total) do
    table.insert(parts, status .. "=" .. n)
  end
  table.sort(parts)
  io.write("Statuses: " .. table.concat(parts, " ") .. "\\n")
end

function request()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  local body = nil
  if body_template ~= nil then
    body = string.format(body_template, run, tid, counter)
  end
  return wrk.format(method, path, headers, body)
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class WrkResult:
    """What one wrk run measured."""

    url: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    statuses: dict[str, int] | None = None  # answers by status (from the script's `done`)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


def lua_string(value: str) -> str:
    """A Lua string literal (JSON escaping is valid Lua for the characters we use)."""
    return json.dumps(value)


def lua_script(method: str, paths: list[str], headers: dict[str, str], body_template: str | None) -> str:
    """A wrk script cycling through `paths`; `body_template` is formatted with (run, thread, counter)."""
    lua_paths = "{" + ", ".join(lua_string(p) for p in paths) + "}"
    lua_headers = "{" + ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()) + "}"
    return LUA_TEMPLATE.format(
        paths=lua_paths,
        method=lua_string(method),
        headers=lua_headers,
        body_template=lua_string(body_template) if body_template else "nil",
        run=lua_string(secrets.token_hex(4)),
    )


def parse_duration_ms(text: str) -> float:
    """`1.23ms` -> 1.23."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unparsable wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(url: str, output: str) -> WrkResult:
    """The figures of a `wrk --latency` run."""
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)[ \t]*$", output, re.M))
    total = re.search(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m)", output, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not (total and rps and "50" in percentiles and "99" in percentiles):
        raise RuntimeError(f"wrk output not understood:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    statuses = re.search(r"^Statuses: ?(.*)$", output, re.M)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        url=url,
        requests=int(total.group(1)),
        seconds=parse_duration_ms(total.group(2) + total.group(3)) / 1000,
        rps=float(rps.group(1)),
        p50_ms=parse_duration_ms(percentiles["50"]),
        p99_ms=parse_duration_ms(percentiles["99"]),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        statuses={k: int(n) for k, _, n in (p.partition("=") for p in statuses.group(1).split())}
        if statuses
        else None,
    )


@dataclass
class Load:
    """One wrk workload: where, what, and how hard."""

    base_url: str
    paths: list[str]
    method: str = "GET"
    headers: dict[str, str] | None = None
    body_template: str | None = None

    def run(self, seconds: float, threads: int, connections: int) -> WrkResult:
        """Run wrk for `seconds` and return its figures."""
        script = lua_script(self.method, self.paths, self.headers or {}, self.body_template)
        with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
            path = Path(tmp) / "load.lua"
            path.write_text(script)
            argv = [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "--latency",
                "-s",
                str(path),
                self.base_url,
            ]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        return parse(self.base_url + self.paths[0], done.stdout)
