"""SDK v2 (the current 2.x): an MXNet script-mode estimator's tuning cell with Hyperband,
then ``analytics().dataframe()``.

``v2_tune.py ENTRY_POINT BUCKET ROLE`` tunes learning_rate (and the epochs as Hyperband's
resource) on the ``training`` channel ``s3://BUCKET/data``; objective: the last ``loss=`` of the
log, minimized. Prints ``TUNING <name>``, ``BEST <job>`` and ``FRAME <json rows>``."""

import json
import os
import sys

from sagemaker.mxnet import MXNet
from sagemaker.tuner import (ContinuousParameter, HyperbandStrategyConfig, HyperparameterTuner,
                             StrategyConfig)

entry_point, bucket, role = sys.argv[1:4]
estimator = MXNet(entry_point=os.path.basename(entry_point), source_dir=os.path.dirname(entry_point), role=role,
                  framework_version="1.9.0", py_version="py38", instance_count=1, instance_type="ml.c5.xlarge",
                  output_path=f"s3://{bucket}/artifacts", code_location=f"s3://{bucket}/customcode",
                  hyperparameters={"epochs": 4})
tuner = HyperparameterTuner(
    estimator, objective_metric_name="loss", objective_type="Minimize",
    hyperparameter_ranges={"learning_rate": ContinuousParameter(0.001, 0.5, scaling_type="Logarithmic")},
    metric_definitions=[{"Name": "loss", "Regex": r"loss=([0-9.]+)"}],
    strategy="Hyperband", strategy_config=StrategyConfig(HyperbandStrategyConfig(max_resource=4, min_resource=1)),
    max_jobs=4, max_parallel_jobs=2, random_seed=7, base_tuning_job_name="mx-tune")
tuner.fit({"training": f"s3://{bucket}/data"}, wait=False)
print("TUNING", tuner.latest_tuning_job.name)
tuner.wait()
print("BEST", tuner.best_training_job())
frame = tuner.analytics().dataframe()
print("FRAME", frame.to_json(orient="records"))
