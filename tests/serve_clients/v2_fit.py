"""SDK v2 (the current 2.x): a script-mode fit() with metric_definitions, logs=True.

``v2_fit.py FRAMEWORK ENTRY_POINT BUCKET ROLE INSTANCE_COUNT [INPUT_MODE]`` (FRAMEWORK:
tensorflow, with a parameter server on several instances, or mxnet; INPUT_MODE: File or Pipe). Prints ``MODEL_DATA <uri>``, ``JOB <name>`` and
``METRICS <json>`` (the SDK's own view of FinalMetricDataList)."""

import json
import os
import sys

framework, entry_point, bucket, role, count = sys.argv[1:6]
input_mode = sys.argv[6] if len(sys.argv) > 6 else "File"
common = dict(entry_point=os.path.basename(entry_point), source_dir=os.path.dirname(entry_point), role=role,
              output_path=f"s3://{bucket}/artifacts", code_location=f"s3://{bucket}/customcode",
              instance_count=int(count), instance_type="ml.c5.xlarge",
              metric_definitions=[{"Name": "train:loss", "Regex": r"loss=([0-9.]+)"}],
              hyperparameters={"epochs": 3}, input_mode=input_mode)
if framework == "tensorflow":
    from sagemaker.tensorflow import TensorFlow

    distribution = {"parameter_server": {"enabled": True}} if int(count) > 1 else None
    estimator = TensorFlow(framework_version="2.14", py_version="py310", distribution=distribution, **common)
else:
    from sagemaker.mxnet import MXNet

    estimator = MXNet(framework_version="1.9.0", py_version="py38", **common)
estimator.fit({"training": f"s3://{bucket}/data"}, wait=True, logs=True)
job = estimator.latest_training_job.name
print("MODEL_DATA", estimator.model_data)
print("JOB", job)
description = estimator.sagemaker_session.describe_training_job(job)
print("METRICS", json.dumps([{"MetricName": m["MetricName"], "Value": m["Value"]}
                             for m in description.get("FinalMetricDataList", [])]))
