"""SDK 1.72.1: attach() to a running tuning job and stop it (``v1_tune_stop.py TUNING_JOB``)."""

import sys

from sagemaker.tuner import HyperparameterTuner

tuner = HyperparameterTuner.attach(sys.argv[1])
tuner.stop_tuning_job()
print('STOPPED', tuner.sagemaker_session.describe_tuning_job(tuner.latest_tuning_job.name)['HyperParameterTuningJobStatus'])
