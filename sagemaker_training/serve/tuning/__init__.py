"""Hyperparameter tuning jobs through serve: the SDKs' ``HyperparameterTuner``, unchanged.

| module | concern |
|---|---|
| ``space.py`` | a tuning request's checks beyond botocore's model, its parameter ranges as Optuna distributions, the values as the training jobs get them |
| ``strategy.py`` | the search strategies (Bayesian, Random, Grid, Hyperband) and early stopping on Optuna; a study rebuilt from stored jobs |
| ``tuner.py`` | the loop: each InProgress tuning job's next training jobs, their objectives, stopping, the end |
| ``operations.py`` | the SageMaker operations (Create/Describe/List/Stop, the training jobs of a tuning job) |
| ``records.py`` | the tuning job's rows in serve's store (``tuning_jobs``, ``tuning_trials``), an objective's values from a job's log |

Each training job of a tuning job is an ordinary serve training job (the
queue, ``--max-running``, logs, DescribeTrainingJob); the tuning job's own
record and its trials are two tables of serve's SQLite store.
"""
