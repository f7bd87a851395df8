"""A bounded load test of ``sagemaker-training serve`` on loopback.

    python benchmarks/serve_load.py [--connections 100] [--requests 1000] [--check]

Starts a serve (its own state dir, the embedded S3), creates one tiny job so
that the answers are not empty, then opens ``--connections`` keep-alive
connections at once (a barrier releases them together) and sends
``--requests`` SigV4-signed requests over them in all, alternating
ListTrainingJobs and DescribeTrainingJob (the SDKs' polling calls). Each
request is signed once before the clock starts, so the client's own cost is
a socket write and read. Prints, as JSON: p50 / p99 / max latency, requests
per second, every status that is not 200, and the server's RSS before and
after (psutil). Stops by itself (each connection has a 60 s socket timeout);
``--check`` exits 1 when a request failed or got a non-200 answer, or when
RSS grew by more than 50 MiB.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from serve_helpers import Server, job_request, put_code, wait_for  # noqa: E402

BUCKET = "serve-load"
RSS_GROWTH_LIMIT = 50 * 1024 * 1024


def signed(server: Server, operation: str, body: dict) -> tuple[bytes, dict]:
    from botocore.auth import SigV4Auth  # noqa: PLC0415
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415
    from botocore.credentials import Credentials  # noqa: PLC0415

    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=server.url + "/", data=data, headers={
        "X-Amz-Target": f"SageMaker.{operation}", "Content-Type": "application/x-amz-json-1.1"})
    credentials = Credentials(server.environ.get("AWS_ACCESS_KEY_ID", "test"),
                              server.environ.get("AWS_SECRET_ACCESS_KEY", "test"))
    SigV4Auth(credentials, "sagemaker", server.environ["AWS_DEFAULT_REGION"]).add_auth(request)
    return data, dict(request.headers.items())


def load(server: Server, connections: int, requests: int) -> dict:
    prepared = [signed(server, "ListTrainingJobs", {"MaxResults": 10}),
                signed(server, "DescribeTrainingJob", {"TrainingJobName": "load-job"})]
    parts = urllib.parse.urlsplit(server.url)
    per_connection = [requests // connections + (1 if i < requests % connections else 0) for i in range(connections)]
    latencies: list[float] = []
    statuses: collections.Counter = collections.Counter()
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(connections + 1)

    def client(count: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        mine, seen = [], collections.Counter()
        try:
            connection.connect()
            barrier.wait()
            for index in range(count):
                data, headers = prepared[index % 2]
                started = time.perf_counter()
                connection.request("POST", "/", body=data, headers=headers)
                response = connection.getresponse()
                response.read()
                mine.append(time.perf_counter() - started)
                seen[response.status] += 1
        except (OSError, http.client.HTTPException, threading.BrokenBarrierError) as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
            barrier.abort()
        finally:
            connection.close()
            with lock:
                latencies.extend(mine)
                statuses.update(seen)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in per_connection]
    for thread in threads:
        thread.start()
    try:
        barrier.wait(timeout=60)
    except threading.BrokenBarrierError:
        pass
    started = time.perf_counter()
    for thread in threads:
        thread.join(120)
    elapsed = time.perf_counter() - started
    latencies.sort()

    def quantile(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2) if latencies else -1

    return {"connections": connections, "requests": requests, "answered": len(latencies),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "errors": errors[:5],
            "error_count": len(errors), "p50_ms": quantile(0.50), "p99_ms": quantile(0.99),
            "max_ms": round(latencies[-1] * 1000, 2) if latencies else -1,
            "mean_ms": round(statistics.mean(latencies) * 1000, 2) if latencies else -1,
            "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="serve-load-") as work:
        server = Server(os.path.join(work, "state"), "--bucket", BUCKET).start()
        try:
            sm = server.client("sagemaker")
            sm.create_training_job(**job_request("load-job", BUCKET, put_code(server.client("s3"), BUCKET),
                                                 env={"STEPS": "1"}))
            wait_for(sm, "load-job")
            process = psutil.Process(server.process.pid)
            rss_before = process.memory_info().rss
            result = load(server, args.connections, args.requests)
            rss_after = process.memory_info().rss
        finally:
            server.stop()
    result.update(rss_before_mib=round(rss_before / 2 ** 20, 1), rss_after_mib=round(rss_after / 2 ** 20, 1))
    print(json.dumps(result, indent=2))
    bad = (result["error_count"] or result["answered"] != args.requests or set(result["statuses"]) != {"200"}
           or rss_after - rss_before > RSS_GROWTH_LIMIT)
    return 1 if args.check and bad else 0


if __name__ == "__main__":
    sys.exit(main())
