"""Throughput of the MXNet mnist example on 1 host and on 2 hosts (dist_sync), and
what the supervisor adds to the time to the first batch.

    python benchmarks/mx_dist.py [--epochs 10] [--train-images 8000] [--repeats 5]

Every run goes through the real ``train`` program (LocalCluster hosts on this
machine, ps-lite over 127.0.0.1 for 2 hosts). Samples/s are measured inside
the workers from batch-end timestamps, within epochs (the evaluation between
epochs and the start-up are not counted). The example does not shard its
data, so on 2 hosts each worker goes through every sample and the job's
samples/s is the sum over its workers.

The added time to the first batch compares, from the moment the process is
launched to the end of the first batch: ``train`` (supervisor, then the
trainer child) against a plain ``python`` that imports the example and calls
``train()`` itself. Both import MXNet once; the medians of ``--repeats``
runs are compared. A script that prints numbers, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "mxnet", "mnist.py")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from mxnet_jobs import mnist_channels, mxnet_job  # noqa: E402

# Wraps the example: records (epoch, time) at every batch end, then saves what it saw.
TIMED_WORKER = textwrap.dedent("""
    import time
    IMPORTED = time.time()  # the user module starts importing: everything before is the launcher's

    import json, os
    import mxnet as mx
    import mnist

    _fit = mx.mod.Module.fit

    def train(output_data_dir, **kwargs):
        marks = []

        def timed_fit(self, *args, **options):
            callbacks = options.get("batch_end_callback") or []
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            options["batch_end_callback"] = [lambda param: marks.append((param.epoch, time.time()))] + callbacks
            return _fit(self, *args, **options)

        mx.mod.Module.fit = timed_fit
        model = mnist.train(**kwargs)
        with open(os.path.join(output_data_dir, "timing.json"), "w") as f:
            json.dump({"marks": marks, "imported": IMPORTED,
                       "num_workers": model._kvstore.num_workers if model._kvstore else 1}, f)
        return model
""")

# The baseline: the same worker called in-process by a plain python, no supervisor.
DIRECT = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from sagemaker_training.environment import Environment
    from sagemaker_training.frameworks.mxnet.trainer import available_arguments
    import worker
    worker.train(**available_arguments(Environment(sys.argv[2], {})))
""")


def samples_per_second(marks, batch_size: int) -> float:
    by_epoch: dict[int, list] = {}
    for epoch, at in marks:
        by_epoch.setdefault(epoch, []).append(at)
    batches = sum(len(times) - 1 for times in by_epoch.values())
    seconds = sum(max(times) - min(times) for times in by_epoch.values())
    return batches * batch_size / seconds


def timings(job) -> list:
    result = []
    for host in job.hosts:
        with open(os.path.join(job.base_dir(host), "output", "data", "timing.json")) as f:
            result.append(json.load(f))
    return result


def throughput(work_dir: str, hosts: int, channels: dict, hyperparameters: dict) -> tuple[float, list, int]:
    job = mxnet_job(work_dir, "worker.py", sources={"worker.py": TIMED_WORKER}, files=[EXAMPLE], hosts=hosts,
                    channels=channels, hyperparameters=hyperparameters)
    with open(os.devnull, "w") as quiet:
        result = job.run(max_run=600, out=quiet, err=quiet)
    if not result.ok:
        raise SystemExit(f"{hosts}-host run failed: {result.failure_reason}")
    seen = timings(job)
    rates = [samples_per_second(s["marks"], hyperparameters["batch_size"]) for s in seen]
    return sum(rates), rates, seen[0]["num_workers"]


def first_batch_seconds(work_dir: str, channels: dict, hyperparameters: dict, supervised: bool) -> tuple:
    """(launch to the end of the first batch, launch to the import of the user module)."""
    job = mxnet_job(work_dir, "worker.py", sources={"worker.py": TIMED_WORKER}, files=[EXAMPLE], hosts=1,
                    channels=channels, hyperparameters=hyperparameters)
    base = job.base_dir("algo-1")
    environ = job.host_environ("algo-1", base_port=0)
    if supervised:
        argv = [sys.executable, "-m", "sagemaker_training.train"]  # the `train` entrypoint
    else:
        os.makedirs(os.path.join(base, "output", "data"), exist_ok=True)
        argv = [sys.executable, "-c", DIRECT, os.path.join(base, "code"), base]
    launched = time.time()
    subprocess.run(argv, env=environ, cwd=base, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(base, "output", "data", "timing.json")) as f:
        seen = json.load(f)
    return seen["marks"][0][1] - launched, seen["imported"] - launched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--train-images", type=int, default=8000)
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="mx-dist-bench-")
    try:
        channels = mnist_channels(os.path.join(work, "data"), args.train_images, args.test_images)
        hps = {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": 0.1}
        one, _, _ = throughput(os.path.join(work, "one"), 1, channels, hps)
        two, per_worker, workers = throughput(os.path.join(work, "two"), 2, channels, hps)

        quick = {**hps, "epochs": 1}
        direct, supervised = [], []
        for i in range(args.repeats):
            direct.append(first_batch_seconds(os.path.join(work, f"direct{i}"), channels, quick, False))
            supervised.append(first_batch_seconds(os.path.join(work, f"train{i}"), channels, quick, True))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"mnist example (MLP 128-64-10), {args.train_images} images x {args.epochs} epochs, "
          f"batch {args.batch_size}, {os.cpu_count()} CPUs")
    rows = [("1 host (kvstore local)", one, ""),
            (f"2 hosts (dist_sync, {workers} workers)", two,
             f"  (per worker: {', '.join(f'{r:.0f}' for r in per_worker)})")]
    for label, rate, note in rows:
        print(f"{label + ':':34} {rate:8.0f} samples/s{note}")
    print(f"{'ratio 2 hosts / 1 host:':34} {two / one:8.2f}")
    d, s = (statistics.median(t for t, _ in runs) for runs in (direct, supervised))
    print(f"time to first batch: python calling train() {d:.2f}s, through `train` {s:.2f}s "
          f"(medians of {args.repeats}); supervisor adds {s - d:+.2f}s")
    di, si = (statistics.median(imported for _, imported in runs) for runs in (direct, supervised))
    print(f"launch to the user module's import: {di:.2f}s direct, {si:.2f}s through `train`; "
          f"supervisor adds {si - di:+.2f}s")
    print(f"  runs: direct {' '.join(f'{t:.2f}' for t, _ in direct)}; "
          f"train {' '.join(f'{t:.2f}' for t, _ in supervised)}")


if __name__ == "__main__":
    main()
