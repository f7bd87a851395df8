"""sagemaker_training: the program that runs inside a framework training container."""

__version__ = "0.1.0"
