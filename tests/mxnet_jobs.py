"""Helpers of the MXNet tests: MNIST slices and jobs run through ``train``."""

from __future__ import annotations

import gzip
import os
import shutil
import struct

from helpers import read_failure as read_base_dir_failure
from helpers import write_files
from sagemaker_training.local.cluster import LocalCluster

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE_DIR = os.path.join(ROOT, "examples", "mxnet")
MNIST_DIR = os.path.join(EXAMPLE_DIR, "data")


def write_mnist_slice(target: str, start: int, count: int) -> str:
    """``images.gz`` and ``labels.gz`` of MNIST images ``start .. start+count`` in ``target``."""
    os.makedirs(target, exist_ok=True)
    with gzip.open(os.path.join(MNIST_DIR, "labels.gz")) as f:
        f.read(8)
        labels = f.read()[start:start + count]
    with gzip.open(os.path.join(MNIST_DIR, "images.gz")) as f:
        _, _, rows, cols = struct.unpack(">IIII", f.read(16))
        size = rows * cols
        f.seek(16 + start * size)
        images = f.read(count * size)
    with gzip.open(os.path.join(target, "labels.gz"), "wb", compresslevel=1) as f:
        f.write(struct.pack(">II", 2049, count) + labels)
    with gzip.open(os.path.join(target, "images.gz"), "wb", compresslevel=1) as f:
        f.write(struct.pack(">IIII", 2051, count, rows, cols) + images)
    return target


def mnist_channels(directory: str, train: int = 1000, test: int = 200) -> dict:
    """``train`` and ``test`` channel dirs cut from the example's MNIST data."""
    return {
        "train": write_mnist_slice(os.path.join(directory, "train"), 0, train),
        "test": write_mnist_slice(os.path.join(directory, "test"), train, test),
    }


def mxnet_job(work_dir: str, program: str, sources: dict | None = None, files=(), hosts: int = 1,
              hyperparameters: dict | None = None, channels: dict | None = None, env: dict | None = None,
              grace: float = 5.0) -> LocalCluster:
    """A ready-to-run MXNet job: ``sources`` (name -> text) and ``files`` (paths)
    become every host's code dir, ``sagemaker_program`` is ``program``."""
    cluster = LocalCluster(os.path.join(work_dir, "job"), host_count=hosts, framework="mxnet",
                           env=env, grace=grace)
    cluster.write_config(hyperparameters={"sagemaker_program": program, **(hyperparameters or {})},
                         input_data_config={})
    for name, path in (channels or {}).items():
        cluster.add_channel(name, path)
    for host in cluster.hosts:
        code_dir = write_files(os.path.join(cluster.base_dir(host), "code"), sources or {})
        for path in files:
            shutil.copy(path, code_dir)
    return cluster


def read_failure(cluster: LocalCluster, host: str = "algo-1") -> str:
    return read_base_dir_failure(cluster.base_dir(host))
