"""Bayesian against Random through ``sagemaker-training serve``: the best objective each finds for
the same budget of training jobs on one small problem, several seeds, in one run.

    python benchmarks/tuning.py [--seeds 3] [--jobs 12] [--parallel 2] [--max-running 4]

The problem: ridge regression by gradient descent on a fixed synthetic data set (200 rows, 8
features, numpy), in a plain script-mode training job that logs its validation MSE each epoch
(``val_mse=...``); the objective is the last one, minimized. Three ranges: ``learning_rate``
(1e-4..1, Logarithmic), ``l2`` (1e-6..10, Logarithmic), ``epochs`` (1..40, Integer). For each
seed, one tuning job per strategy (same seed, same ``--jobs``, same ``--parallel``), both
created at once so that they share the machine alike. Prints, per seed and as medians, the
best objective each strategy found and how many of its jobs it took to come within 10 % of the
best value that either found for that seed. Random is the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))

from serve_helpers import Server, job_request, put_code  # noqa: E402

BUCKET = "tuning-bench"
SCRIPT = """
    import argparse
    import numpy as np

    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--learning_rate", type=float)
        parser.add_argument("--l2", type=float)
        parser.add_argument("--epochs", type=int)
        args, _ = parser.parse_known_args()
        rng = np.random.default_rng(0)  # the same data for every job
        x = rng.normal(size=(200, 8))
        y = x @ rng.normal(size=8) + 0.3 * rng.normal(size=200)
        train_x, train_y, val_x, val_y = x[:150], y[:150], x[150:], y[150:]
        w = np.zeros(8)
        for epoch in range(args.epochs):
            gradient = 2 * train_x.T @ (train_x @ w - train_y) / len(train_y) + 2 * args.l2 * w
            w = np.clip(w - args.learning_rate * gradient, -1e6, 1e6)
            print(f"epoch {epoch} val_mse={float(np.mean((val_x @ w - val_y) ** 2)):.6f}", flush=True)
"""
RANGES = {
    "ContinuousParameterRanges": [
        {"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "1", "ScalingType": "Logarithmic"},
        {"Name": "l2", "MinValue": "0.000001", "MaxValue": "10", "ScalingType": "Logarithmic"}],
    "IntegerParameterRanges": [{"Name": "epochs", "MinValue": "1", "MaxValue": "40"}],
}


def create(sm, name: str, strategy: str, seed: int, jobs: int, parallel: int) -> None:
    definition = job_request("unused", BUCKET, f"s3://{BUCKET}/code/sourcedir.tar.gz")
    definition.pop("TrainingJobName")
    definition["StaticHyperParameters"] = definition.pop("HyperParameters")
    definition["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "val_mse", "Regex": r"val_mse=([0-9.e+-]+)"}]
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=definition,
        HyperParameterTuningJobConfig={
            "Strategy": strategy, "RandomSeed": seed, "ParameterRanges": RANGES,
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "val_mse"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel}})


def values_in_order(sm, name: str) -> list[float]:
    """Each job's final objective, in the order the jobs were created (inf: none)."""
    summaries, token = [], None
    while True:
        page = sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, MaxResults=100, SortBy="CreationTime", SortOrder="Ascending",
            **({"NextToken": token} if token else {}))
        summaries += page["TrainingJobSummaries"]
        token = page.get("NextToken")
        if not token:
            break
    return [s.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value", float("inf")) for s in summaries]


def wait(sm, names: list[str]) -> None:
    for name in names:
        while sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
                "HyperParameterTuningJobStatus"] in ("InProgress", "Stopping"):
            time.sleep(1)


def jobs_to_reach(values: list[float], goal: float) -> int | None:
    best = float("inf")
    for i, value in enumerate(values, 1):
        best = min(best, value)
        if best <= goal:
            return i
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--max-running", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        server = Server(os.path.join(work, "state"), "--bucket", BUCKET, "--max-running",
                        str(args.max_running)).start()
        try:
            sm = server.client("sagemaker")
            put_code(server.client("s3"), BUCKET, script=SCRIPT)
            started = time.monotonic()
            rows = []
            for seed in range(args.seeds):
                names = {s: f"bench-{s.lower()}-{seed}" for s in ("Random", "Bayesian")}
                for strategy, name in names.items():
                    create(sm, name, strategy, seed, args.jobs, args.parallel)
                wait(sm, list(names.values()))
                values = {s: values_in_order(sm, n) for s, n in names.items()}
                goal = min(min(v) for v in values.values()) * 1.10
                rows.append({s: (min(v), jobs_to_reach(v, goal)) for s, v in values.items()})
            elapsed = time.monotonic() - started
        finally:
            server.stop()
    print(f"{args.seeds} seeds, {args.jobs} jobs per tuning job, {args.parallel} at once; {elapsed:.0f} s in all")
    print(f"{'seed':>4}  {'Random best':>12}  {'jobs':>4}  {'Bayesian best':>13}  {'jobs':>4}")
    for seed, row in enumerate(rows):
        print(f"{seed:>4}  {row['Random'][0]:>12.4f}  {row['Random'][1] or '-':>4}  "
              f"{row['Bayesian'][0]:>13.4f}  {row['Bayesian'][1] or '-':>4}")
    for strategy in ("Random", "Bayesian"):
        reached = [r[strategy][1] for r in rows if r[strategy][1]]
        print(f"{strategy}: median best {statistics.median(r[strategy][0] for r in rows):.4f}; "
              f"within 10% of the seed's best in {len(reached)}/{len(rows)} seeds"
              + (f", median {statistics.median(reached):.0f} jobs" if reached else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
