"""The CloudWatch Logs operations the SDKs read a job's output with (``Logs_20140328.*``).

One log group, ``/aws/sagemaker/TrainingJobs``, and a stream per host,
``<job>/algo-N-<epoch>``, as on the platform. What the SDKs' log loop needs
(measured): DescribeLogStreams returns a ``nextToken`` only when more
streams really exist (the SDKs loop on its presence without sending it
back); GetLogEvents honours ``nextToken``, takes ``startTime`` as inclusive,
gives events in ascending integer-millisecond order, and ends with an empty
page (the SDKs read until a page has no events).
"""

from __future__ import annotations

import re

from ..params import ACCOUNT
from . import protocol

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# CloudWatch's own bounds: an event's message is at most 256 KiB less 26 bytes of overhead, a
# GetLogEvents answer at most 1 MiB (counting 26 bytes per event) or 10,000 events
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD
MAX_PAGE_BYTES = 1024 * 1024
MAX_PAGE_EVENTS = 10000
_TOKEN = re.compile(r"([fb])/([0-9]{1,19})")
_LAST_ID = 2 ** 63 - 1
# PutRetentionPolicy's retentionInDays: the values CloudWatch accepts
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)


def split_message(message: str, limit: int = MAX_EVENT_BYTES) -> list[str]:
    """``message`` as events of at most ``limit`` bytes of UTF-8, cut between characters."""
    data = message.encode("utf-8", "replace")
    if len(data) <= limit:
        return [message]
    parts, start = [], 0
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # not inside a character
            end -= 1
        parts.append(data[start:end].decode("utf-8", "replace"))
        start = end
    return parts


def stream_name(job: str, host: str, epoch: int) -> str:
    return f"{job}/{host}-{epoch}"


def _not_found(what: str) -> protocol.ApiError:
    return protocol.ApiError("ResourceNotFoundException", f"The specified log {what} does not exist.")


def _token(token: str | None, prefix: str) -> int | None:
    if token is None:
        return None
    match = _TOKEN.fullmatch(token)
    if match is None or int(match.group(2)) > _LAST_ID:
        raise protocol.ApiError("InvalidParameterException", "The specified nextToken is invalid.")
    return int(match.group(2)) if match.group(1) == prefix else None


def _millis(value) -> int | None:
    """A startTime / endTime (ms since the epoch) clamped to what SQLite's integers hold."""
    return None if value is None else max(-_LAST_ID, min(int(value), _LAST_ID))


class Logs:
    def __init__(self, store):
        self.store = store

    def call(self, operation: str, params: dict, region: str, agent: str = "") -> dict:
        protocol.validate("logs", operation, params)
        handler = getattr(self, f"op_{operation}", None)
        if handler is None:
            raise protocol.ApiError("UnknownOperationException",
                                    f"sagemaker-training serve does not implement Logs.{operation}: it serves "
                                    "DescribeLogStreams and GetLogEvents of training jobs.")
        return handler(params, region)

    @staticmethod
    def _group(params: dict) -> None:
        if params.get("logGroupName", LOG_GROUP) != LOG_GROUP:
            raise _not_found("group")

    def op_PutRetentionPolicy(self, params: dict, region: str) -> dict:  # noqa: N802
        self._group(params)
        days = params["retentionInDays"]
        if days not in RETENTION_DAYS:
            raise protocol.ApiError("InvalidParameterException", f"retentionInDays {days} is not one of "
                                                                  f"{', '.join(map(str, RETENTION_DAYS))}")
        self.store.set_retention(days)
        self.store.expire_events()
        return {}

    def op_DeleteRetentionPolicy(self, params: dict, region: str) -> dict:  # noqa: N802
        self._group(params)
        self.store.set_retention(None)
        return {}

    def op_DescribeLogGroups(self, params: dict, region: str) -> dict:  # noqa: N802
        prefix = params.get("logGroupNamePrefix") or ""
        if not LOG_GROUP.startswith(prefix):
            return {"logGroups": []}
        group = {"logGroupName": LOG_GROUP, "arn": f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{LOG_GROUP}:*",
                 "storedBytes": self.store.stored_bytes()}
        days = self.store.retention()
        if days:
            group["retentionInDays"] = days
        return {"logGroups": [group]}

    def op_DescribeLogStreams(self, params: dict, region: str) -> dict:  # noqa: N802 - AWS's names
        self._group(params)
        rows = self.store.streams(params.get("logStreamNamePrefix"))
        if params.get("orderBy") == "LastEventTime":
            rows.sort(key=lambda r: r["last"] or 0)
        if params.get("descending"):
            rows.reverse()
        start = int(params["nextToken"]) if str(params.get("nextToken", "")).isdigit() else 0
        limit = params.get("limit", 50)
        streams = []
        for row in rows[start:start + limit]:
            stream = {"logStreamName": row["name"], "creationTime": row["created"],
                      "arn": f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{LOG_GROUP}:log-stream:{row['name']}",
                      "storedBytes": row["bytes"]}
            if row["first"] is not None:
                stream.update(firstEventTimestamp=row["first"], lastEventTimestamp=row["last"],
                              lastIngestionTime=row["ingested"])
            streams.append(stream)
        answer = {"logStreams": streams}
        if start + limit < len(rows):
            answer["nextToken"] = str(start + limit)
        return answer

    def op_GetLogEvents(self, params: dict, region: str) -> dict:  # noqa: N802
        self._group(params)
        name = params["logStreamName"]
        if not self.store.stream_exists(name):
            raise _not_found("stream")
        token = params.get("nextToken")
        after, before = _token(token, "f"), _token(token, "b")
        # a forward token reads forward, a backward one backward, none: startFromHead decides
        from_head = after is not None or (before is None and params.get("startFromHead", False))
        rows = self.store.events(name, after, before, _millis(params.get("startTime")),
                                 _millis(params.get("endTime")), min(params.get("limit", MAX_PAGE_EVENTS),
                                                                     MAX_PAGE_EVENTS), from_head)
        rows = _within_page(rows if from_head else rows[::-1])
        rows = rows if from_head else rows[::-1]
        events = [{"timestamp": r["timestamp"], "message": r["message"], "ingestionTime": r["ingested"]}
                  for r in rows]
        if rows:
            forward, backward = f"f/{rows[-1]['id']}", f"b/{rows[0]['id']}"
        else:  # an empty page: the tokens stay where they were
            position = after if after is not None else (before if before is not None else 0)
            forward, backward = f"f/{after if after is not None else position}", f"b/{position}"
        return {"events": events, "nextForwardToken": forward, "nextBackwardToken": backward}


def _within_page(rows: list) -> list:
    """The first rows (in reading order) whose messages, with CloudWatch's 26 bytes each,
    fit in one answer of MAX_PAGE_BYTES (at least one)."""
    total = 0
    for index, row in enumerate(rows):
        total += len(row["message"].encode("utf-8", "replace")) + EVENT_OVERHEAD
        if total > MAX_PAGE_BYTES and index:
            return rows[:index]
    return rows
