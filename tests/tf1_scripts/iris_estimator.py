"""TF 1.x script mode in the style of the 2018 SageMaker examples: a custom Estimator (model_fn with
tf.layers and tf.train.AdamOptimizer, a LoggingTensorHook), tf.app.flags, tf.logging, tf.app.run."""
import json
import os

import numpy as np
import tensorflow as tf

flags = tf.app.flags
flags.DEFINE_string("model_dir", None, "where the Estimator checkpoints")
flags.DEFINE_integer("train_steps", 40, "training steps")
flags.DEFINE_float("learning_rate", 0.05, "Adam's learning rate")
flags.DEFINE_string("train", os.environ.get("SM_CHANNEL_TRAINING"), "training data")
FLAGS = flags.FLAGS


def load(path):
    with open(path) as f:
        f.readline()
        table = np.loadtxt(f, delimiter=",", ndmin=2)
    return table[:, :4].astype(np.float32), table[:, 4].astype(np.int32)


def model_fn(features, labels, mode, params):
    hidden = tf.layers.dense(features["x"], 10, activation=tf.nn.relu)
    logits = tf.layers.dense(hidden, 3)
    predictions = {"classes": tf.argmax(logits, axis=1), "probabilities": tf.nn.softmax(logits)}
    if mode == tf.estimator.ModeKeys.PREDICT:
        return tf.estimator.EstimatorSpec(mode, predictions=predictions, export_outputs={
            "serving_default": tf.estimator.export.PredictOutput(predictions)})
    loss = tf.losses.sparse_softmax_cross_entropy(labels=labels, logits=logits)
    optimizer = tf.train.AdamOptimizer(learning_rate=params["learning_rate"])
    train_op = optimizer.minimize(loss, global_step=tf.train.get_global_step())
    accuracy = tf.metrics.accuracy(labels=labels, predictions=predictions["classes"])
    logging_hook = tf.train.LoggingTensorHook({"loss": loss}, every_n_iter=10)
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op, training_hooks=[logging_hook],
                                      eval_metric_ops={"accuracy": accuracy})


def serving_input_fn():
    inputs = {"x": tf.placeholder(tf.float32, [None, 4])}
    return tf.estimator.export.ServingInputReceiver(inputs, inputs)


def main(unused_argv):
    tf.logging.set_verbosity(tf.logging.INFO)
    x, y = load(os.path.join(FLAGS.train, "iris_training.csv"))
    classifier = tf.estimator.Estimator(model_fn=model_fn, model_dir=FLAGS.model_dir,
                                        params={"learning_rate": FLAGS.learning_rate})
    train_input = tf.estimator.inputs.numpy_input_fn({"x": x}, y, batch_size=16, num_epochs=None, shuffle=True)
    classifier.train(input_fn=train_input, steps=FLAGS.train_steps)
    results = classifier.evaluate(input_fn=tf.estimator.inputs.numpy_input_fn({"x": x}, y, shuffle=False))
    exported = classifier.export_savedmodel(os.environ["SM_MODEL_DIR"], serving_input_fn)
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "result.json"), "w") as f:
        json.dump({"accuracy": float(results["accuracy"]), "global_step": int(results["global_step"]),
                   "export": exported.decode() if isinstance(exported, bytes) else exported,
                   "eager": tf.executing_eagerly()}, f)


if __name__ == "__main__":
    tf.app.run()
