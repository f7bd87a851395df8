"""SDK 1.72.1: an MXNet script-mode job with ``input_mode='Pipe'`` whose entry point (argv[1], in
its directory) reads its Pipe-mode channel; fit(wait=True, logs=True), then prints
``STATUS <status>``, ``INPUT_MODE <the job's TrainingInputMode>`` and ``MODEL <model_data>``."""

import os
import sys

from sagemaker.mxnet import MXNet

entry_point, bucket, role = sys.argv[1:4]
estimator = MXNet(entry_point=os.path.basename(entry_point), source_dir=os.path.dirname(entry_point), role=role,
                  output_path=f"s3://{bucket}/artifacts", code_location=f"s3://{bucket}/customcode",
                  train_instance_count=1, train_instance_type="ml.m4.xlarge", framework_version="1.6.0",
                  py_version="py3", input_mode="Pipe")
estimator.fit({"train": f"s3://{bucket}/pipe-data"}, wait=True, logs=True)
answer = estimator.sagemaker_session.sagemaker_client.describe_training_job(
    TrainingJobName=estimator.latest_training_job.name)
print(f"STATUS {answer['TrainingJobStatus']}")
print(f"INPUT_MODE {answer['AlgorithmSpecification']['TrainingInputMode']}")
print(f"MODEL {estimator.model_data}")
