"""Baton's own checks for schemathesis, loaded through SCHEMATHESIS_HOOKS.

- `errors_have_a_code`: every 4xx of the API (`/api/…`, `/mcp`) is JSON of the shape
  {"error": {"code", "message"}}.
- `refused_changes_nothing`: with BATON_DB set (the coordinator's SQLite file), a
  request answered 4xx leaves every table as it was (see snapshot.py for what is left
  out), compared with a snapshot taken just before it was sent."""

import json
import os
import sys
import time

import schemathesis

sys.path.insert(0, os.path.dirname(__file__))
from snapshot import snapshot  # noqa: E402

DB = os.environ.get("BATON_DB")
_before = {}


def _settled():
    """The store once it stops moving: an accepted request (a stop, say) may
    finish its work after its answer. Waits up to 5 s."""
    last = snapshot(DB)
    for _ in range(50):
        time.sleep(0.1)
        now = snapshot(DB)
        if now == last:
            return now
        last = now
    return last


@schemathesis.hook
def before_call(context, case, kwargs):
    if DB:
        _before["snapshot"] = _settled() if _before.pop("accepted", False) else snapshot(DB)


@schemathesis.check
def errors_have_a_code(ctx, response, case):
    path = case.operation.path
    if not (400 <= response.status_code < 500) or not (path.startswith("/api/") or path == "/mcp"):
        return
    try:
        error = json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(f"a {response.status_code} that is not the error shape: {response.content[:200]!r}")
    if not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str):
        raise AssertionError(f"an error without a code and a message: {error!r}")


@schemathesis.check
def refused_changes_nothing(ctx, response, case):
    if DB and response.status_code < 400 and case.method.upper() != "GET":
        _before["accepted"] = True
    if not DB or not (400 <= response.status_code < 500) or "snapshot" not in _before:
        return
    before, after = _before["snapshot"], snapshot(DB)
    changed = sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))
    if changed:
        first = changed[0]
        added = sorted(set(after.get(first, [])) - set(before.get(first, [])))[:2]
        removed = sorted(set(before.get(first, [])) - set(after.get(first, [])))[:2]
        raise AssertionError(
            f"refused with {response.status_code}, yet the store changed: {', '.join(changed)}; "
            f"in {first}, added {added}, removed {removed}"
        )
