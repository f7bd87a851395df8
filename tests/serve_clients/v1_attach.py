"""SDK 1.72.1: TensorFlow.attach(JOB) and what it learned, as JSON on the last line."""

import json
import sys

from sagemaker.tensorflow import TensorFlow

estimator = TensorFlow.attach(sys.argv[1])
print("ATTACHED " + json.dumps({"model_data": estimator.model_data, "training_steps": estimator.training_steps,
                  "evaluation_steps": estimator.evaluation_steps, "entry_point": estimator.entry_point,
                  "job_name": estimator.latest_training_job.name}))
