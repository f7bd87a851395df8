"""The seed's MXNet mnist cells, verbatim (SDK 1.72.1), after the setup cell.

Run it with the working directory examples/mxnet (where the notebook keeps
mnist.py) and the environment ``sagemaker-training serve`` prints:
``cd examples/mxnet && python ../notebooks/mxnet_mnist.py``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from setup_cell import custom_code_upload_location, model_artifacts_location, role  # noqa: E402

# --- cell: the estimator
from sagemaker.mxnet import MXNet  # noqa: E402

mnist_estimator = MXNet(entry_point='mnist.py',
                        role=role,
                        output_path=model_artifacts_location,
                        code_location=custom_code_upload_location,
                        train_instance_count=1,
                        train_instance_type='ml.m4.xlarge',
                        hyperparameters={'learning_rate': 0.1})

# --- cell: %%time fit
import boto3  # noqa: E402

region = boto3.Session().region_name
train_data_location = 's3://sagemaker-sample-data-{}/mxnet/mnist/train'.format(region)
test_data_location = 's3://sagemaker-sample-data-{}/mxnet/mnist/test'.format(region)

mnist_estimator.fit({'train': train_data_location, 'test': test_data_location})

print("model_data:", mnist_estimator.model_data)
print("job_name:", mnist_estimator.latest_training_job.name)
