"""TF 1.x script mode in the style of the 2018-2019 SageMaker Keras examples: a tf.keras model trained
in graph mode (tf.keras.optimizers, argparse, tf.logging) and saved for TensorFlow Serving with
tf.contrib.saved_model.save_keras_model(model, args.model_output_dir)."""
import argparse
import json
import os

import numpy as np
import tensorflow as tf

tf.logging.set_verbosity(tf.logging.INFO)


def load(path):
    with open(path) as f:
        f.readline()
        table = np.loadtxt(f, delimiter=",", ndmin=2)
    return table[:, :4].astype(np.float32), table[:, 4].astype(np.int32)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model_output_dir", type=str, default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAINING"))
    args, _ = parser.parse_known_args()
    x, y = load(os.path.join(args.train, "iris_training.csv"))
    model = tf.keras.models.Sequential([
        tf.keras.layers.Dense(10, activation="relu", input_shape=(4,), name="hidden"),
        tf.keras.layers.Dense(3, activation="softmax", name="probabilities"),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=args.epochs, verbose=0)
    exported = tf.contrib.saved_model.save_keras_model(model, args.model_output_dir)
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "result.json"), "w") as f:
        json.dump({"loss": [float(v) for v in history.history["loss"]], "export": exported.decode(),
                   "bytes": isinstance(exported, bytes), "eager": tf.executing_eagerly()}, f)
