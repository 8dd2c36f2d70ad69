"""Prints every table of a Baton SQLite store, rows sorted, as JSON: two snapshots
compare equal when nothing was stored or changed in between.

Left out, because they move on their own while nothing is asked of Baton: the
timers' lease, a launcher's last-seen time, the scheduler's own heartbeats and
SQLite's own bookkeeping. Usage: python3 snapshot.py BATON.DB"""

import json
import sqlite3
import sys

# Tables that change with time alone.
MOVING_TABLES = {"leases", "sqlite_sequence"}
# Keys of a launcher's JSON that its heartbeats move.
MOVING_LAUNCHER_KEYS = {"last_seen"}


def steady(table, name, value):
    if isinstance(value, bytes):
        return value.hex()
    if table == "launchers" and name == "data":
        data = json.loads(value)
        return {k: v for k, v in data.items() if k not in MOVING_LAUNCHER_KEYS}
    return value


def snapshot(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    out = {}
    for table in tables:
        if table in MOVING_TABLES:
            continue
        cursor = db.execute(f'SELECT * FROM "{table}"')
        names = [d[0] for d in cursor.description]
        rows = []
        for row in cursor:
            kept = {n: steady(table, n, v) for n, v in zip(names, row)}
            if table == "heartbeats" and json.loads(kept.get("data") or "{}").get("source") == "scheduler":
                continue
            rows.append(json.dumps(kept, sort_keys=True))
        out[table] = sorted(rows)
    return out


if __name__ == "__main__":
    json.dump(snapshot(sys.argv[1]), sys.stdout, indent=1, sort_keys=True)
