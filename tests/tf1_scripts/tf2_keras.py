"""A TensorFlow 2 script-mode script: eager Keras, tf.compat.v1 names where TF 2 code used them;
it records whether it ran eagerly and which tf it got."""
import argparse
import json
import os

import numpy as np
import tensorflow as tf

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    args, _ = parser.parse_known_args()
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.INFO)
    x = np.random.rand(32, 4).astype(np.float32)
    y = (x.sum(axis=1) > 2).astype(np.int32)
    model = tf.keras.Sequential([tf.keras.layers.Dense(2, activation="softmax", input_shape=(4,))])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=args.epochs, verbose=0)
    model.save(os.path.join(os.environ["SM_MODEL_DIR"], "1"))
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "result.json"), "w") as f:
        json.dump({"eager": tf.executing_eagerly(), "tf": type(tf).__name__, "module": tf.__name__}, f)
