"""``sagemaker-training serve`` across a SIGKILL and a restart, and under a full queue."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import time

import psutil

from serve_helpers import Server, job_request, put_code, stream_messages, wait_for

BUCKET = "serve-restart"
GROUP = "/aws/sagemaker/TrainingJobs"


def _gone(pids: list[int], timeout: float = 30) -> list[int]:
    """The pids of ``pids`` still alive (not zombies) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def test_sigkill_mid_job_then_restart_keeps_records_and_fails_the_orphan(tmp_path):
    state = str(tmp_path / "state")
    first = Server(state, "--bucket", BUCKET, "--max-running", "2").start()
    try:
        sm, s3 = first.client("sagemaker"), first.client("s3")
        code = put_code(s3, BUCKET)
        sm.create_training_job(**job_request("survivor", BUCKET, code, Tags=[{"Key": "kept", "Value": "yes"}]))
        before = wait_for(sm, "survivor")
        assert before["TrainingJobStatus"] == "Completed", before.get("FailureReason")
        logged = stream_messages(first.client("logs"), f"survivor/algo-1-{_epoch(first, 'survivor')}")
        sm.create_training_job(**job_request("orphan", BUCKET, code, hosts=2, env={"STEPS": "100000"}))
        wait_for(sm, "orphan", statuses=("InProgress",), secondary="Training")
        deadline = time.monotonic() + 120
        while "step 3 loss=0.2500" not in _messages(first, "orphan", "algo-2"):  # the script is training
            assert time.monotonic() < deadline, "the orphan's script never logged"
            time.sleep(0.3)
        descendants = first.descendants()
        assert len(descendants) >= 5  # S3, the job's process, two hosts and their scripts
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    finally:
        first.stop()
    assert _gone(descendants) == [], "processes left after the server was killed"

    second = Server(state, "--max-running", "2").start()
    try:
        sm, s3, logs = second.client("sagemaker"), second.client("s3"), second.client("logs")
        after = sm.describe_training_job(TrainingJobName="survivor")
        for field in ("TrainingJobStatus", "SecondaryStatusTransitions", "ModelArtifacts", "HyperParameters",
                      "TrainingStartTime", "TrainingEndTime", "CreationTime", "TrainingTimeInSeconds"):
            assert after[field] == before[field], field
        bucket, key = after["ModelArtifacts"]["S3ModelArtifacts"][len("s3://"):].split("/", 1)
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0  # the embedded S3 kept it
        assert stream_messages(logs, f"survivor/algo-1-{_epoch(second, 'survivor')}") == logged
        assert sm.list_tags(ResourceArn=after["TrainingJobArn"])["Tags"] == [{"Key": "kept", "Value": "yes"}]

        orphan = sm.describe_training_job(TrainingJobName="orphan")
        assert (orphan["TrainingJobStatus"], orphan["SecondaryStatus"]) == ("Failed", "Failed")
        assert orphan["FailureReason"].startswith(
            "PlatformError: sagemaker-training serve stopped while this job was running (the server was killed "
            "or restarted)")
        assert [t["Status"] for t in orphan["SecondaryStatusTransitions"]][-2:] == ["Training", "Failed"]
        assert "step 3 loss=0.2500" in _messages(second, "orphan", "algo-2")
        names = [s["TrainingJobName"] for s in sm.list_training_jobs()["TrainingJobSummaries"]]
        assert names == ["orphan", "survivor"]
        assert "1 job(s) were running when the server stopped and are now Failed: orphan" in second.log()
    finally:
        assert second.stop() == 0


def _messages(server, job: str, host: str) -> list[str]:
    streams = server.client("logs").describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{job}/{host}-")
    names = [s["logStreamName"] for s in streams["logStreams"]]
    return stream_messages(server.client("logs"), names[0]) if names else []


def _epoch(server, job: str) -> str:
    streams = server.client("logs").describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{job}/algo-1-")
    return streams["logStreams"][0]["logStreamName"].rsplit("-", 1)[1]


def test_twenty_jobs_at_once_with_max_running_2(tmp_path):
    server = Server(str(tmp_path / "state"), "--bucket", BUCKET, "--max-running", "2").start()
    try:
        sm = server.client("sagemaker")
        code = put_code(server.client("s3"), BUCKET)
        names = [f"queued-{i:02d}" for i in range(20)]
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            arns = list(pool.map(lambda n: sm.create_training_job(**job_request(n, BUCKET, code, env={"STEPS": "1"})),
                                 names))
        assert len(arns) == 20
        waiting = [sm.describe_training_job(TrainingJobName=n) for n in names]
        queued = [w for w in waiting if w["SecondaryStatus"] == "Starting"
                  and w["SecondaryStatusTransitions"][0]["StatusMessage"].startswith("Waiting for one of 2 job slots")]
        assert len(queued) >= 10  # most of them had to wait, visibly
        answers = [wait_for(sm, n, timeout=900) for n in names]
        assert [a["TrainingJobStatus"] for a in answers] == ["Completed"] * 20
        spans = []
        for answer in answers:
            moments = {t["Status"]: t for t in answer["SecondaryStatusTransitions"]}
            spans.append((moments["Downloading"]["StartTime"], moments["Completed"]["StartTime"]))
        # in order: the server hands each job its directory as it launches it
        launched = sorted(names, key=lambda n: os.stat(os.path.join(server.state_dir, "jobs", n, "request.json"))
                          .st_mtime_ns)
        created = [a["TrainingJobName"] for a in sorted(answers, key=lambda a: a["CreationTime"])]
        assert launched == created
        most = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
        assert most <= 2, f"{most} jobs ran at once"
        assert len(os.listdir(os.path.join(server.state_dir, "jobs"))) == 20  # one directory each
        listed = list(sm.get_paginator("list_training_jobs").paginate(PaginationConfig={"PageSize": 7}))
        assert sorted(s["TrainingJobName"] for p in listed for s in p["TrainingJobSummaries"]) == names
    finally:
        server.stop()


def test_sigterm_stops_the_running_jobs_and_the_server_cleanly(tmp_path):
    state = str(tmp_path / "state")
    server = Server(state, "--bucket", BUCKET, "--stop-grace", "3").start()
    sm = server.client("sagemaker")
    code = put_code(server.client("s3"), BUCKET)
    sm.create_training_job(**job_request("interrupted", BUCKET, code, env={"STEPS": "100000"}))
    wait_for(sm, "interrupted", statuses=("InProgress",), secondary="Training")
    descendants = server.descendants()
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 30
    assert _gone(descendants, timeout=5) == []
    again = Server(state).start()
    try:
        answer = again.client("sagemaker").describe_training_job(TrainingJobName="interrupted")
        assert (answer["TrainingJobStatus"], answer["SecondaryStatus"]) == ("Stopped", "Stopped"), answer.get("FailureReason")
        assert [t["Status"] for t in answer["SecondaryStatusTransitions"]][-2:] == ["Stopping", "Stopped"]
    finally:
        again.stop()


DAEMON_SCRIPT = """
    import os, subprocess, sys, time
    # a daemon of the user's: its own session (setsid), no parent of the job's (double fork)
    child = subprocess.Popen([sys.executable, "-c",
                              "import os, subprocess, sys, time; "
                              "p = subprocess.Popen(['sleep', '600'], start_new_session=True); "
                              "print(p.pid, flush=True)"],
                             stdout=subprocess.PIPE, text=True)
    print(f"daemon {child.stdout.readline().strip()}", flush=True)
    child.wait()
    time.sleep(600)
"""


def test_what_a_job_started_in_its_own_session_ends_after_a_sigkill_and_restart(tmp_path):
    state = str(tmp_path / "state")
    first = Server(state, "--bucket", BUCKET).start()
    try:
        sm = first.client("sagemaker")
        code = put_code(first.client("s3"), BUCKET, key="daemon/sourcedir.tar.gz", script=DAEMON_SCRIPT)
        sm.create_training_job(**job_request("daemon", BUCKET, code))
        deadline = time.monotonic() + 120
        while not [m for m in _messages(first, "daemon", "algo-1") if m.startswith("daemon ")]:
            assert time.monotonic() < deadline, "the job never started its daemon"
            time.sleep(0.3)
        daemon = int([m for m in _messages(first, "daemon", "algo-1") if m.startswith("daemon ")][0].split()[1])
        assert psutil.Process(daemon).cmdline() == ["sleep", "600"]
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    finally:
        first.stop()
    assert _gone([daemon], timeout=0) == [daemon]  # the kill alone leaves it running, outside every group
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)  # not the job's: it stays
    try:
        second = Server(state).start()
        try:
            assert _gone([daemon], timeout=30) == [], "the dead server's job left its daemon running"
            assert "ended 1 process(es) that the previous server's jobs left running" in second.log()
            assert stranger.poll() is None
            assert second.client("sagemaker").describe_training_job(TrainingJobName="daemon")["TrainingJobStatus"] \
                == "Failed"
        finally:
            second.stop()
    finally:
        stranger.kill()
        stranger.wait()
