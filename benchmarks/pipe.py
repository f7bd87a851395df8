"""Pipe-mode throughput: MB/s through local mode's FIFO feeder against File mode, in the same run.

    python benchmarks/pipe.py [--mb 200] [--objects 20] [--s3] [--rounds 3]

The same objects (``--objects`` files, ``--mb`` MB in all, random bytes) are
read by a reader process that reads 1 MiB at a time and counts bytes, as a
training script's input pipeline would:

* **Pipe**: local mode's feeder (local/pipes.py) streams them into the FIFO
  ``training_0`` (and again, RecordIO-wrapped, into ``wrapped_0``), the reader
  reads the FIFO; the time is from the reader's open to its end of file;
* **File**: local mode's File-mode path: the objects copied into the channel
  dir (storage's ``fetch``, as local mode downloads them), then the reader
  reads the files; timed as download + read, and as read alone.

The source is a local path, or with ``--s3`` the same objects in moto's S3
server on loopback (``moto[server]``, in the test extra), so Pipe streams
them with GETs while File downloads them. Median of ``--rounds`` rounds,
interleaved.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sagemaker_training.local.pipes import Feed  # noqa: E402
from sagemaker_training.storage import transfer  # noqa: E402

READER = """
import os, sys, time
paths, total = sys.argv[1:], 0
start = time.monotonic()
for path in paths:
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(1 << 20):
            total += len(chunk)
print(total, time.monotonic() - start)
"""


def _read(paths) -> tuple[int, float]:
    out = subprocess.run([sys.executable, "-c", READER, *paths], capture_output=True, text=True, check=True)
    total, seconds = out.stdout.split()
    return int(total), float(seconds)


def _pipe(entries, client, data_dir: str, channel: str, wrap: bool) -> tuple[int, float]:
    feed = Feed(data_dir, channel, entries, lambda e: transfer.read_chunks(e, "us-east-1", client=client),
                recordio_wrap=wrap)
    feed.prepare()
    feed.start()
    try:
        return _read([feed.path(0)])
    finally:
        feed.stop()


def _file(entries, client, channel_dir: str) -> tuple[int, float, float]:
    shutil.rmtree(channel_dir, ignore_errors=True)
    start = time.monotonic()
    targets = [transfer.fetch(e, os.path.join(channel_dir, e.relative), "us-east-1", client=client) for e in entries]
    copied = time.monotonic() - start
    total, seconds = _read(targets)
    return total, copied + seconds, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--s3", action="store_true", help="serve the objects from moto's S3 server on loopback")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="pipe-bench-")
    server = None
    try:
        source = os.path.join(work, "objects")
        os.makedirs(source)
        size = args.mb * 1_000_000 // args.objects
        for i in range(args.objects):
            with open(os.path.join(source, f"part-{i:04d}.bin"), "wb") as f:
                f.write(os.urandom(size))
        client, location = None, source
        if args.s3:
            import logging

            import boto3
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                                  aws_access_key_id="bench", aws_secret_access_key="bench")
            client.create_bucket(Bucket="bench")
            for name in sorted(os.listdir(source)):
                client.upload_file(os.path.join(source, name), "bench", f"data/{name}")
            location = "s3://bench/data"
        entries = transfer.list_files(location, "us-east-1", client=client)
        data_dir = os.path.join(work, "input", "data")
        results = {"pipe": [], "pipe_recordio": [], "file_download_and_read": [], "file_read": []}
        total = 0
        for _ in range(args.rounds):
            total, seconds = _pipe(entries, client, data_dir, "training", False)
            results["pipe"].append(total / seconds / 1e6)
            wrapped, seconds = _pipe(entries, client, data_dir, "wrapped", True)
            results["pipe_recordio"].append(wrapped / seconds / 1e6)
            total, both, read = _file(entries, client, os.path.join(data_dir, "training"))
            results["file_download_and_read"].append(total / both / 1e6)
            results["file_read"].append(total / read / 1e6)
        medians = {name: statistics.median(values) for name, values in results.items()}
        print(f"{total / 1e6:.0f} MB in {args.objects} objects from {'moto S3' if args.s3 else 'a local path'}, "
              f"median of {args.rounds} rounds (MB/s):")
        for name, value in medians.items():
            print(f"  {name:24s} {value:8.1f}")
        print(f"pipe / file_download_and_read = {medians['pipe'] / medians['file_download_and_read']:.2f}; "
              f"pipe / file_read = {medians['pipe'] / medians['file_read']:.2f}")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
