"""SDK 1.72.1: a legacy TensorFlow estimator's tuning cell, then attach() to it.

``v1_tune.py SOURCE_DIR BUCKET ROLE`` tunes ``iris_tuned.py`` (learning_rate, log scale) with the
Bayesian strategy, objective: the evaluation's accuracy in the job's log. Prints ``TUNING <name>``,
``BEST <training job>`` and ``ATTACHED <json>`` (what attach() learned)."""

import json
import sys

from sagemaker.tensorflow import TensorFlow
from sagemaker.tuner import ContinuousParameter, HyperparameterTuner

source_dir, bucket, role = sys.argv[1:4]
estimator = TensorFlow(entry_point='iris_tuned.py', source_dir=source_dir, role=role,
                       output_path='s3://{}/artifacts'.format(bucket),
                       code_location='s3://{}/customcode'.format(bucket),
                       train_instance_count=1, train_instance_type='ml.c4.xlarge',
                       training_steps=40, evaluation_steps=5)
tuner = HyperparameterTuner(estimator, objective_metric_name='accuracy', objective_type='Maximize',
                            hyperparameter_ranges={'learning_rate': ContinuousParameter(0.01, 0.5, 'Logarithmic')},
                            metric_definitions=[{'Name': 'accuracy', 'Regex': r'accuracy = ([0-9\.]+)'}],
                            strategy='Bayesian', max_jobs=3, max_parallel_jobs=2, base_tuning_job_name='iris-tune')
tuner.fit('s3://sagemaker-sample-data-us-west-2/tensorflow/iris')
print('TUNING', tuner.latest_tuning_job.name)
tuner.wait()
print('BEST', tuner.best_training_job())
attached = HyperparameterTuner.attach(tuner.latest_tuning_job.name)
print('ATTACHED ' + json.dumps({
    'strategy': attached.strategy, 'max_jobs': attached.max_jobs, 'max_parallel_jobs': attached.max_parallel_jobs,
    'objective': attached.objective_metric_name, 'estimator': type(attached.estimator).__name__,
    'training_steps': attached.estimator.training_steps,
    'ranges': sorted(attached.hyperparameter_ranges()['ContinuousParameterRanges'][0].items())}))
