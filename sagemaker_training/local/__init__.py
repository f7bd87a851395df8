"""Local mode: a whole training job on this machine, as the platform would run it.

| module | concern |
|---|---|
| ``command.py`` | the command line (``sagemaker-training local``) |
| ``request.py`` | the input: a CreateTrainingJob request read and checked as the API would |
| ``flags.py`` | the flags form: the request the SDK's estimator and ``fit()`` would send |
| ``preflight.py`` | before a job starts: every channel and the destination checked, its claim on name/output and work dir |
| ``job.py`` | one whole job: hosts, channels, checkpoints, artifacts, its state |
| ``state.py`` | the job's state machine, and DescribeTrainingJob as a function of it |
| ``checkpoints.py`` | ``CheckpointConfig``: ``LocalPath`` per host, restored from and synced to ``S3Uri`` |
| ``cluster.py`` | several hosts of one job as real process trees on one machine |
| ``ports.py`` | free ports found, and a job's block of ports reserved on this machine while its hosts run |
| ``locks.py`` | ``flock()``s whose files are removed on release (:class:`Busy` when another process holds one) |
| ``embedded_s3.py`` | the embedded S3 endpoint (``--embedded-s3``) |
| ``progress.py`` | log lines and transfer progress (tqdm on a terminal) |
"""
