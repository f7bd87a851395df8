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

from . import protocol

LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def stream_name(job: str, host: str, epoch: int) -> str:
    return f"{job}/{host}-{epoch}"


def _not_found(what: str) -> protocol.ApiError:
    return protocol.ApiError("ResourceNotFoundException", f"The specified log {what} does not exist.")


def _token(token: str | None, prefix: str) -> int | None:
    if token is None:
        return None
    kind, _, number = token.partition("/")
    if kind not in ("f", "b") or not number.isdigit():
        raise protocol.ApiError("InvalidParameterException", "The specified nextToken is invalid.")
    return int(number) if kind == prefix else None


class Logs:
    def __init__(self, store):
        self.store = store

    def call(self, operation: str, params: dict, region: str) -> dict:
        protocol.validate("logs", operation, params)
        handler = getattr(self, f"op_{operation}", None)
        if handler is None:
            raise protocol.ApiError("UnknownOperationException",
                                    f"sagemaker-training serve does not implement Logs.{operation}: it serves "
                                    "DescribeLogStreams and GetLogEvents of training jobs.")
        return handler(params)

    @staticmethod
    def _group(params: dict) -> None:
        if params.get("logGroupName", LOG_GROUP) != LOG_GROUP:
            raise _not_found("group")

    def op_DescribeLogStreams(self, params: dict) -> dict:  # noqa: N802 - AWS's names
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
                      "arn": f"arn:aws:logs:local:000000000000:log-group:{LOG_GROUP}:log-stream:{row['name']}",
                      "storedBytes": row["bytes"]}
            if row["first"] is not None:
                stream.update(firstEventTimestamp=row["first"], lastEventTimestamp=row["last"],
                              lastIngestionTime=row["ingested"])
            streams.append(stream)
        answer = {"logStreams": streams}
        if start + limit < len(rows):
            answer["nextToken"] = str(start + limit)
        return answer

    def op_GetLogEvents(self, params: dict) -> dict:  # noqa: N802
        self._group(params)
        name = params["logStreamName"]
        if not self.store.stream_exists(name):
            raise _not_found("stream")
        token = params.get("nextToken")
        after, before = _token(token, "f"), _token(token, "b")
        # a forward token reads forward, a backward one backward, none: startFromHead decides
        from_head = after is not None or (before is None and params.get("startFromHead", False))
        rows = self.store.events(name, after, before, params.get("startTime"), params.get("endTime"),
                                 params.get("limit", 10000), from_head)
        events = [{"timestamp": r["timestamp"], "message": r["message"], "ingestionTime": r["ingested"]}
                  for r in rows]
        if rows:
            forward, backward = f"f/{rows[-1]['id']}", f"b/{rows[0]['id']}"
        else:  # an empty page: the tokens stay where they were
            position = after if after is not None else (before if before is not None else 0)
            forward, backward = f"f/{after if after is not None else position}", f"b/{position}"
        return {"events": events, "nextForwardToken": forward, "nextBackwardToken": backward}
