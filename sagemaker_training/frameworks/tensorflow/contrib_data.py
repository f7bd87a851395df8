"""``tf.contrib.data``'s own datasets (TensorFlow 1.2-1.4) on TensorFlow 2.15.

Before ``tf.data`` (TF 1.4), the SageMaker examples of 2017-2018 read CIFAR-10
with ``tf.contrib.data.FixedLengthRecordDataset`` and called
``dataset.map(parser, num_threads=1, output_buffer_size=256)``. Those
datasets are ``tf.compat.v1.data`` datasets here whose ``map`` also takes
TF 1.2's ``num_threads`` (parallel calls) and ``output_buffer_size`` (a
prefetch after the map), and whose transformations keep returning such
datasets, so a chain of them reads as it did. Everything else in
``tf.contrib.data`` is ``tf.compat.v1.data.experimental`` or
``tf.compat.v1.data`` (:func:`.contrib.build`).
"""

from __future__ import annotations

import inspect

READERS = ("FixedLengthRecordDataset", "TextLineDataset", "TFRecordDataset")
_CLASSES: dict = {}


def classes(tf) -> dict:
    """``{"Dataset": ..., <reader>: ...}`` of ``tf.contrib.data`` (made once)."""
    if not _CLASSES:
        _CLASSES.update(_make(tf))
    return _CLASSES


def _make(tf) -> dict:
    from tensorflow.python.data.ops import dataset_ops  # noqa: PLC0415 - the V1 adapter is not public API

    v1_base = dataset_ops.DatasetV1

    class Dataset(dataset_ops.DatasetV1Adapter):
        """A ``tf.compat.v1.data`` dataset with TF 1.2's ``map`` arguments."""

        def __init__(self, dataset):
            if isinstance(dataset, dataset_ops.DatasetV1Adapter):
                dataset = dataset._dataset  # noqa: SLF001 - the wrapped V2 dataset
            super().__init__(dataset)

        def map(self, map_func, num_threads=None, output_buffer_size=None, num_parallel_calls=None):
            calls = num_threads if num_threads is not None else num_parallel_calls
            mapped = Dataset(dataset_ops.DatasetV1Adapter.map(self, map_func, num_parallel_calls=calls))
            return mapped.prefetch(output_buffer_size) if output_buffer_size is not None else mapped

    def wrap(value):
        if isinstance(value, dataset_ops.DatasetV2) and not isinstance(value, Dataset):
            return Dataset(value)
        return value

    for name in dir(v1_base):
        if name.startswith("_") or name == "map" or name in Dataset.__dict__:
            continue
        static = inspect.getattr_static(v1_base, name)
        if isinstance(static, (staticmethod, classmethod)):
            original = getattr(v1_base, name)
            setattr(Dataset, name, staticmethod(
                lambda *args, _original=original, **kwargs: wrap(_original(*args, **kwargs))))
        elif inspect.isfunction(static):
            setattr(Dataset, name, lambda self, *args, _name=name, **kwargs: wrap(
                getattr(dataset_ops.DatasetV1Adapter, _name)(self, *args, **kwargs)))

    Dataset.__qualname__ = Dataset.__name__
    Dataset.__module__ = __name__
    made = {"Dataset": Dataset}
    for reader in READERS:
        def __init__(self, *args, _reader=getattr(tf.compat.v1.data, reader), **kwargs):
            Dataset.__init__(self, _reader(*args, **kwargs))

        made[reader] = type(reader, (Dataset,), {"__init__": __init__, "__module__": __name__})
    return made
