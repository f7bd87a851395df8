"""MNIST with an MXNet Module: the 2017 SageMaker MXNet seed job.

A legacy-mode entry point: the container imports this file and calls
``train(...)``; the Module it returns is saved by the default save
(``model-symbol.json``, ``model-0000.params``, ``model-shapes.json``).

Channels ``train`` and ``test`` each hold ``images.gz`` and ``labels.gz``
(gzip'd IDX files, as in ``data/``). Hyperparameters: ``learning_rate``
(default 0.1), ``batch_size`` (100), ``epochs`` (10). On more than one host
the Module trains with ``kvstore='dist_sync'``.
"""

import gzip
import logging
import os
import struct

import mxnet as mx
import numpy as np


def find_file(root, name):
    for directory, _, files in os.walk(root):
        if name in files:
            return os.path.join(directory, name)
    raise FileNotFoundError(f"{name} not found under {root}")


def load_data(path):
    """(labels, images) from the IDX files in ``path``; images scaled to [0, 1]."""
    with gzip.open(find_file(path, "labels.gz")) as f:
        _, count = struct.unpack(">II", f.read(8))
        labels = np.frombuffer(f.read(), dtype=np.uint8).astype(np.float32)
    with gzip.open(find_file(path, "images.gz")) as f:
        _, _, rows, cols = struct.unpack(">IIII", f.read(16))
        images = np.frombuffer(f.read(), dtype=np.uint8).reshape(count, 1, rows, cols)
    return labels, images.astype(np.float32) / 255


def data_iter(path, batch_size, shuffle):
    labels, images = load_data(path)
    return mx.io.NDArrayIter(images, labels, batch_size, shuffle=shuffle)


def build_graph():
    data = mx.sym.var("data")
    data = mx.sym.flatten(data=data)
    fc1 = mx.sym.FullyConnected(data=data, num_hidden=128)
    act1 = mx.sym.Activation(data=fc1, act_type="relu")
    fc2 = mx.sym.FullyConnected(data=act1, num_hidden=64)
    act2 = mx.sym.Activation(data=fc2, act_type="relu")
    fc3 = mx.sym.FullyConnected(data=act2, num_hidden=10)
    return mx.sym.SoftmaxOutput(data=fc3, name="softmax")


def train_context(num_gpus):
    return mx.gpu() if num_gpus > 0 else mx.cpu()


def train(channel_input_dirs, hyperparameters, hosts, num_gpus, **kwargs):
    learning_rate = hyperparameters.get("learning_rate", 0.1)
    batch_size = hyperparameters.get("batch_size", 100)
    epochs = hyperparameters.get("epochs", 10)

    train_iter = data_iter(channel_input_dirs["train"], batch_size, shuffle=True)
    val_iter = data_iter(channel_input_dirs["test"], batch_size, shuffle=False)

    logging.getLogger().setLevel(logging.DEBUG)
    kvstore = "local" if len(hosts) == 1 else "dist_sync"
    model = mx.mod.Module(symbol=build_graph(), context=train_context(num_gpus))
    model.fit(
        train_iter,
        eval_data=val_iter,
        kvstore=kvstore,
        optimizer="sgd",
        optimizer_params={"learning_rate": learning_rate},
        eval_metric="acc",
        batch_end_callback=mx.callback.Speedometer(batch_size, 100),
        num_epoch=epochs,
    )
    return model
