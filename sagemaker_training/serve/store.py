"""The server's memory: SQLite (the standard library's sqlite3, WAL) under the state dir.

Tables: ``jobs`` (the request as sent, the job's state as its process last
reported it, the queue order), ``log_events`` (every line of every host, in
order, per stream), ``log_streams``, ``metrics`` (the last value of each
MetricDefinitions metric; ``metric_values``: every value, in order, the tuner's
intermediate values), ``tags`` and ``settings`` (the log retention of
PutRetentionPolicy / ``--log-retention-days``: expired events are deleted and
their pages given back, the database being incremental-vacuum); ``tuning_jobs``
and ``tuning_trials`` (a tuning job and its training jobs' chosen values:
tuning/records.py). Every change is one transaction, so a server killed at any
moment leaves whole records; :meth:`Store.recover` then turns the jobs that
were running into Failed ones that say why.

One connection, shared by the server's threads under a lock: SQLite
serialises writers anyway, and the load is a few jobs' log lines.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time

from . import statedir

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    arn TEXT NOT NULL,
    region TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    started INTEGER NOT NULL DEFAULT 0,
    stop_requested REAL
);
CREATE TABLE IF NOT EXISTS log_streams (
    name TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    host TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS log_streams_job ON log_streams (job);
CREATE TABLE IF NOT EXISTS log_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    ingested INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_events_stream ON log_events (stream, id);
CREATE TABLE IF NOT EXISTS metrics (
    job TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    timestamp REAL NOT NULL,
    PRIMARY KEY (job, name)
);
CREATE TABLE IF NOT EXISTS metric_values (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    timestamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_values_job ON metric_values (job, name, id);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    arn TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (arn, key)
);
CREATE TABLE IF NOT EXISTS tuning_jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    arn TEXT NOT NULL,
    region TEXT NOT NULL,
    request TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    ended REAL,
    failure TEXT,
    stop_requested REAL
);
CREATE TABLE IF NOT EXISTS tuning_trials (
    tuning_job TEXT NOT NULL,
    number INTEGER NOT NULL,
    training_job TEXT NOT NULL UNIQUE,
    params TEXT NOT NULL,
    tuned TEXT NOT NULL,
    early_stopped INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tuning_job, number)
);
"""

TERMINAL = ("Completed", "Failed", "Stopped")
ORPHANED_REASON = ("PlatformError: sagemaker-training serve stopped while this job was running (the server was "
                   "killed or restarted), and its hosts were stopped with it. Run the job again under a new name.")


class Job:
    """One row of ``jobs``, decoded."""

    def __init__(self, row: sqlite3.Row):
        self.seq = row["seq"]
        self.name = row["name"]
        self.arn = row["arn"]
        self.region = row["region"]
        self.request = json.loads(row["request"])
        self.state = json.loads(row["state"])
        self.status = row["status"]
        self.created = row["created"]
        self.modified = row["modified"]
        self.started = bool(row["started"])
        self.stop_requested = row["stop_requested"]


class Store:
    def __init__(self, state_dir: str):
        statedir.private_dir(state_dir)
        self.path = os.path.join(state_dir, "serve.sqlite3")
        for suffix in ("", "-wal", "-shm"):  # SQLite gives the -wal and -shm it makes the database's mode
            if suffix == "" or os.path.exists(self.path + suffix):
                statedir.private_file(self.path + suffix)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        # deleted log events give their pages back to the file (expire_events); an older file
        # switches over once, with a VACUUM
        self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        if self.db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            self.db.execute("VACUUM")

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def _write(self, statements) -> None:
        """Run ``(sql, args)`` pairs as one transaction."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    if args is None:  # an empty batch
                        continue
                    if isinstance(args, list):
                        self.db.executemany(sql, args)
                    else:
                        self.db.execute(sql, args)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def _rows(self, sql: str, args=()) -> list:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    # -- jobs -------------------------------------------------------------------
    def add_job(self, name: str, arn: str, region: str, request: dict, state: dict, tags: list) -> bool:
        """Insert a new job; False when the name, or its ARN (which lowercases the name), is taken
        (checked under the lock that serialises every write). Its CreationTime is taken under the
        lock, so creation order is queue order."""
        try:
            with self.lock:
                if self.has_arn(arn):
                    return False
                now = time.time()
                self._write([
                    ("INSERT INTO jobs (name, arn, region, request, state, status, created, modified) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (name, arn, region, json.dumps(request), json.dumps(state), state["TrainingJobStatus"], now,
                      now)),
                    ("INSERT OR REPLACE INTO tags (arn, key, value) VALUES (?, ?, ?)",
                     [(arn, t["Key"], t.get("Value", "")) for t in tags] or None),
                ])
        except sqlite3.IntegrityError:
            return False
        return True

    def has_arn(self, arn: str) -> bool:
        """Whether a training or tuning job of this server has ``arn`` (what tags may be put on)."""
        return bool(self._rows("SELECT 1 FROM jobs WHERE arn = ? UNION ALL SELECT 1 FROM tuning_jobs WHERE arn = ?",
                               (arn, arn)))

    def job(self, name: str) -> Job | None:
        rows = self._rows("SELECT * FROM jobs WHERE name = ?", (name,))
        return Job(rows[0]) if rows else None

    def jobs(self) -> list[Job]:
        return [Job(row) for row in self._rows("SELECT * FROM jobs ORDER BY seq")]

    def queued(self) -> list[Job]:
        """Jobs waiting for a slot, oldest first."""
        rows = self._rows("SELECT * FROM jobs WHERE started = 0 AND status = 'InProgress' AND "
                          "stop_requested IS NULL ORDER BY seq")
        return [Job(row) for row in rows]

    def set_state(self, name: str, state: dict, started: bool | None = None) -> None:
        sets, args = "state = ?, status = ?, modified = ?", [json.dumps(state), state["TrainingJobStatus"], time.time()]
        if started is not None:
            sets += ", started = ?"
            args.append(int(started))
        self._write([(f"UPDATE jobs SET {sets} WHERE name = ?", (*args, name))])

    def request_stop(self, name: str) -> None:
        self._write([("UPDATE jobs SET stop_requested = ?, modified = ? WHERE name = ? AND stop_requested IS NULL",
                      (time.time(), time.time(), name))])

    def recover(self, fail) -> list[str]:
        """Jobs that were running when the server died: ``fail(job)`` gives their
        new state (Failed, saying why). Returns their names."""
        names = []
        for job in self.jobs():
            if job.status not in TERMINAL and (job.started or job.stop_requested):
                self.set_state(job.name, fail(job))
                names.append(job.name)
        return names

    # -- logs -------------------------------------------------------------------
    def add_stream(self, name: str, job: str, host: str) -> None:
        self._write([("INSERT OR IGNORE INTO log_streams (name, job, host, created) VALUES (?, ?, ?, ?)",
                      (name, job, host, int(time.time() * 1000)))])

    def add_events(self, events: list[tuple[str, int, str]], metrics: list[tuple] = ()) -> None:
        """``(stream, timestamp ms, message)`` rows and ``(job, name, value, time)``
        metric values, in one transaction."""
        now = int(time.time() * 1000)
        self._write([
            ("INSERT INTO log_events (stream, timestamp, ingested, message) VALUES (?, ?, ?, ?)",
             [(stream, ts, now, message) for stream, ts, message in events] or None),
            ("INSERT OR REPLACE INTO metrics (job, name, value, timestamp) VALUES (?, ?, ?, ?)",
             list(metrics) or None),
            ("INSERT INTO metric_values (job, name, value, timestamp) VALUES (?, ?, ?, ?)",
             list(metrics) or None),
        ])

    def streams(self, job_prefix: str | None = None) -> list[sqlite3.Row]:
        """Every stream (whose name starts with the prefix), with its first and last event times."""
        sql = ("SELECT s.name, s.created, MIN(e.timestamp) AS first, MAX(e.timestamp) AS last, "
               "MAX(e.ingested) AS ingested, COALESCE(SUM(LENGTH(e.message)), 0) AS bytes "
               "FROM log_streams s LEFT JOIN log_events e ON e.stream = s.name ")
        args: tuple = ()
        if job_prefix:
            sql += "WHERE substr(s.name, 1, ?) = ? "
            args = (len(job_prefix), job_prefix)
        return self._rows(sql + "GROUP BY s.name ORDER BY s.name", args)

    def stream_exists(self, name: str) -> bool:
        return bool(self._rows("SELECT 1 FROM log_streams WHERE name = ?", (name,)))

    def events(self, stream: str, after_id: int | None, before_id: int | None, start: int | None,
               end: int | None, limit: int, from_head: bool) -> list[sqlite3.Row]:
        clauses, args = ["stream = ?"], [stream]
        for sql, value in (("id > ?", after_id), ("id < ?", before_id), ("timestamp >= ?", start),
                           ("timestamp < ?", end)):
            if value is not None:
                clauses.append(sql)
                args.append(value)
        order = "ASC" if from_head else "DESC"
        rows = self._rows(f"SELECT * FROM log_events WHERE {' AND '.join(clauses)} ORDER BY id {order} LIMIT ?",
                          (*args, limit))
        return rows if from_head else list(reversed(rows))

    # -- retention (PutRetentionPolicy, --log-retention-days) ------------------------------
    def set_retention(self, days: int | None) -> None:
        if days is None:
            self._write([("DELETE FROM settings WHERE name = 'retention_days'", ())])
        else:
            self._write([("INSERT OR REPLACE INTO settings (name, value) VALUES ('retention_days', ?)",
                          (str(days),))])

    def retention(self) -> int | None:
        rows = self._rows("SELECT value FROM settings WHERE name = 'retention_days'")
        return int(rows[0]["value"]) if rows else None

    def expire_events(self, now: float | None = None) -> int:
        """Delete the log events older than the retention, give their space back; how many went."""
        days = self.retention()
        if days is None:
            return 0
        cutoff = int(((now or time.time()) - days * 86400) * 1000)
        with self.lock:
            gone = self.db.execute("DELETE FROM log_events WHERE timestamp < ?", (cutoff,)).rowcount
            self.db.execute("DELETE FROM metric_values WHERE timestamp < ?", (cutoff / 1000,))
            if gone:
                self.db.executescript("PRAGMA incremental_vacuum;")  # (execute would free one page)
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return gone

    def stored_bytes(self) -> int:
        return self._rows("SELECT COALESCE(SUM(LENGTH(message)), 0) AS n FROM log_events")[0]["n"]

    def metrics(self, job: str) -> list[sqlite3.Row]:
        return self._rows("SELECT * FROM metrics WHERE job = ? ORDER BY name", (job,))

    def metric_values(self, job: str, name: str, after_id: int = 0) -> list[sqlite3.Row]:
        """Every value of a job's metric matched after row ``after_id``, in the order they were matched."""
        return self._rows("SELECT id, value FROM metric_values WHERE job = ? AND name = ? AND id > ? ORDER BY id",
                          (job, name, after_id))

    # -- tags -------------------------------------------------------------------
    def tags(self, arn: str) -> list[dict]:
        return [{"Key": r["key"], "Value": r["value"]}
                for r in self._rows("SELECT * FROM tags WHERE arn = ? ORDER BY key", (arn,))]

    def add_tags(self, arn: str, tags: list) -> None:
        self._write([("INSERT OR REPLACE INTO tags (arn, key, value) VALUES (?, ?, ?)",
                      [(arn, t["Key"], t.get("Value", "")) for t in tags])])

    def delete_tags(self, arn: str, keys: list) -> None:
        self._write([("DELETE FROM tags WHERE arn = ? AND key = ?", [(arn, k) for k in keys])])
