"""A tuning job's rows in serve's store: ``tuning_jobs`` and ``tuning_trials``.

A trial row names one training job of a tuning job, its number, Optuna's
parameters and the hyperparameter strings the job got; it is written in the
same transaction as the training job's own row (``jobs``), so a server
killed at any moment never leaves a training job the tuning job does not
know, nor the reverse.
"""

from __future__ import annotations

import json
import sqlite3
import time

from ..store import TERMINAL

TUNING_TERMINAL = TERMINAL


class TuningJob:
    def __init__(self, row):
        self.seq = row["seq"]
        self.name = row["name"]
        self.arn = row["arn"]
        self.region = row["region"]
        self.request = json.loads(row["request"])
        self.status = row["status"]
        self.created = row["created"]
        self.modified = row["modified"]
        self.ended = row["ended"]
        self.failure = row["failure"]
        self.stop_requested = row["stop_requested"]

    @property
    def config(self) -> dict:
        return self.request["HyperParameterTuningJobConfig"]


class Trial:
    def __init__(self, row):
        self.tuning_job = row["tuning_job"]
        self.number = row["number"]
        self.training_job = row["training_job"]
        self.params = json.loads(row["params"])
        self.tuned = json.loads(row["tuned"])
        self.early_stopped = row["early_stopped"]  # 0, 1 (early-stopped) or 2 (interrupted: tuner.INTERRUPTED)


def add_tuning_job(store, name: str, arn: str, region: str, request: dict, tags: list) -> bool:
    try:
        with store.lock:
            now = time.time()
            store._write([  # noqa: SLF001 - the store's one transaction helper
                ("INSERT INTO tuning_jobs (name, arn, region, request, status, created, modified) "
                 "VALUES (?, ?, ?, ?, 'InProgress', ?, ?)", (name, arn, region, json.dumps(request), now, now)),
                ("INSERT OR REPLACE INTO tags (arn, key, value) VALUES (?, ?, ?)",
                 [(arn, t["Key"], t.get("Value", "")) for t in tags] or None),
            ])
    except sqlite3.IntegrityError:
        return False
    return True


def tuning_job(store, name: str) -> TuningJob | None:
    rows = store._rows("SELECT * FROM tuning_jobs WHERE name = ?", (name,))  # noqa: SLF001
    return TuningJob(rows[0]) if rows else None


def tuning_jobs(store, active_only: bool = False) -> list[TuningJob]:
    where = "WHERE status IN ('InProgress', 'Stopping') " if active_only else ""
    return [TuningJob(r) for r in store._rows(f"SELECT * FROM tuning_jobs {where}ORDER BY seq")]  # noqa: SLF001


def set_status(store, name: str, status: str, failure: str | None = None) -> None:
    now = time.time()
    ended = now if status in TUNING_TERMINAL else None
    store._write([("UPDATE tuning_jobs SET status = ?, modified = ?, ended = COALESCE(ended, ?), "  # noqa: SLF001
                   "failure = COALESCE(?, failure) WHERE name = ?", (status, now, ended, failure, name))])


def request_stop(store, name: str) -> None:
    now = time.time()
    store._write([("UPDATE tuning_jobs SET status = 'Stopping', stop_requested = ?, modified = ? "  # noqa: SLF001
                   "WHERE name = ? AND status = 'InProgress'", (now, now, name))])


def trials(store, tuning: str) -> list[Trial]:
    return [Trial(r) for r in store._rows(  # noqa: SLF001
        "SELECT * FROM tuning_trials WHERE tuning_job = ? ORDER BY number", (tuning,))]


def trial_of(store, training_job: str) -> Trial | None:
    rows = store._rows("SELECT * FROM tuning_trials WHERE training_job = ?", (training_job,))  # noqa: SLF001
    return Trial(rows[0]) if rows else None


def add_trial(store, tuning: str, number: int, params: dict, tuned: dict, job: tuple) -> None:
    """The trial and its training job (``(name, arn, region, request, state)``), in one transaction."""
    name, arn, region, request, state = job
    with store.lock:
        now = time.time()
        store._write([  # noqa: SLF001
            ("INSERT INTO jobs (name, arn, region, request, state, status, created, modified) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
             (name, arn, region, json.dumps(request), json.dumps(state), state["TrainingJobStatus"], now, now)),
            ("INSERT INTO tuning_trials (tuning_job, number, training_job, params, tuned) VALUES (?, ?, ?, ?, ?)",
             (tuning, number, name, json.dumps(params), json.dumps(tuned))),
        ])


def mark(store, training_job: str, how: int = 1) -> None:
    """The job is being stopped: early (1) or because serve is stopping (2)."""
    store._write([("UPDATE tuning_trials SET early_stopped = ? WHERE training_job = ?",  # noqa: SLF001
                   (how, training_job))])


def curve(store, training_job: str, metric: str, after_id: int = 0) -> tuple[list[float], int]:
    """The objective's values after row ``after_id``, in order (the intermediate values), as the
    job's own matcher process read them from its log (serve/metrics.py: a user's regex never runs
    in the server), and the last row read."""
    rows = store.metric_values(training_job, metric, after_id)
    return [row["value"] for row in rows], (rows[-1]["id"] if rows else after_id)
