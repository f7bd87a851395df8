"""The seed's TensorFlow iris cells, verbatim (SDK 1.72.1), after the setup cell.

Run it with the working directory examples/tensorflow (where the notebook
keeps iris_dnn_classifier.py) and the environment ``sagemaker-training
serve`` prints: ``cd examples/tensorflow && python ../notebooks/tensorflow_iris.py``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from setup_cell import custom_code_upload_location, model_artifacts_location, role  # noqa: E402

# --- cell: the estimator
from sagemaker.tensorflow import TensorFlow  # noqa: E402

iris_estimator = TensorFlow(entry_point='iris_dnn_classifier.py',
                            role=role,
                            output_path=model_artifacts_location,
                            code_location=custom_code_upload_location,
                            train_instance_count=1,
                            train_instance_type='ml.c4.xlarge',
                            training_steps=1000,
                            evaluation_steps=100)

# --- cell: %%time fit
import boto3  # noqa: E402

region = boto3.Session().region_name
train_data_location = 's3://sagemaker-sample-data-{}/tensorflow/iris'.format(region)

iris_estimator.fit(train_data_location)

print("model_data:", iris_estimator.model_data)
print("job_name:", iris_estimator.latest_training_job.name)
