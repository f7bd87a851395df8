"""Pipe mode in local mode: real FIFOs fed from a real S3 endpoint (moto's server), real hosts
(``sagemaker-training local`` as a subprocess, every host's ``train`` a process tree), readers
that read every epoch, stop early, or never open their FIFO."""

from __future__ import annotations

import hashlib
import json
import os
import select
import textwrap

from local_jobs import explain, request, run_local, write_request
from test_local import SCRIPT_IMAGE, toolkit_hps

MAGIC = (0xCED7230A).to_bytes(4, "little")

# Reads every FIFO of the channels given in READ (name -> epochs), in order, each to its end; records
# what the host saw before reading, and each epoch's length and digest.
READER = """
    import hashlib, json, os, stat
    data = os.path.join(os.environ["SM_INPUT_DIR"], "data")
    seen = {"before": sorted(os.listdir(data)),
            "fifo": all(stat.S_ISFIFO(os.stat(os.path.join(data, n)).st_mode) for n in os.listdir(data)),
            "modes": {c: v["TrainingInputMode"] for c, v in json.load(open(os.path.join(
                os.environ["SM_INPUT_CONFIG_DIR"], "inputdataconfig.json"))).items()}}
    for channel, epochs in json.loads(os.environ["READ"]).items():
        for epoch in range(epochs):
            digest, size = hashlib.sha256(), 0
            with open(os.path.join(data, f"{channel}_{epoch}"), "rb") as f:
                while chunk := f.read(65536):
                    digest.update(chunk)
                    size += len(chunk)
            seen[f"{channel}_{epoch}"] = [size, digest.hexdigest()]
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w") as f:
        json.dump(seen, f)
"""


def _pipe_job(tmp_path, script: str, channels: dict, job: str, *, hosts: int = 1, read=None, mode="Pipe",
              **channel_fields) -> dict:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "train.py").write_text(textwrap.dedent(script))
    body = request(str(tmp_path / "out"), channels, job_name=job, image=SCRIPT_IMAGE, instance_count=hosts,
                   hyperparameters=toolkit_hps("train.py", str(code), job),
                   environment={"READ": json.dumps(read or {})})
    body["AlgorithmSpecification"]["TrainingInputMode"] = mode
    for entry in body["InputDataConfig"]:
        entry.update(channel_fields.get(entry["ChannelName"], {}))
    return body


def _run(tmp_path, body, timeout=120):
    work = tmp_path / "work"
    proc, description = run_local(["--request", write_request(tmp_path, body), "--framework", "script",
                                   "--work-dir", str(work)], timeout=timeout)
    return proc, description, work


def _seen(work, host: str) -> dict:
    with open(work / host / "model" / "seen.json", encoding="utf-8") as f:
        return json.load(f)


def _recordio(objects: list[bytes], tmp_path) -> bytes:
    """The objects as MXNet's own writer frames them, one record each."""
    import mxnet.recordio

    path = str(tmp_path / "expected.rec")
    writer = mxnet.recordio.MXRecordIO(path, "w")
    for data in objects:
        writer.write(data)
    writer.close()
    with open(path, "rb") as f:
        return f.read()


def _summary(data: bytes) -> list:
    return [len(data), hashlib.sha256(data).hexdigest()]


def test_two_hosts_sharded_two_epochs_raw_and_recordio(tmp_path, s3, s3_bucket):
    bucket = s3_bucket("pipe")
    objects = {  # key order: a, b, c, d, e; b holds the magic word (RecordIO cuts it), d is over a block (1 MiB)
        "data/a.bin": b"first object\n",
        "data/b.bin": b"abcd" + MAGIC + b"tail-of-b" + MAGIC,
        "data/c.bin": b"",
        "data/d.bin": os.urandom(3 << 19) + MAGIC + b"xy",
        "data/e.bin": b"e" * 4097,
    }
    for key, data in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    body = _pipe_job(tmp_path, READER, {"raw": f"s3://{bucket}/data", "wrapped": f"s3://{bucket}/data"},
                     "pipe-sharded", hosts=2, read={"raw": 2, "wrapped": 2},
                     raw={"InputMode": "Pipe"}, wrapped={"RecordWrapperType": "RecordIO"})
    for entry in body["InputDataConfig"]:
        entry["DataSource"]["S3DataSource"]["S3DataDistributionType"] = "ShardedByS3Key"
    proc, description, work = _run(tmp_path, body)
    assert proc.returncode == 0, explain(proc)
    assert description["TrainingJobStatus"] == "Completed"
    values = list(objects.values())
    shares = {"algo-1": values[0::2], "algo-2": values[1::2]}  # objects dealt in key order
    for host, share in shares.items():
        seen = _seen(work, host)
        assert seen["before"] == ["raw_0", "wrapped_0"] and seen["fifo"], seen
        assert seen["modes"] == {"raw": "Pipe", "wrapped": "Pipe"}
        for epoch in (0, 1):
            assert seen[f"raw_{epoch}"] == _summary(b"".join(share)), (host, epoch)
            assert seen[f"wrapped_{epoch}"] == _summary(_recordio(share, tmp_path)), (host, epoch)
    # the job's end removed every FIFO
    assert not [n for n in os.listdir(work / "algo-1" / "input" / "data") if n.startswith(("raw_", "wrapped_"))]


def test_a_reader_that_never_opens_or_stops_early_still_ends_the_job(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.bin").write_bytes(os.urandom(4 << 20))  # more than a FIFO holds: the feeder is mid-write
    (data / "small.bin").write_bytes(b"small")
    script = """
        import os, time
        data = os.path.join(os.environ["SM_INPUT_DIR"], "data")
        with open(os.path.join(data, "early_0"), "rb") as f:
            head = f.read(10)
        while not os.path.exists(os.path.join(data, "early_1")):  # made once the feeder sees the close,
            time.sleep(0.01)                                        # as a PipeModeDataset waits for it
        with open(os.path.join(data, "early_1"), "rb") as f:  # the next epoch comes whole
            size = len(f.read())
        print(f"read {len(head)} bytes of early_0, {size} of early_1; never opened idle_0", flush=True)
    """
    body = _pipe_job(tmp_path, script, {"early": str(data), "idle": str(data)}, "pipe-early")
    proc, description, work = _run(tmp_path, body, timeout=90)
    assert proc.returncode == 0, explain(proc)
    assert description["TrainingJobStatus"] == "Completed"
    assert f"read 10 bytes of early_0, {(4 << 20) + 5} of early_1; never opened idle_0" in proc.stderr
    assert "the reader closed early_0 after" in proc.stderr and "early_1 is next" in proc.stderr


def test_fastfile_runs_as_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.csv").write_text("1,2\n")
    script = """
        import os
        print("files:", sorted(os.listdir(os.environ["SM_CHANNEL_TRAINING"])), flush=True)
    """
    body = _pipe_job(tmp_path, script, {"training": str(data)}, "fastfile", mode="FastFile")
    proc, description, _ = _run(tmp_path, body, timeout=60)
    assert proc.returncode == 0, explain(proc)
    assert "files: ['x.csv']" in proc.stderr


def test_an_object_deleted_before_its_epoch_fails_the_job(tmp_path, s3, s3_bucket):
    bucket = s3_bucket("pipe-gone")
    s3.put_object(Bucket=bucket, Key="data/a.bin", Body=b"a")
    s3.put_object(Bucket=bucket, Key="data/b.bin", Body=b"b")
    script = """
        import os, boto3
        data = os.path.join(os.environ["SM_INPUT_DIR"], "data")
        with open(os.path.join(data, "training_0"), "rb") as f:
            print("epoch 0:", f.read(), flush=True)
        boto3.client("s3").delete_object(Bucket=os.environ["BUCKET"], Key="data/b.bin")
        with open(os.path.join(data, "training_1"), "rb") as f:
            print("epoch 1:", f.read(), flush=True)
    """
    body = _pipe_job(tmp_path, script, {"training": f"s3://{bucket}/data"}, "pipe-gone")
    body["Environment"]["BUCKET"] = bucket
    proc, description, _ = _run(tmp_path, body)
    assert description["TrainingJobStatus"] == "Failed", explain(proc)
    assert "epoch 0: b'ab'" in proc.stderr
    reason = description["FailureReason"]
    assert reason.startswith("ClientError: ") and f"s3://{bucket}/data/b.bin" in reason, reason
    assert "feeding Pipe-mode channel 'training', training_1 of algo-1" in reason, reason


def test_max_runtime_ends_a_job_whose_reader_holds_a_full_fifo(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.bin").write_bytes(os.urandom(4 << 20))
    script = """
        import os, threading
        with open(os.path.join(os.environ["SM_INPUT_DIR"], "data", "training_0"), "rb") as f:
            print(f"read {len(f.read(10))} bytes, holding the FIFO", flush=True)
            threading.Event().wait()
    """
    body = _pipe_job(tmp_path, script, {"training": str(data)}, "pipe-max-run")
    body["StoppingCondition"]["MaxRuntimeInSeconds"] = 3
    proc, description, work = _run(tmp_path, body, timeout=90)
    assert description["TrainingJobStatus"] == "Stopped", explain(proc)
    assert "read 10 bytes, holding the FIFO" in proc.stderr
    assert not [n for n in os.listdir(work / "algo-1" / "input" / "data") if n.startswith("training_")]


def test_requests_pipe_mode_cannot_serve_are_refused_before_anything_starts(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with open(data / "huge.bin", "wb") as f:  # sparse: one byte over RecordIO's 29-bit length
        f.truncate(1 << 29)
    body = _pipe_job(tmp_path, "print('never runs')", {"training": str(data)}, "pipe-huge",
                     training={"RecordWrapperType": "RecordIO"})
    proc, description, work = _run(tmp_path, body, timeout=60)
    assert proc.returncode == 2, explain(proc)
    assert (f"InputDataConfig[0].DataSource.S3DataSource.S3Uri: {data / 'huge.bin'} is 536870912 bytes; "
            "RecordWrapperType RecordIO wraps an object of at most 536870911 bytes") in proc.stderr
    assert not (work / "algo-1").exists()

    (data / "huge.bin").unlink()
    (data / "x.bin").write_bytes(b"x")
    body = _pipe_job(tmp_path, "print('never runs')", {"training": str(data)}, "pipe-prepare")
    proc, _ = run_local(["--request", write_request(tmp_path, body), "--framework", "script", "--prepare-only",
                         "--work-dir", str(tmp_path / "prepared")], timeout=60)
    assert proc.returncode == 2, explain(proc)
    assert "--prepare-only cannot deliver Pipe-mode channels (training)" in proc.stderr


# -- the feeder itself: the job's end releases it wherever it waits ------------------------------------


def _feed(tmp_path, size: int, on_error=None):
    from sagemaker_training.local.pipes import Feed
    from sagemaker_training.storage import transfer

    objects = tmp_path / "objects"
    objects.mkdir()
    (objects / "blob.bin").write_bytes(os.urandom(size))
    data = tmp_path / "data"
    feed = Feed(str(data), "training", transfer.list_files(str(objects)), transfer.read_chunks, on_error=on_error)
    feed.prepare()
    feed.start()
    return feed, data


def test_stop_releases_a_feeder_no_reader_ever_opened(tmp_path):
    feed, data = _feed(tmp_path, 10)
    feed.stop()
    assert not feed._thread.is_alive()
    assert os.listdir(data) == []


def test_stop_releases_a_feeder_whose_reader_holds_the_fifo_without_reading(tmp_path):
    feed, data = _feed(tmp_path, 4 << 20)  # the FIFO fills: the feeder waits for room
    with open(data / "training_0", "rb", buffering=0) as reader:
        assert len(reader.read(10)) == 10
        feed.stop()  # the reader still holds the FIFO: only the wake-up ends the wait
        assert not feed._thread.is_alive()
        rest = 0
        while chunk := reader.read(1 << 16):  # what was in the FIFO, then its end
            rest += len(chunk)
    assert 0 < rest < (4 << 20) - 10
    assert os.listdir(data) == []


def test_a_next_fifo_that_cannot_be_made_fails_the_feed_and_closes_its_write_end(tmp_path):
    """Something in the way of ``training_1`` (a file the script made there) fails the feed with the
    reason; the epoch's write end is closed all the same (its reader sees the end, no descriptor leaks)."""
    errors = []
    feed, data = _feed(tmp_path, 10, on_error=errors.append)
    (data / "training_1").write_bytes(b"in the way")
    with open(data / "training_0", "rb", buffering=0) as reader:
        assert len(reader.read(10)) == 10  # the whole epoch
        feed._thread.join(30)
        assert not feed._thread.is_alive()
        poller = select.poll()
        poller.register(reader, select.POLLIN)
        assert dict(poller.poll(10_000)).get(reader.fileno(), 0) & select.POLLHUP  # the write end is closed
        assert reader.read(1) == b""
    (reason,) = errors
    assert reason.startswith("PlatformError: FileExistsError") and "training_0 of algo-1" in reason, reason
    feed.stop()
