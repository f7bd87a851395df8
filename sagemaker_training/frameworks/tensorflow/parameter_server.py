"""A TensorFlow parameter server: a child process that imports TensorFlow.

Run as ``python -m sagemaker_training.frameworks.tensorflow.parameter_server``
with ``TF_CONFIG`` naming a ``ps`` task. It starts a ``tf.distribute.Server``
for that task and joins it. It never ends by itself: the host's supervisor
stops it (SIGTERM, which ends the process at once) when the host's trainer
succeeded and its peers are done, or when anything on the host failed (see
:mod:`.peers`).
"""

from __future__ import annotations

import json
import os
import sys

from ...errors import ToolkitError, record


def server_args(tf_config: dict) -> tuple[dict, str, int]:
    """(cluster, job name, task index) of the ``ps`` task in ``tf_config``."""
    task = tf_config.get("task") or {}
    cluster = tf_config.get("cluster") or {}
    if task.get("type") != "ps" or "ps" not in cluster:
        raise ToolkitError(f"the parameter server was started with TF_CONFIG task {task!r}, not a ps task of the "
                           "cluster.")
    return cluster, "ps", int(task.get("index", 0))


@record
def main() -> None:
    cluster, job_name, index = server_args(json.loads(os.environ.get("TF_CONFIG") or "{}"))
    # A parameter server holds variables only: keep it off the GPUs the trainer uses.
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    import tensorflow as tf  # noqa: PLC0415

    server = tf.distribute.Server(tf.train.ClusterSpec(cluster), job_name=job_name, task_index=index,
                                  protocol="grpc", start=True)
    print(f"parameter server {job_name} {index} listening on {cluster[job_name][index]}", file=sys.stderr, flush=True)
    server.join()


if __name__ == "__main__":
    main()
