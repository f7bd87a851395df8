"""Checkpoints of a legacy parameter-server job when hosts share no file system.

On SageMaker every host has its own disk. Here algo-2's processes run in a
private mount namespace with an empty tmpfs over algo-1's host directory, so
a parameter server on algo-2 that wrote its shard "to the chief's path" would
write it where the chief never looks (TensorFlow's sharded default saver:
the chief's ``MergeV2Checkpoints`` then fails). The trainer makes the
Estimator's default saver non-sharded in a distributed job: the chief
gathers the variables over gRPC and writes one checkpoint, which the S3
mirror uploads, and a later job restores from it the same way.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from tensorflow_jobs import IRIS_DATA, IRIS_EXAMPLE, ROOT, tf_job

STEPS = {"evaluation_steps": 2, "save_checkpoints_steps": 10}
# A mount namespace of its own, with an empty tmpfs over "$0" (the path another host's disk would hold).
PRIVATE_DISK = 'mount -t tmpfs sagemaker-test "$0" && exec "$@"'


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            'mount -t tmpfs probe "$0"', "/mnt"], capture_output=True)
    return probe.returncode == 0


needs_mount_namespaces = pytest.mark.skipif(not _can_unshare(), reason="needs unshare --mount and tmpfs (root)")


def separate_disks(job):
    """Run every host but algo-1 where algo-1's host directory is an empty
    disk of its own, as on hosts that share no file system."""
    hidden = job.base_dir("algo-1")
    specs = job.specs

    def private_specs():
        result = specs()
        for spec in result:
            if spec.name != "algo-1":
                spec.argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", PRIVATE_DISK, hidden,
                             *spec.argv]
        return result

    job.specs = private_specs
    return job


def _ps_job(work_dir, hyperparameters):
    return separate_disks(tf_job(work_dir, "iris_dnn_classifier.py", files=[IRIS_EXAMPLE], hosts=2,
                                 channels={"training": IRIS_DATA}, hyperparameters={**STEPS, **hyperparameters}))


def _step(index_text: str) -> int:
    return int(re.search(r'model_checkpoint_path: "model\.ckpt-(\d+)"', index_text).group(1))


@needs_mount_namespaces
def test_checkpoints_in_the_model_dir_are_written_by_the_chief_alone(tmp_path):
    job = _ps_job(str(tmp_path), {"training_steps": 20})
    result = job.run(max_run=180)
    assert result.ok, result.failure_reason
    model_dir = os.path.join(job.base_dir("algo-1"), "model")
    with open(os.path.join(model_dir, "checkpoint")) as f:
        step = _step(f.read())
    assert 20 <= step < 30  # asynchronous: master and worker may both take the last steps
    data = sorted(name for name in os.listdir(model_dir) if name.startswith(f"model.ckpt-{step}.data-"))
    assert data == [f"model.ckpt-{step}.data-00000-of-00001"]


@needs_mount_namespaces
def test_s3_checkpoints_are_one_shard_and_resume(tmp_path, s3, s3_bucket):
    bucket = s3_bucket("ps-ckpt")
    location = f"s3://{bucket}/ps-job/checkpoints"  # the SDK 1.x default: s3://<output>/<job>/checkpoints
    env_sync = {"SAGEMAKER_TF_CHECKPOINT_SYNC_SECONDS": "0.5"}

    def stored():
        return {o["Key"].rsplit("/", 1)[1] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}

    def index():
        return s3.get_object(Bucket=bucket, Key="ps-job/checkpoints/checkpoint")["Body"].read().decode()

    first = _ps_job(str(tmp_path / "first"), {"training_steps": 20, "checkpoint_path": location})
    first.extra_env.update(env_sync)
    result = first.run(max_run=180)
    assert result.ok, result.failure_reason
    step = _step(index())
    assert 20 <= step < 30
    assert {f"model.ckpt-{step}.index", f"model.ckpt-{step}.data-00000-of-00001"} <= stored()
    assert [k for k in stored() if ".data-" in k and not k.endswith("-of-00001")] == []

    # More training_steps on the same location: the chief restores step `step` from S3 and the job goes on.
    second = _ps_job(str(tmp_path / "second"), {"training_steps": step + 20, "checkpoint_path": location})
    second.extra_env.update(env_sync)
    out = io.StringIO()
    result = second.run(max_run=180, err=out)
    assert result.ok, result.failure_reason
    log = out.getvalue()
    assert f"Restoring parameters from {second.base_dir('algo-1')}/checkpoints/model.ckpt-{step}" in log
    resumed = _step(index())
    assert step + 20 <= resumed < step + 30
    assert f"model.ckpt-{resumed}.data-00000-of-00001" in stored()


# Builds a one-variable Estimator and trains 2 steps with the patch applied; prints which savers were sharded.
SAVER_PROBE = """
import json, sys
import tensorflow as tf
from sagemaker_training.frameworks.tensorflow import sessions

sessions.unsharded_default_saver()
seen = {}

class Probe(tf.estimator.SessionRunHook):
    def __init__(self, name):
        self.name = name
    def begin(self):
        savers = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.SAVERS)
        seen[self.name] = [s._sharded for s in savers]

def model_fn(explicit):
    def fn(features, labels, mode):
        w = tf.compat.v1.get_variable("w", [1])
        loss = tf.reduce_sum(tf.square(w * features - labels))
        step = tf.compat.v1.train.get_or_create_global_step()
        train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, global_step=step)
        scaffold = None
        if explicit:
            scaffold = tf.compat.v1.train.Scaffold(saver=tf.compat.v1.train.Saver(sharded=True))
            tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.SAVERS, scaffold.saver)
        return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op, scaffold=scaffold)
    return fn

def data():
    return tf.data.Dataset.from_tensors((tf.constant([1.0]), tf.constant([2.0]))).repeat()

for name, explicit in (("default", False), ("explicit", True)):
    estimator = tf.compat.v1.estimator.Estimator(model_fn(explicit), model_dir=sys.argv[1] + "/" + name)
    estimator.train(data, max_steps=2, hooks=[Probe(name)])
print(json.dumps(seen))
"""


def test_only_the_estimators_default_saver_loses_its_shards(tmp_path):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(SAVER_PROBE), str(tmp_path)], capture_output=True,
                         text=True, timeout=120, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == '{"default": [false], "explicit": [true]}'
