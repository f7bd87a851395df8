"""``sagemaker-training serve`` under hostile input: every body, connection, log and regex bounded,
every malformed request a 4xx in AWS's shape. A real server on loopback, real sockets (raw ones
for what no client would send, signed with the server's printed credentials), real jobs."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from serve_helpers import server_fixture, Server, job_request, put_code, stream_messages, wait_for

BUCKET = "serve-bounds"
GROUP = "/aws/sagemaker/TrainingJobs"
MAX_EVENT_BYTES = 256 * 1024 - 26


server = server_fixture("serve-bounds", "--bucket", BUCKET, "--max-running", "2", "--stop-grace", "5")


@pytest.fixture(scope="module")
def clients(server):
    sm, s3, logs = server.client("sagemaker"), server.client("s3"), server.client("logs")
    code = put_code(s3, BUCKET)
    sm.create_training_job(**job_request("bounds-logs", BUCKET, code, env={"STEPS": "3"}))
    wait_for(sm, "bounds-logs")
    stream = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="bounds-logs/")["logStreams"][0]
    return sm, s3, logs, code, stream["logStreamName"]


# -- raw requests ----------------------------------------------------------------------------------
def _signed_headers(server, method: str, path: str, body: bytes, service: str, headers: dict) -> dict:
    """The headers of a request SigV4-signed with the credentials the server printed."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    environ = server.environ
    credentials = Credentials(environ.get("AWS_ACCESS_KEY_ID", "test"), environ.get("AWS_SECRET_ACCESS_KEY", "test"),
                              environ.get("AWS_SESSION_TOKEN"))
    request = AWSRequest(method=method, url=server.url + path, data=body, headers=headers)
    if service == "s3":
        request.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    SigV4Auth(credentials, service, environ["AWS_DEFAULT_REGION"]).add_auth(request)
    return dict(request.headers.items())


def _connect(server) -> socket.socket:
    parts = urllib.parse.urlsplit(server.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)  # a guard against a hang
    return sock


def _head(server, method: str, path: str, service: str, headers: dict, signed_body: bytes = b"") -> bytes:
    """A request's head: signed headers, then ``headers`` as given (they may be malformed)."""
    signed = _signed_headers(server, method, path, signed_body, service,
                             {k: v for k, v in headers.items() if k.lower() not in ("content-length",
                                                                                    "transfer-encoding")})
    signed.update(headers)
    host = urllib.parse.urlsplit(server.url).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in signed.items()
                                                              if k.lower() != "host")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_answer(sock) -> tuple[int, dict, bytes]:
    """One HTTP answer from the socket (or from a reader of it, for several answers in a row):
    status, headers (lowercase names), body."""
    reader = sock.makefile("rb") if isinstance(sock, socket.socket) else sock
    status_line = reader.readline()
    assert status_line, "the server closed the connection without an answer"
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = reader.readline().decode("latin-1").rstrip("\r\n")
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", 0)))
    return status, headers, body


def _json_target(operation: str) -> dict:
    service = "Logs_20140328" if operation in ("GetLogEvents", "DescribeLogStreams") else "SageMaker"
    return {"X-Amz-Target": f"{service}.{operation}", "Content-Type": "application/x-amz-json-1.1"}


def _post(server, operation: str, body, raw: bytes | None = None) -> tuple[int, dict]:  # noqa: D417
    """A signed JSON 1.1 request (``raw``: these bytes as its body); (status, decoded answer)."""
    data = raw if raw is not None else json.dumps(body).encode()
    service = "logs" if operation in ("GetLogEvents", "DescribeLogStreams") else "sagemaker"
    head = _head(server, "POST", "/", service, {**_json_target(operation), "Content-Length": str(len(data))}, data)
    with _connect(server) as sock:
        sock.sendall(head + data)
        status, _, answer = _read_answer(sock)
    return status, json.loads(answer)


# -- MetricDefinitions -----------------------------------------------------------------------------
EVIL_SCRIPT = """
    import os, time
    print("loss=0.5", flush=True)
    print("a" * 40 + "!", flush=True)
    print("waiting for the test", flush=True)
    for _ in range(1200):
        if os.path.exists(os.environ["RELEASE"]):
            break
        time.sleep(0.1)
"""


def test_a_catastrophic_metric_regex_stalls_nothing_but_its_own_job(clients, tmp_path):
    sm, s3, logs, _, _ = clients
    code = put_code(s3, BUCKET, "code/evil.tar.gz", EVIL_SCRIPT)
    release = tmp_path / "release"
    request = job_request("evil-regex", BUCKET, code, env={"RELEASE": str(release)})
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "loss", "Regex": r"loss=([0-9.]+)"}, {"Name": "m", "Regex": "(a+)+$"}]
    sm.create_training_job(**request)
    # the server reads the job's log while the regex runs (2^40 steps on the "a" line): in the
    # server's process it would hold the GIL, and this read would never come back
    wait_for(sm, "evil-regex", statuses=("InProgress",), secondary="Training")
    stream = None
    while stream is None:
        found = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="evil-regex/")["logStreams"]
        stream = found[0]["logStreamName"] if found else None
    while "waiting for the test" not in stream_messages(logs, stream):
        pass
    assert sm.describe_training_job(TrainingJobName="bounds-logs")["TrainingJobStatus"] == "Completed"
    assert sm.describe_training_job(TrainingJobName="evil-regex")["TrainingJobStatus"] == "InProgress"
    release.write_text("go")
    done = wait_for(sm, "evil-regex")
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    assert [(m["MetricName"], m["Value"]) for m in done["FinalMetricDataList"]] == [("loss", 0.5)]


def test_a_regex_python_cannot_read_is_refused_at_create(clients):
    sm, _, _, code, _ = clients
    request = job_request("bad-regex", BUCKET, code)
    request["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "m", "Regex": "loss=([0-9.]+"}]
    with pytest.raises(ClientError) as info:
        sm.create_training_job(**request)
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "metricDefinitions.1.member.regex" in error["Message"] and "missing )" in error["Message"]
    with pytest.raises(ClientError):
        sm.describe_training_job(TrainingJobName="bad-regex")


# -- the SDK's fit() -------------------------------------------------------------------------------
def test_the_first_describe_of_a_short_job_the_sdk_made_answers_its_end(server, clients):
    sm, _, _, code, _ = clients
    # the hyperparameters the SDK's framework estimators send (v1 and v2): JSON-encoded, the job's name among them
    request = job_request("fit-fast", BUCKET, code, env={"STEPS": "2"})
    request["HyperParameters"].update(sagemaker_job_name=json.dumps("fit-fast"), sagemaker_region='"us-east-1"',
                                      sagemaker_container_log_level="20")
    sm.create_training_job(**request)
    assert sm.describe_training_job(TrainingJobName="fit-fast")["TrainingJobStatus"] == "Completed"
    # a job another client made is described as it is, at once: here, still waiting for the test
    sm.create_training_job(**job_request("not-the-sdks", BUCKET, code, env={"STEPS": "100000"}))
    assert sm.describe_training_job(TrainingJobName="not-the-sdks")["TrainingJobStatus"] == "InProgress"
    wait_for(sm, "not-the-sdks", statuses=("InProgress",), secondary="Training")
    sm.stop_training_job(TrainingJobName="not-the-sdks")
    stopped = wait_for(sm, "not-the-sdks")
    assert stopped["TrainingJobStatus"] == "Stopped", stopped.get("FailureReason")


# -- logs ------------------------------------------------------------------------------------------
BIG_LINES_SCRIPT = """
    print("\\U0001F600" * 70000, flush=True)
    for i in range(12):
        print("ABCDEFGHIJKL"[i] * 100000, flush=True)
"""


def test_log_events_and_pages_keep_cloudwatchs_bounds_and_retention_reclaims_space(server, clients):
    sm, s3, logs, _, _ = clients
    code = put_code(s3, BUCKET, "code/big-lines.tar.gz", BIG_LINES_SCRIPT)
    sm.create_training_job(**job_request("big-lines", BUCKET, code))
    assert wait_for(sm, "big-lines")["TrainingJobStatus"] == "Completed"
    stream = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="big-lines/")["logStreams"][0]
    messages, pages, token = [], 0, None
    while True:
        page = logs.get_log_events(logGroupName=GROUP, logStreamName=stream["logStreamName"], startFromHead=True,
                                   **({"nextToken": token} if token else {}))
        if not page["events"]:
            break
        pages += 1
        sizes = [len(e["message"].encode()) for e in page["events"]]
        assert max(sizes) <= MAX_EVENT_BYTES
        assert sum(sizes) + 26 * len(sizes) <= 1024 * 1024
        messages.extend(e["message"] for e in page["events"])
        token = page["nextForwardToken"]
    text = "".join(messages)
    assert pages >= 2  # 1.5 MB of log: more than one answer
    assert "\U0001F600" * 70000 in text
    for i in range(12):
        assert "ABCDEFGHIJKL"[i] * 100000 in text
    # the newest page (no startFromHead) is within bounds too, and ends with the newest event
    tail = logs.get_log_events(logGroupName=GROUP, logStreamName=stream["logStreamName"])["events"]
    assert sum(len(e["message"].encode()) + 26 for e in tail) <= 1024 * 1024 and tail[-1]["message"] == messages[-1]

    # a day passes (the events are made two days older), and a retention of one day removes them
    database = os.path.join(server.state_dir, "serve.sqlite3")
    with sqlite3.connect(database, timeout=30) as db:
        db.execute("UPDATE log_events SET timestamp = timestamp - 2 * 86400000 WHERE stream = ?",
                   (stream["logStreamName"],))
    size_before = os.path.getsize(database) + os.path.getsize(database + "-wal")
    logs.put_retention_policy(logGroupName=GROUP, retentionInDays=1)
    assert logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"][0]["retentionInDays"] == 1
    assert logs.get_log_events(logGroupName=GROUP, logStreamName=stream["logStreamName"])["events"] == []
    assert any("loss=" in m for m in stream_messages(logs, clients[4]))  # another job's: kept
    size_after = os.path.getsize(database) + os.path.getsize(database + "-wal")
    assert size_before - size_after > 1024 * 1024
    logs.delete_retention_policy(logGroupName=GROUP)
    with pytest.raises(ClientError) as info:
        logs.put_retention_policy(logGroupName=GROUP, retentionInDays=2)
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"


def test_get_log_events_refuses_bad_tokens_and_takes_any_time(server, clients):
    stream = clients[4]
    for token in ("f/99999999999999999999", "f/\u00b2", "b/-1", "f/9223372036854775808"):
        status, answer = _post(server, "GetLogEvents", {"logGroupName": GROUP, "logStreamName": stream,
                                                         "nextToken": token})
        assert (status, answer["__type"]) == (400, "InvalidParameterException"), token
    for times in ({"startTime": 2 ** 63}, {"endTime": 2 ** 63 + 5}, {"startTime": 2 ** 64, "endTime": 2 ** 70}):
        status, answer = _post(server, "GetLogEvents", {"logGroupName": GROUP, "logStreamName": stream,
                                                         "startFromHead": True, **times})
        assert status == 200, answer
        assert bool(answer["events"]) == ("endTime" in times and "startTime" not in times), times


# -- malformed JSON requests -----------------------------------------------------------------------
def test_list_training_jobs_takes_every_timestamp_form_botocore_sends(server, clients):
    for form in (1700000000, "1700000000", "1700000000.5", "2023-11-14T22:13:20Z", "Tue, 14 Nov 2023 22:13:20 GMT"):
        status, answer = _post(server, "ListTrainingJobs", {"CreationTimeAfter": form, "MaxResults": 100})
        assert status == 200, (form, answer)
        assert "bounds-logs" in [s["TrainingJobName"] for s in answer["TrainingJobSummaries"]], form
    status, answer = _post(server, "ListTrainingJobs", {"CreationTimeAfter": 4102444800, "MaxResults": 100})
    assert status == 200 and answer["TrainingJobSummaries"] == []


def test_malformed_json_bodies_are_4xx_in_aws_shape(server, clients):
    deep = b'{"TrainingJobName": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    status, answer = _post(server, "DescribeTrainingJob", None, raw=deep)
    assert (status, answer["__type"]) == (400, "SerializationException")
    target = _json_target("DescribeTrainingJob")
    for length, expected in (("abc", 400), ("-5", 400), ("107374182400", 413), (str(3 * 1024 * 1024), 413)):
        with _connect(server) as sock:
            sock.sendall(_head(server, "POST", "/", "sagemaker", {**target, "Content-Length": length}))
            status, headers, body = _read_answer(sock)
            assert status == expected, (length, body)
            assert json.loads(body)["__type"] in ("ValidationException", "RequestEntityTooLarge")
            assert headers.get("connection") == "close"
            sock.shutdown(socket.SHUT_WR)  # this client sends no body: the server stops waiting for one
            assert sock.recv(1) == b""  # and closes cleanly after the answer
    # a client that sends the whole of a body over the limit reads the 413 (not a reset)
    with pytest.raises(ClientError) as info:
        server.client("sagemaker", validate=False).describe_training_job(TrainingJobName="x" * (3 * 1024 * 1024))
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert info.value.response["Error"]["Code"] == "RequestEntityTooLarge"


def test_a_chunked_json_body_is_read_as_one_request(server, clients):
    body = json.dumps({"TrainingJobName": "no-such-job"}).encode()
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])
    then = json.dumps({"MaxResults": 1}).encode()
    with _connect(server) as sock:
        sock.sendall(_head(server, "POST", "/", "sagemaker", {**_json_target("DescribeTrainingJob"),
                                                              "Transfer-Encoding": "chunked"}, body) + chunked
                     + _head(server, "POST", "/", "sagemaker", {**_json_target("ListTrainingJobs"),
                                                                "Content-Length": str(len(then))}, then) + then)
        reader = sock.makefile("rb")
        first = _read_answer(reader)
        second = _read_answer(reader)
    assert first[0] == 400 and json.loads(first[2]) == {"__type": "ValidationException",
                                                        "message": "Requested resource not found."}
    assert second[0] == 200 and len(json.loads(second[2])["TrainingJobSummaries"]) == 1


# -- S3 through the proxy --------------------------------------------------------------------------
def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_s3_bodies_stream_through_the_proxy(server, clients):
    s3 = clients[1]
    data = os.urandom(1024 * 1024) * 48
    peak = _peak_rss(server.process.pid)
    s3.put_object(Bucket=BUCKET, Key="big/streamed.bin", Body=data)
    assert s3.get_object(Bucket=BUCKET, Key="big/streamed.bin")["Body"].read() == data
    assert _peak_rss(server.process.pid) - peak < 16 * 1024 * 1024


def test_malformed_s3_framing_is_a_400_in_s3s_shape(server, clients):
    path = f"/{BUCKET}/framing.txt"
    cases = [({"Content-Length": "abc"}, b""), ({"Content-Length": "-1"}, b""),
             ({"Transfer-Encoding": "chunked"}, b"zz\r\nhello\r\n0\r\n\r\n"),
             ({"Transfer-Encoding": "chunked"}, b"5\r\nhelloXX0\r\n\r\n")]
    for headers, body in cases:
        with _connect(server) as sock:
            sock.sendall(_head(server, "PUT", path, "s3", headers) + body)
            status, answer_headers, answer = _read_answer(sock)
            assert status == 400, (headers, body, answer)
            assert answer.startswith(b"<?xml") and b"<Code>ValidationException</Code>" in answer
            assert sock.recv(1) == b""
    # a well-formed chunked PUT goes through
    with _connect(server) as sock:
        sock.sendall(_head(server, "PUT", path, "s3", {"Transfer-Encoding": "chunked"})
                     + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        assert _read_answer(sock)[0] == 200
    assert clients[1].get_object(Bucket=BUCKET, Key="framing.txt")["Body"].read() == b"hello world"
    assert "Traceback" not in server.log()


# -- connections -----------------------------------------------------------------------------------
def test_a_hundred_simultaneous_connections_are_all_answered(server, clients):
    # the kernel's own view of the listening socket: its backlog (ss's Send-Q) holds a burst of 100
    port = urllib.parse.urlsplit(server.url).port
    listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True)
    assert int(listening.stdout.split()[2]) >= 100, listening.stdout
    body = json.dumps({"MaxResults": 1}).encode()
    request = _head(server, "POST", "/", "sagemaker", {**_json_target("ListTrainingJobs"),
                                                       "Content-Length": str(len(body))}, body) + body
    sockets = [_connect(server) for _ in range(100)]
    try:
        for sock in sockets:
            sock.sendall(request)
        assert [_read_answer(sock)[0] for sock in sockets] == [200] * 100
    finally:
        for sock in sockets:
            sock.close()


def test_idle_connections_are_capped_and_closed(tmp_path):
    server = Server(str(tmp_path / "state"), "--max-connections", "4", "--read-timeout", "2").start()
    try:
        idle = [_connect(server) for _ in range(4)]
        with _connect(server) as extra:
            status, _, body = _read_answer(extra)
            assert status == 503 and json.loads(body)["__type"] == "ThrottlingException"
        for sock in idle:  # each is closed by the server once it has been silent for 2 s
            assert sock.recv(1) == b""
            sock.close()
        assert server.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    finally:
        server.stop()
    assert "Traceback" not in server.log()
