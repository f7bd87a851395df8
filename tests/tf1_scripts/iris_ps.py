"""TF 1.x script mode on several hosts with parameter servers (sagemaker_parameter_server_enabled), in the
style of the 2018 distributed script-mode examples: tf.estimator.train_and_evaluate with a custom model_fn
(tf.layers, tf.train.AdamOptimizer, a LoggingTensorHook) and tf.estimator.inputs; the master exports."""
import argparse
import json
import os

import numpy as np
import tensorflow as tf


def load(path):
    with open(path) as f:
        f.readline()
        table = np.loadtxt(f, delimiter=",", ndmin=2)
    return table[:, :4].astype(np.float32), table[:, 4].astype(np.int32)


def model_fn(features, labels, mode, params):
    logits = tf.layers.dense(tf.layers.dense(features["x"], 10, activation=tf.nn.relu), 3)
    if mode == tf.estimator.ModeKeys.PREDICT:
        predictions = {"classes": tf.argmax(logits, 1)}
        return tf.estimator.EstimatorSpec(mode, predictions=predictions, export_outputs={
            "serving_default": tf.estimator.export.PredictOutput(predictions)})
    loss = tf.losses.sparse_softmax_cross_entropy(labels=labels, logits=logits)
    train_op = tf.train.AdamOptimizer(0.05).minimize(loss, global_step=tf.train.get_global_step())
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op,
                                      training_hooks=[tf.train.LoggingTensorHook({"loss": loss}, every_n_iter=10)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_dir")
    parser.add_argument("--train_steps", type=int, default=30)
    args, _ = parser.parse_known_args()
    tf.logging.set_verbosity(tf.logging.INFO)
    x, y = load(os.path.join(os.environ["SM_CHANNEL_TRAINING"], "iris_training.csv"))
    est = tf.estimator.Estimator(model_fn=model_fn, model_dir=args.model_dir)
    train = tf.estimator.inputs.numpy_input_fn({"x": x}, y, batch_size=16, num_epochs=None, shuffle=True)
    evaluate = tf.estimator.inputs.numpy_input_fn({"x": x}, y, shuffle=False)
    tf.estimator.train_and_evaluate(est, tf.estimator.TrainSpec(train, max_steps=args.train_steps),
                                    tf.estimator.EvalSpec(evaluate, steps=2, start_delay_secs=0, throttle_secs=1))
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    if task.get("type") == "master":
        def serving_input_fn():
            inputs = {"x": tf.placeholder(tf.float32, [None, 4])}
            return tf.estimator.export.ServingInputReceiver(inputs, inputs)
        est.export_savedmodel(os.environ["SM_MODEL_DIR"], serving_input_fn)
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "result.json"), "w") as f:
        json.dump({"task": task,
                   "eager": tf.executing_eagerly()}, f)
