"""What ``train`` costs a legacy TensorFlow job, and how fast a 2-host job ends.

    python benchmarks/tf_loop.py [--steps 20000] [--evaluation-steps 100] [--repeats 2] [--dist-steps 2000]

1. The iris example (DNNClassifier, the example's input functions and
   exporter) trained ``--steps`` steps twice over, alternately:

   * through the real ``train`` program (supervisor, then the trainer child);
   * by a plain ``tf.estimator.train_and_evaluate`` in this process, with the
     same Estimator, specs and exporter.

   Printed: steps/s of the training loop (``train_and_evaluate`` alone,
   timed inside the trainer child and here), and end to end, where ``train``
   is timed from launch to exit minus the time of ``import tensorflow`` alone
   (median of 3 fresh interpreters) and the in-process run from after its TensorFlow
   import to the end. The goal is a ratio >= 0.95. ``--repeats`` interleaved
   pairs: the best of each side, and the median of the pairs' ratios (on a
   shared 2-core machine single runs vary by 10-15 %).

2. A 2-host parameter-server run of the same example (LocalCluster on this
   machine): the time from the master's trainer process exiting to the last
   process of the job being gone (goal <= 5 s), polled every 20 ms.

A script that prints numbers, not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from tensorflow_jobs import IRIS_DATA, IRIS_EXAMPLE, tf_job  # noqa: E402

from sagemaker_training.frameworks.tensorflow import user_module  # noqa: E402

LOOP_LINE = re.compile(r"train_and_evaluate took ([0-9.]+)s \(([0-9.]+)s of CPU\)")


IMPORT_TIMER = ("import time; t = time.perf_counter(); import tensorflow, tensorflow_estimator; "
                "print(time.perf_counter() - t)")


def tf_import_seconds() -> float:
    """Median time of ``import tensorflow, tensorflow_estimator`` in a fresh interpreter
    (the import alone: neither the interpreter's start nor its teardown)."""
    times = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", IMPORT_TIMER], check=True, capture_output=True, text=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def through_train(work: str, steps: int, evaluation_steps: int) -> tuple[float, float, float]:
    """(train_and_evaluate seconds inside the child, wall seconds of ``train``, loop CPU seconds)."""
    shutil.rmtree(work, ignore_errors=True)
    job = tf_job(work, "iris_dnn_classifier.py", files=[IRIS_EXAMPLE], channels={"training": IRIS_DATA},
                 hyperparameters={"training_steps": steps, "evaluation_steps": evaluation_steps})
    base = job.base_dir("algo-1")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SAGEMAKER_", "TF_CONFIG"))}
    env.update({"SAGEMAKER_BASE_DIR": base, "SAGEMAKER_FRAMEWORK": "tensorflow"})
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sagemaker_training.train"], env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"train failed:\n{proc.stderr[-3000:]}")
    match = LOOP_LINE.search(proc.stderr)
    if not match:
        sys.exit("the trainer did not log its train_and_evaluate time")
    return float(match.group(1)), wall, float(match.group(2))


def in_process(tf, work: str, steps: int, evaluation_steps: int) -> tuple[float, float, float]:
    """(train_and_evaluate seconds, seconds from after the TF import to the end, loop CPU seconds)."""
    started = time.monotonic()
    shutil.rmtree(work, ignore_errors=True)
    example = user_module.load(IRIS_EXAMPLE)  # TensorFlow 1.x code, as the trainer child imports it
    hps = {"training_steps": steps, "evaluation_steps": evaluation_steps}
    run_config = tf.estimator.RunConfig(model_dir=os.path.join(work, "model"))
    estimator = example.estimator_fn(run_config, hps)
    exporter = tf.estimator.LatestExporter("Servo", lambda: example.serving_input_fn(hps))
    train_spec = tf.estimator.TrainSpec(lambda: example.train_input_fn(IRIS_DATA, hps), max_steps=steps)
    eval_spec = tf.estimator.EvalSpec(lambda: example.eval_input_fn(IRIS_DATA, hps), steps=evaluation_steps,
                                      exporters=[exporter])
    loop_started, cpu_started = time.monotonic(), time.process_time()
    tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec)
    ended = time.monotonic()
    return ended - loop_started, ended - started, time.process_time() - cpu_started


def two_hosts(work: str, steps: int) -> dict:
    """Seconds from the master trainer's exit to the last process of the job gone."""
    import psutil

    shutil.rmtree(work, ignore_errors=True)
    job = tf_job(work, "iris_dnn_classifier.py", files=[IRIS_EXAMPLE], hosts=2, channels={"training": IRIS_DATA},
                 hyperparameters={"training_steps": steps, "evaluation_steps": 10})
    job_dir = job.work_dir
    seen: dict = {}
    stop = threading.Event()

    def ours():
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                cmdline = " ".join(proc.info["cmdline"] or [])
                if "sagemaker_training" in cmdline and proc.environ().get("SAGEMAKER_BASE_DIR", "").startswith(job_dir):
                    if proc.status() != psutil.STATUS_ZOMBIE:
                        found.append((proc.pid, cmdline, proc.environ()["SAGEMAKER_BASE_DIR"]))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def poll():
        master = None
        while not stop.is_set():
            now = time.monotonic()
            live = ours()
            trainer = [p for p in live if "tensorflow.estimator" in p[1] and p[2] == job.base_dir("algo-1")]
            if trainer:
                master = trainer[0][0]
            elif master is not None and "master_exit" not in seen:
                seen["master_exit"] = now
            if live:
                seen["last_alive"] = now
            time.sleep(0.02)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    started = time.monotonic()
    result = job.run(max_run=300, out=open(os.devnull, "w"), err=open(os.devnull, "w"))
    returned = time.monotonic()
    time.sleep(0.2)
    stop.set()
    watcher.join()
    if not result.ok:
        sys.exit(f"2-host run failed: {result.failure_reason}")
    return {"wall": returned - started, "master_exit_to_last_gone": seen["last_alive"] - seen["master_exit"],
            "master_exit_to_run_returned": returned - seen["master_exit"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--evaluation-steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dist-steps", type=int, default=2000)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="tf-loop-")
    try:
        import_seconds = tf_import_seconds()
        import_started = time.monotonic()
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
        in_process_import = time.monotonic() - import_started
        train_runs, plain_runs = [], []
        for _ in range(args.repeats):  # interleaved, so that load from elsewhere hits both alike
            train_runs.append(through_train(os.path.join(work, "train"), args.steps, args.evaluation_steps))
            plain_runs.append(in_process(tf, os.path.join(work, "plain"), args.steps, args.evaluation_steps))
        n = args.steps
        loop_ratios = [p[0] / t[0] for t, p in zip(train_runs, plain_runs)]
        cpu_ratios = [p[2] / t[2] for t, p in zip(train_runs, plain_runs)]
        e2e_ratios = [p[1] / (t[1] - import_seconds) for t, p in zip(train_runs, plain_runs)]
        train_loop, train_wall = min(r[0] for r in train_runs), min(r[1] for r in train_runs)
        plain_loop, plain_total = min(r[0] for r in plain_runs), min(r[1] for r in plain_runs)
        train_e2e = train_wall - import_seconds
        print(f"iris DNNClassifier, {n} steps + {args.evaluation_steps} evaluation steps, {args.repeats} interleaved "
              f"pairs (best of each; ratio = plain time / train time, >1 means train was faster)")
        print(f"TensorFlow import: {import_seconds:.2f}s in a fresh interpreter ({in_process_import:.2f}s here)")
        print(f"training loop   train: {n / train_loop:8.1f} steps/s   plain: {n / plain_loop:8.1f} steps/s   "
              f"ratio {plain_loop / train_loop:.3f} (pairs: median {statistics.median(loop_ratios):.3f}, "
              f"{' '.join(f'{r:.2f}' for r in loop_ratios)})")
        print(f"training loop, CPU seconds (less sensitive to load from elsewhere): train "
              f"{min(r[2] for r in train_runs):.2f}s  plain {min(r[2] for r in plain_runs):.2f}s  ratio "
              f"{min(r[2] for r in plain_runs) / min(r[2] for r in train_runs):.3f} "
              f"(pairs: median {statistics.median(cpu_ratios):.3f})")
        print(f"end to end      train: {n / train_e2e:8.1f} steps/s   plain: {n / plain_total:8.1f} steps/s   "
              f"ratio {plain_total / train_e2e:.3f} (pairs: median {statistics.median(e2e_ratios):.3f})   "
              f"(train {train_wall:.2f}s wall - {import_seconds:.2f}s import; plain {plain_total:.2f}s after import)")
        dist = two_hosts(os.path.join(work, "dist"), args.dist_steps)
        print(f"2 hosts, {args.dist_steps} steps: {dist['wall']:.2f}s; master exit -> last process gone "
              f"{dist['master_exit_to_last_gone']:.2f}s (cluster.run returned after "
              f"{dist['master_exit_to_run_returned']:.2f}s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
