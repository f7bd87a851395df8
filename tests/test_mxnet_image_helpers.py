"""Scripts written for the platform's MXNet image import its helper module
``sagemaker_mxnet_container.training_utils`` (the public examples' script-mode
mnist.py: ``scheduler_host``, ``save``): a two-host dist_sync job through
``train`` with ``SAGEMAKER_FRAMEWORK=mxnet``, whose model the scheduler host
saves and MXNet loads back. (Python 2 legacy ``train()`` modules: test_tensorflow_v1.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mxnet_jobs import mnist_channels, mxnet_job

# In the style of the MXNet examples' script-mode mnist.py.
SCRIPT = """
    import argparse
    import gzip
    import json
    import logging
    import os
    import struct

    import mxnet as mx
    import numpy as np

    from sagemaker_mxnet_container.training_utils import save, scheduler_host


    def load_data(path):
        with gzip.open(os.path.join(path, "labels.gz")) as flbl:
            struct.unpack(">II", flbl.read(8))
            labels = np.frombuffer(flbl.read(), dtype=np.int8)
        with gzip.open(os.path.join(path, "images.gz")) as fimg:
            _, _, rows, cols = struct.unpack(">IIII", fimg.read(16))
            images = np.frombuffer(fimg.read(), dtype=np.uint8).reshape(len(labels), 1, rows, cols)
        return labels, images.astype(np.float32) / 255


    def build_graph():
        data = mx.sym.flatten(data=mx.sym.var("data"))
        hidden = mx.sym.Activation(data=mx.sym.FullyConnected(data=data, num_hidden=32), act_type="relu")
        return mx.sym.SoftmaxOutput(data=mx.sym.FullyConnected(data=hidden, num_hidden=10), name="softmax")


    def train(batch_size, epochs, learning_rate, training_channel, testing_channel, hosts, current_host):
        train_labels, train_images = load_data(training_channel)
        test_labels, test_images = load_data(testing_channel)
        shard = len(train_images) // len(hosts)
        start = shard * hosts.index(current_host)
        train_iter = mx.io.NDArrayIter(train_images[start:start + shard], train_labels[start:start + shard],
                                       batch_size, shuffle=True)
        val_iter = mx.io.NDArrayIter(test_images, test_labels, batch_size)
        model = mx.mod.Module(symbol=build_graph(), context=mx.cpu())
        model.fit(train_iter, eval_data=val_iter, kvstore="local" if len(hosts) == 1 else "dist_sync",
                  optimizer="sgd", optimizer_params={"learning_rate": learning_rate}, eval_metric="acc",
                  num_epoch=epochs)
        return model


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--batch-size", type=int, default=50)
        parser.add_argument("--epochs", type=int, default=1)
        parser.add_argument("--learning-rate", type=float, default=0.1)
        parser.add_argument("--model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
        parser.add_argument("--train", type=str, default=os.environ["SM_CHANNEL_TRAIN"])
        parser.add_argument("--test", type=str, default=os.environ["SM_CHANNEL_TEST"])
        parser.add_argument("--current-host", type=str, default=os.environ["SM_CURRENT_HOST"])
        parser.add_argument("--hosts", type=list, default=json.loads(os.environ["SM_HOSTS"]))
        args = parser.parse_args()
        model = train(args.batch_size, args.epochs, args.learning_rate, args.train, args.test, args.hosts,
                      args.current_host)
        with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "scheduler.json"), "w") as f:
            json.dump({"scheduler": scheduler_host(args.hosts), "saved": save(args.model_dir, model)}, f)
"""

PREDICT = """
import json, os, sys
import mxnet as mx
import numpy as np
model_dir = sys.argv[1]
with open(os.path.join(model_dir, "model-shapes.json")) as f:
    shapes = [(d["name"], tuple(d["shape"])) for d in json.load(f)]
symbol, arg_params, aux_params = mx.model.load_checkpoint(os.path.join(model_dir, "model"), 0)
module = mx.mod.Module(symbol=symbol, label_names=None, context=mx.cpu())
module.bind(data_shapes=shapes, for_training=False)
module.set_params(arg_params, aux_params, allow_missing=True)
batch = mx.io.DataBatch([mx.nd.array(np.random.rand(*shapes[0][1]))])
module.forward(batch)
print(json.dumps(list(module.get_outputs()[0].shape)))
"""


def test_a_script_for_the_mxnet_image_imports_its_training_utils(tmp_path):
    channels = mnist_channels(str(tmp_path / "data"), train=400, test=100)
    job = mxnet_job(str(tmp_path / "job"), "mnist.py", sources={"mnist.py": SCRIPT}, hosts=2, channels=channels)
    result = job.run(max_run=180)
    assert result.ok, result.failure_reason
    saved = {}
    for host in job.hosts:
        with open(os.path.join(job.base_dir(host), "output", "data", "scheduler.json")) as f:
            saved[host] = json.load(f)
    assert saved == {"algo-1": {"scheduler": "algo-1", "saved": True},
                     "algo-2": {"scheduler": "algo-1", "saved": False}}
    model_dir = os.path.join(job.base_dir("algo-1"), "model")
    assert sorted(os.listdir(model_dir)) == ["model-0000.params", "model-shapes.json", "model-symbol.json"]
    assert os.listdir(os.path.join(job.base_dir("algo-2"), "model")) == []
    with open(os.path.join(model_dir, "model-shapes.json")) as f:
        assert json.load(f) == [{"name": "data", "shape": [50, 1, 28, 28]}]
    out = subprocess.run([sys.executable, "-c", PREDICT, model_dir], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [50, 10]
