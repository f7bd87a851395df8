"""What ``sagemaker-training serve`` costs over ``sagemaker-training local``, and its queue.

    python benchmarks/serve.py [--rounds 3] [--jobs 20] [--max-running 2] [--check]

Measures, in one run:

1. The seed's TensorFlow iris cell through SDK 1.72.1 (its own virtualenv,
   as the tests make it) and serve, then the very request serve received
   (read back from its state dir, under a new job name) through
   ``sagemaker-training local --request`` against the same S3, code and data.
   Repeated ``--rounds`` times, interleaved; reported as medians: local's wall time; the job's time in serve (CreationTime to
   TrainingEndTime, what serve adds: the queue, the job's process, the log
   store) and their ratio (goal: <= 1.10); and the SDK's own wall time for
   the notebook cell around ``fit()``, and how long after the job's
   TrainingEndTime the cell ended (``fit_after_job_end_s``; goal: <= 3 s for
   a job under 20 s). The SDK describes a job once right after creating it,
   then every 30 s, sleeping 10 s between log polls; serve makes that first
   DescribeTrainingJob wait for a short job's end (sagemaker.FIRST_DESCRIBE_WAIT),
   so the SDK sees Completed at once.
2. ``--jobs`` tiny jobs created at once with ``--max-running``: jobs per
   minute (first CreationTime to last TrainingEndTime) and the largest wait
   (CreationTime to the job's start of Downloading).

``--check`` exits 1 when the ratio goal is missed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from serve_helpers import CLI, Server, job_request, put_code, sdk_python, wait_for  # noqa: E402

GOAL_RATIO = 1.10
GOAL_FIT_AFTER_END_S = 3.0  # for jobs under 20 s
SAMPLES = "sagemaker-sample-data-us-west-2"
BUCKET = "sagemaker-notebooks"


def iris(server: Server, state_dir: str, work: str) -> dict:
    python = sdk_python("sdk-v1")
    env = {**server.client_environ(), "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, os.path.join(REPO, "examples", "notebooks", "upload_data.py")], env=env,
                   check=True, capture_output=True)
    started = time.monotonic()
    result = subprocess.run([python, os.path.join(REPO, "examples", "notebooks", "tensorflow_iris.py")],
                            cwd=os.path.join(REPO, "examples", "tensorflow"), env=env, capture_output=True, text=True)
    sdk_wall = time.monotonic() - started
    ended = time.time()
    if result.returncode != 0:
        raise SystemExit(f"the SDK's fit() failed:\n{(result.stdout + result.stderr)[-3000:]}")
    job = [line for line in result.stdout.splitlines() if line.startswith("job_name:")][-1].split()[-1]
    answer = server.client("sagemaker").describe_training_job(TrainingJobName=job)
    in_serve = answer["TrainingEndTime"].timestamp() - answer["CreationTime"].timestamp()
    after_end = ended - answer["TrainingEndTime"].timestamp()

    with open(os.path.join(state_dir, "jobs", job, "request.json"), encoding="utf-8") as f:
        request = json.load(f)
    request["TrainingJobName"] = f"{job}-local"  # its own artifacts and checkpoints, not the SDK job's
    request["HyperParameters"] = {k: v.replace(job, f"{job}-local") if k != "sagemaker_submit_directory" else v
                                  for k, v in request["HyperParameters"].items()}
    path = os.path.join(work, "request.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(request, f)
    local_env = {**env, "AWS_ENDPOINT_URL_S3": server.url}
    started = time.monotonic()
    local = subprocess.run([*CLI, "local", "--request", path], env=local_env, capture_output=True, text=True)
    local_wall = time.monotonic() - started
    if local.returncode != 0:
        raise SystemExit(f"sagemaker-training local failed:\n{local.stderr[-3000:]}")
    return {"job": job, "local_wall_s": round(local_wall, 2), "serve_job_s": round(in_serve, 2),
            "sdk_fit_wall_s": round(sdk_wall, 2), "fit_after_job_end_s": round(after_end, 2)}


def iris_rounds(server: Server, state_dir: str, work: str, rounds: int) -> dict:
    results = [iris(server, state_dir, work) for _ in range(rounds)]
    summary = {key: round(statistics.median(r[key] for r in results), 3)
               for key in ("local_wall_s", "serve_job_s", "sdk_fit_wall_s", "fit_after_job_end_s")}
    summary["ratio"] = round(summary["serve_job_s"] / summary["local_wall_s"], 3)
    summary["rounds"] = [{k: v for k, v in r.items() if k != "job"} for r in results]
    return summary


def queue(server: Server, jobs: int) -> dict:
    sm = server.client("sagemaker")
    code = put_code(server.client("s3"), BUCKET)
    names = [f"bench-queued-{i:03d}" for i in range(jobs)]
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda n: sm.create_training_job(**job_request(n, BUCKET, code, env={"STEPS": "1"})), names))
    answers = [wait_for(sm, n, timeout=3600) for n in names]
    failed = [a["TrainingJobName"] for a in answers if a["TrainingJobStatus"] != "Completed"]
    first = min(a["CreationTime"].timestamp() for a in answers)
    last = max(a["TrainingEndTime"].timestamp() for a in answers)
    waits = [next(t["StartTime"] for t in a["SecondaryStatusTransitions"] if t["Status"] == "Downloading").timestamp()
             - a["CreationTime"].timestamp() for a in answers]
    return {"jobs": jobs, "not_completed": failed, "jobs_per_minute": round(jobs / (last - first) * 60, 1),
            "largest_wait_s": round(max(waits), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--max-running", type=int, default=2)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as work:
        state = os.path.join(work, "state")
        server = Server(state, "--region", "us-west-2", "--bucket", SAMPLES, "--bucket", BUCKET,
                        "--max-running", str(args.max_running)).start()
        try:
            result = {"iris": iris_rounds(server, state, work, args.rounds), "queue": queue(server, args.jobs)}
        finally:
            server.stop()
    result["goal_ratio"] = GOAL_RATIO
    result["goal_fit_after_job_end_s"] = GOAL_FIT_AFTER_END_S
    print(json.dumps(result, indent=2))
    iris_result = result["iris"]
    slow_fit = iris_result["serve_job_s"] < 20 and iris_result["fit_after_job_end_s"] > GOAL_FIT_AFTER_END_S
    return 1 if args.check and (iris_result["ratio"] > GOAL_RATIO or slow_fit) else 0


if __name__ == "__main__":
    sys.exit(main())
