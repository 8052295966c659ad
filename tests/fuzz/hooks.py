"""Schemathesis hooks for the fuzz run (loaded through `SCHEMATHESIS_HOOKS=tests.fuzz.hooks`).

Random path values mostly name nothing (404). To reach the code behind the look-up, a positive case's
path parameters are swapped, two times in three, for values that exist on the stack: the fuzz user's
collection, namespace, project, asset, model, group... (`FUZZ_PATH_VALUES`, JSON: name -> values). The
choice is a hash of the generated value, so a failure replays the same way. Negative cases are left alone:
what they test is that a value the schema forbids is refused, and so are stateful steps.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import schemathesis
from schemathesis.generation import GenerationMode
from schemathesis.generation.meta import TestPhase

PATH_VALUES: dict[str, list[str]] = json.loads(os.environ.get("FUZZ_PATH_VALUES", "{}"))


def _pick(name: str, generated: Any) -> Any:
    """A real value for the parameter, or the generated one (a third of the time, or when none is known)."""
    known = PATH_VALUES.get(name)
    digest = int.from_bytes(hashlib.sha256(repr(generated).encode()).digest()[:4], "big")
    if not known or digest % 3 == 0:
        return generated
    return known[digest % len(known)]


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    """Swap a positive case's path parameters for existing values (see the module docstring)."""
    meta = case.meta
    if not case.path_parameters or meta is None or meta.phase.name is TestPhase.STATEFUL:
        return case  # stateful steps take their ids from earlier answers (links); leave them be
    modes = [meta.generation.mode, *(component.mode for component in meta.components.values())]
    if all(mode is GenerationMode.POSITIVE for mode in modes):
        case.path_parameters = {name: _pick(name, value) for name, value in case.path_parameters.items()}
    return case
