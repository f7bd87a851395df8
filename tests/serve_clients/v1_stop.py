"""SDK 1.72.1: fit(wait=False), wait until the job trains, stop it, wait for the end.

The entry point (argv[1], in its directory) trains long; prints ``STATUS <status>``
of the last DescribeTrainingJob."""

import os
import sys
import time

from sagemaker.mxnet import MXNet

entry_point, bucket, role = sys.argv[1:4]
estimator = MXNet(entry_point=os.path.basename(entry_point), source_dir=os.path.dirname(entry_point), role=role,
                  output_path=f"s3://{bucket}/artifacts", code_location=f"s3://{bucket}/customcode",
                  train_instance_count=1, train_instance_type="ml.m4.xlarge", framework_version="1.6.0",
                  py_version="py3")
estimator.fit({"train": f"s3://{bucket}/data"}, wait=False)
job = estimator.latest_training_job
client = estimator.sagemaker_session.sagemaker_client
while client.describe_training_job(TrainingJobName=job.name)["SecondaryStatus"] != "Training":
    time.sleep(0.5)
time.sleep(3)
job.stop()
try:
    job.wait(logs=True)
except Exception as exc:  # noqa: BLE001
    print(f"RAISED {type(exc).__name__}: {exc}")
answer = client.describe_training_job(TrainingJobName=job.name)
print(f"STATUS {answer['TrainingJobStatus']} {answer['SecondaryStatus']}")
