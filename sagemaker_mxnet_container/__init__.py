"""Helper modules of the SageMaker MXNet image, for scripts written for it.

Scripts for the platform's MXNet containers import
``sagemaker_mxnet_container.training_utils`` (``scheduler_host``, ``save``);
this package provides that module, written for this toolkit, so those
scripts run unchanged. Nothing is imported until a script asks.
"""
