"""``tf.contrib.learn.datasets`` of TensorFlow 1.x: ``base`` and ``mnist``.

Written here after TensorFlow 1.x's documented behaviour (TensorFlow 2.15 has
no such readers):

* ``base.load_csv_with_header`` / ``load_csv_without_header`` (a
  ``Dataset(data, target)`` of NumPy arrays; the iris and abalone examples)
  and ``base.maybe_download``;
* ``mnist.read_data_sets(train_dir, ...)`` (also
  ``tensorflow.examples.tutorials.mnist.input_data``; the MNIST examples'
  ``utils.py`` and the SDK's ``horovod_mnist.py``): the four idx files of
  MNIST in ``train_dir`` (each downloaded from ``source_url`` first if
  missing) as ``Datasets(train, validation, test)`` of :class:`DataSet`
  (images scaled to [0, 1] float32 rows by default, ``next_batch`` shuffling
  each epoch; the order of the shuffles differs from TF 1's).
  ``tf.keras.datasets.mnist.load_data`` reads another file into arrays.
"""

from __future__ import annotations

import collections
import csv
import gzip
import os
import shutil
import tempfile

SOURCE_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz")
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
MAX_IDX_BYTES = 1 << 30  # the body of one idx file (MNIST's largest is 47 MB); README's Limits

Dataset = collections.namedtuple("Dataset", ["data", "target"])
Datasets = collections.namedtuple("Datasets", ["train", "validation", "test"])


# --------------------------------------------------------------------------
# base


def load_csv_with_header(filename, target_dtype, features_dtype, target_column=-1):
    """A CSV whose first row is ``<rows>,<features>,...`` (the iris files):
    ``Dataset(data [rows, features], target [rows])``."""
    import numpy as np  # noqa: PLC0415

    with open(filename, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows, features = int(header[0]), int(header[1])
        data = np.zeros((rows, features), dtype=features_dtype)
        target = np.zeros((rows,), dtype=target_dtype)
        count = 0
        for index, row in enumerate(r for r in reader if r):
            if index >= rows:
                raise ValueError(f"{filename}: the header announces {rows} rows, the file has more")
            target[index] = np.asarray(row.pop(target_column), dtype=target_dtype)
            data[index] = np.asarray(row, dtype=features_dtype)
            count = index + 1
    if count != rows:
        raise ValueError(f"{filename}: the header announces {rows} rows, the file has {count}")
    return Dataset(data=data, target=target)


def load_csv_without_header(filename, target_dtype, features_dtype, target_column=-1):
    """A CSV of rows only, the target in ``target_column`` (the abalone files)."""
    import numpy as np  # noqa: PLC0415

    data, target = [], []
    with open(filename, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if not row:
                continue
            target.append(row.pop(target_column))
            data.append(row)
    return Dataset(data=np.array(data, dtype=features_dtype), target=np.array(target, dtype=target_dtype))


def maybe_download(filename, work_directory, source_url):
    """``work_directory/filename``, downloaded from ``source_url`` first if it
    is not there (into ``work_directory``, made if missing)."""
    import urllib.request  # noqa: PLC0415

    os.makedirs(work_directory, exist_ok=True)
    path = os.path.join(work_directory, filename)
    if not os.path.exists(path):
        with tempfile.NamedTemporaryFile(dir=work_directory, delete=False) as out:
            try:
                with urllib.request.urlopen(source_url) as response:  # noqa: S310 - the script's own URL
                    shutil.copyfileobj(response, out)
            except BaseException:
                os.unlink(out.name)
                raise
        os.replace(out.name, path)
        print(f"Successfully downloaded {filename} {os.path.getsize(path)} bytes.")
    return path


# --------------------------------------------------------------------------
# mnist



def _read32(stream) -> int:
    data = stream.read(4)
    if len(data) != 4:
        raise ValueError(f"{getattr(stream, 'name', 'the idx file')} ends inside its header")
    return int.from_bytes(data, "big")


def _body(stream, count: int):
    import numpy as np  # noqa: PLC0415

    if count > MAX_IDX_BYTES:
        raise ValueError(f"{getattr(stream, 'name', 'the idx file')}: the header announces {count} bytes, "
                         f"more than the {MAX_IDX_BYTES} an MNIST file may have")
    data = stream.read(count)
    if len(data) != count:
        raise ValueError(f"{getattr(stream, 'name', 'the idx file')}: the header announces {count} bytes, "
                         f"the file has {len(data)}")
    return np.frombuffer(data, dtype=np.uint8)


def extract_images(f):
    """The images of a gzipped idx3 file object: uint8 ``[count, rows, cols, 1]``."""
    with gzip.GzipFile(fileobj=f) as stream:
        magic = _read32(stream)
        if magic != IMAGES_MAGIC:
            raise ValueError(f"Invalid magic number {magic} in MNIST image file: {getattr(f, 'name', f)}")
        count, rows, cols = _read32(stream), _read32(stream), _read32(stream)
        return _body(stream, count * rows * cols).reshape(count, rows, cols, 1)


def dense_to_one_hot(labels_dense, num_classes):
    import numpy as np  # noqa: PLC0415

    one_hot = np.zeros((labels_dense.shape[0], num_classes))
    one_hot[np.arange(labels_dense.shape[0]), labels_dense] = 1
    return one_hot


def extract_labels(f, one_hot=False, num_classes=10):
    """The labels of a gzipped idx1 file object: uint8 ``[count]`` (or one-hot rows)."""
    with gzip.GzipFile(fileobj=f) as stream:
        magic = _read32(stream)
        if magic != LABELS_MAGIC:
            raise ValueError(f"Invalid magic number {magic} in MNIST label file: {getattr(f, 'name', f)}")
        labels = _body(stream, _read32(stream))
    return dense_to_one_hot(labels, num_classes) if one_hot else labels


def _numpy_dtype(dtype):
    import numpy as np  # noqa: PLC0415

    dtype = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
    if dtype not in (np.uint8, np.float32):
        raise TypeError(f"Invalid image dtype {dtype.name}, expected uint8 or float32")
    return dtype


class DataSet:
    """Images and labels with ``next_batch``, as TF 1's MNIST ``DataSet``."""

    def __init__(self, images, labels, fake_data=False, one_hot=False, dtype="float32", reshape=True, seed=None):
        import numpy as np  # noqa: PLC0415

        dtype = _numpy_dtype(dtype)
        self._random = np.random.RandomState(seed)
        self.fake_data, self.one_hot = fake_data, one_hot
        if fake_data:
            self._num_examples = 10000
        else:
            if images.shape[0] != labels.shape[0]:
                raise ValueError(f"images.shape: {images.shape} labels.shape: {labels.shape}")
            self._num_examples = images.shape[0]
            if reshape:
                images = images.reshape(images.shape[0], images.shape[1] * images.shape[2])
            if dtype == np.float32:
                images = images.astype(np.float32) * (1.0 / 255.0)
        self._images, self._labels = images, labels
        self._epochs_completed = 0
        self._index_in_epoch = 0

    images = property(lambda self: self._images)
    labels = property(lambda self: self._labels)
    num_examples = property(lambda self: self._num_examples)
    epochs_completed = property(lambda self: self._epochs_completed)

    def _shuffle(self):
        order = self._random.permutation(self._num_examples)
        self._images, self._labels = self._images[order], self._labels[order]

    def next_batch(self, batch_size, fake_data=False, shuffle=True):
        """The next ``batch_size`` examples; an epoch's end wraps into the next
        (reshuffled) epoch."""
        import numpy as np  # noqa: PLC0415

        if fake_data:
            image = [1] * 784
            label = [1] + [0] * 9 if self.one_hot else 0
            return [image] * batch_size, [label] * batch_size
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            self._shuffle()
        if start + batch_size <= self._num_examples:
            self._index_in_epoch += batch_size
            return self._images[start:self._index_in_epoch], self._labels[start:self._index_in_epoch]
        self._epochs_completed += 1
        rest_images, rest_labels = self._images[start:], self._labels[start:]
        if shuffle:
            self._shuffle()
        self._index_in_epoch = batch_size - (self._num_examples - start)
        end = self._index_in_epoch
        return (np.concatenate((rest_images, self._images[:end]), axis=0),
                np.concatenate((rest_labels, self._labels[:end]), axis=0))


def read_data_sets(train_dir, fake_data=False, one_hot=False, dtype="float32", reshape=True, validation_size=5000,
                   seed=None, source_url=SOURCE_URL):
    """``Datasets(train, validation, test)`` of the MNIST idx files in ``train_dir``."""
    if fake_data:
        def fake():
            return DataSet([], [], fake_data=True, one_hot=one_hot, dtype=dtype, seed=seed)

        return Datasets(train=fake(), validation=fake(), test=fake())
    source_url = source_url or SOURCE_URL
    arrays = []
    for name in FILES:
        path = maybe_download(name, train_dir, source_url + name)
        with open(path, "rb") as f:
            arrays.append(extract_images(f) if "images" in name else extract_labels(f, one_hot=one_hot))
    train_images, train_labels, test_images, test_labels = arrays
    if not 0 <= validation_size <= len(train_images):
        raise ValueError(f"Validation size should be between 0 and {len(train_images)}. "
                         f"Received: {validation_size}.")
    options = {"dtype": dtype, "reshape": reshape, "seed": seed}
    return Datasets(train=DataSet(train_images[validation_size:], train_labels[validation_size:], **options),
                    validation=DataSet(train_images[:validation_size], train_labels[:validation_size], **options),
                    test=DataSet(test_images, test_labels, **options))


def load_mnist(train_dir="MNIST-data"):
    return read_data_sets(train_dir)


BASE = {"load_csv_with_header": load_csv_with_header, "load_csv_without_header": load_csv_without_header,
        "maybe_download": maybe_download, "Dataset": Dataset}
MNIST = {fn.__name__: fn for fn in (read_data_sets, load_mnist, extract_images, extract_labels, dense_to_one_hot)}
MNIST.update(DataSet=DataSet, Datasets=Datasets, SOURCE_URL=SOURCE_URL)
