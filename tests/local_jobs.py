"""Helpers of the local-mode tests: requests, and the CLI run as a real subprocess."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = [sys.executable, "-m", "sagemaker_training", "local"]

# Variables of the test runner's own environment that would change how a job runs.
_JOB_VARIABLE_PREFIXES = ("SM_", "SAGEMAKER_", "TF_CONFIG", "DMLC_")


def request(output_path: str, channels: dict | None = None, *, job_name: str = "local-test-job",
            image: str = "123456789012.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tensorflow:cpu",
            hyperparameters: dict | None = None, instance_count: int = 1, max_run: int = 600,
            environment: dict | None = None) -> dict:
    """A CreateTrainingJob request body; ``hyperparameters`` are JSON-encoded as the SDK does."""
    body = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "HyperParameters": {k: json.dumps(v) for k, v in (hyperparameters or {}).items()},
        "InputDataConfig": [
            {"ChannelName": name,
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                             "S3DataDistributionType": "FullyReplicated"}},
             "ContentType": "text/csv"}
            for name, uri in (channels or {}).items()
        ],
        "OutputDataConfig": {"S3OutputPath": output_path},
        "ResourceConfig": {"InstanceCount": instance_count, "InstanceType": "ml.c4.xlarge", "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_run},
    }
    if environment:
        body["Environment"] = dict(environment)
    return body


def mutated(body: dict, path: str, value=None, delete: bool = False) -> dict:
    """A copy of ``body`` with the field at ``path`` (``A.B.0.C``) set or deleted."""
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key = int(last) if isinstance(node, list) else last
    if delete:
        del node[key]
    else:
        node[key] = value
    return body


def write_request(directory, body, name: str = "request.json") -> str:
    path = os.path.join(str(directory), name)
    with open(path, "w", encoding="utf-8") as f:
        if isinstance(body, str):
            f.write(body)
        else:
            json.dump(body, f, indent=1)
    return path


def cli_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_JOB_VARIABLE_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    env["SAGEMAKER_TERMINATION_GRACE_SECONDS"] = "5"
    env.update(extra or {})
    return env


def run_local(args, env: dict | None = None, timeout: float = 240, cwd: str | None = None):
    """``sagemaker-training local ARGS`` as a subprocess: (CompletedProcess, description or None)."""
    proc = subprocess.run([*CLI, *args], env=cli_env(env), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors="replace", timeout=timeout, cwd=cwd or ROOT)
    description = None
    start = proc.stdout.find("{")
    if start >= 0:
        try:
            description = json.loads(proc.stdout[start:])
        except ValueError:
            description = None
    return proc, description


def explain(proc) -> str:
    """The end of a run's output, for assertion messages."""
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-6000:]}"
