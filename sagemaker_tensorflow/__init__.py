"""The TensorFlow images' ``sagemaker_tensorflow`` module, written for this toolkit.

``from sagemaker_tensorflow import PipeModeDataset`` reads a Pipe-mode
channel's FIFOs as a ``tf.data`` dataset (pipemode.py). TensorFlow is
imported when the dataset is first asked for, not with this package.
"""

__all__ = ["PipeModeDataset", "PipeModeDatasetException"]


def __getattr__(name):
    if name in __all__:
        from . import pipemode

        return getattr(pipemode, name)
    raise AttributeError(f"module 'sagemaker_tensorflow' has no attribute {name!r}")
