"""SDK 1.72.1: fit(wait=False), wait until the job trains (its log shows a step), stop it, wait for the end.

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
logs = estimator.sagemaker_session.boto_session.client("logs")  # as the SDK makes its own


def logged(text):
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=job.name + "/")["logStreams"]
    return any(text in event["message"] for stream in streams
               for event in logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                                logStreamName=stream["logStreamName"], startFromHead=True)["events"])


while client.describe_training_job(TrainingJobName=job.name)["SecondaryStatus"] != "Training":
    time.sleep(0.5)
while not logged("step 1"):  # the entry point is training: it has logged its second step
    time.sleep(0.2)
job.stop()
try:
    job.wait(logs=True)
except Exception as exc:  # noqa: BLE001
    print(f"RAISED {type(exc).__name__}: {exc}")
answer = client.describe_training_job(TrainingJobName=job.name)
print(f"STATUS {answer['TrainingJobStatus']} {answer['SecondaryStatus']}")
