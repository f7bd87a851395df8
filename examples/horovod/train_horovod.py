"""Horovod with TensorFlow 2.15 (Keras), as SageMaker runs it: ``distribution={"mpi": {"enabled": True}}``.

Every rank trains the same small regression on its own shard of synthetic
data; Horovod averages the gradients over MPI (allreduce). Rank 0 alone
writes the model to SM_MODEL_DIR, the first host's model dir, which the
platform uploads.

    sagemaker-training local --framework tensorflow --entry-point train_horovod.py \
        --source-dir examples/horovod --instance-count 2 \
        --hyperparameter sagemaker_mpi_enabled=true --hyperparameter sagemaker_mpi_num_of_processes_per_host=1

(Horovod itself is not one of the toolkit's dependencies: ``HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_MPI=1
pip install horovod`` builds it against the installed TensorFlow and Open MPI.)
"""

import argparse
import json
import os

import numpy as np
import tensorflow as tf
import horovod.tensorflow.keras as hvd


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    args, _ = parser.parse_known_args()  # the SDK also passes model_dir and others

    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    rng = np.random.default_rng(1234 + rank)  # each rank its own shard
    features = rng.normal(size=(args.batch_size * 16, 4)).astype("float32")
    labels = features @ np.array([[1.5], [-2.0], [0.5], [3.0]], dtype="float32") + 0.25

    model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])
    optimizer = hvd.DistributedOptimizer(tf.keras.optimizers.SGD(args.learning_rate * size))  # scale with ranks
    model.compile(optimizer=optimizer, loss="mse")
    data = tf.data.Dataset.from_tensor_slices((features, labels)).repeat().batch(args.batch_size)
    callbacks = [hvd.callbacks.BroadcastGlobalVariablesCallback(0), hvd.callbacks.MetricAverageCallback()]
    history = model.fit(data, steps_per_epoch=args.steps, epochs=1, callbacks=callbacks,
                        verbose=2 if rank == 0 else 0)
    loss = float(history.history["loss"][-1])
    if rank == 0:  # only the first rank writes: every host has a model dir, only the first one's is kept
        model.save(os.path.join(args.model_dir, "regression.keras"))
        with open(os.path.join(args.model_dir, "horovod.json"), "w") as f:
            json.dump({"size": size, "loss": loss, "weights": model.get_weights()[0].ravel().tolist()}, f)
    print(f"rank {rank} of {size}: loss {loss:.4f}")


if __name__ == "__main__":
    main()
