"""Helpers of the TensorFlow tests: jobs run through ``train`` (LocalCluster)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

from sagemaker_training.local.cluster import LocalCluster

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE_DIR = os.path.join(ROOT, "examples", "tensorflow")
IRIS_EXAMPLE = os.path.join(EXAMPLE_DIR, "iris_dnn_classifier.py")
IRIS_DATA = os.path.join(EXAMPLE_DIR, "data")

# Fast distributed runs: no TensorFlow worker start delay, quick peer polling.
FAST_ENV = {"SAGEMAKER_TF_WORKER_DELAY_SECONDS": "0", "SAGEMAKER_TF_PEER_POLL_SECONDS": "0.2"}


def tf_job(work_dir: str, program: str, sources: dict | None = None, files=(), hosts: int = 1,
           hyperparameters: dict | None = None, channels: dict | None = None, env: dict | None = None,
           grace: float = 5.0) -> LocalCluster:
    """A ready-to-run TensorFlow job: ``sources`` (name -> text) and ``files``
    (paths) become every host's code dir; ``channels`` maps name -> directory."""
    cluster = LocalCluster(os.path.join(work_dir, "job"), host_count=hosts, framework="tensorflow",
                           env={**FAST_ENV, **(env or {})}, grace=grace)
    cluster.write_config(hyperparameters={"sagemaker_program": program, **(hyperparameters or {})},
                         input_data_config={})
    for name, path in (channels or {}).items():
        cluster.add_channel(name, path)
    for host in cluster.hosts:
        code_dir = os.path.join(cluster.base_dir(host), "code")
        os.makedirs(code_dir, exist_ok=True)
        for name, text in (sources or {}).items():
            with open(os.path.join(code_dir, name), "w", encoding="utf-8") as f:
                f.write(textwrap.dedent(text))
        for path in files:
            shutil.copy(path, code_dir)
    return cluster


def read_failure(cluster: LocalCluster, host: str = "algo-1") -> str:
    with open(os.path.join(cluster.base_dir(host), "output", "failure"), encoding="utf-8") as f:
        return f.read()


def exports(cluster: LocalCluster, host: str = "algo-1") -> list:
    """The SavedModel directories under ``model/export/Servo``."""
    base = os.path.join(cluster.base_dir(host), "model", "export", "Servo")
    if not os.path.isdir(base):
        return []
    return sorted(os.path.join(base, name) for name in os.listdir(base) if name.isdigit())


LOAD_SAVED_MODELS = """
import json, sys
import tensorflow as tf
result = {}
for path in sys.argv[1:]:
    loaded = tf.saved_model.load(path)
    result[path] = sorted(loaded.signatures.keys())
print(json.dumps(result))
"""


def load_saved_models(paths) -> dict:
    """path -> signature names, each SavedModel loaded by TensorFlow in one subprocess."""
    out = subprocess.run([sys.executable, "-c", LOAD_SAVED_MODELS, *paths], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
