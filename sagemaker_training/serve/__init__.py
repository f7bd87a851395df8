"""``sagemaker-training serve``: a local control plane for the real SageMaker SDKs.

One HTTP server on loopback answers what the SageMaker Python SDK (v1 and v2),
boto3 and the AWS CLI call for training jobs and hyperparameter tuning jobs,
so that their code runs unchanged with ``AWS_ENDPOINT_URL`` pointing at it. Each concern has its
module:

| module | concern |
|---|---|
| ``command.py`` | the command line: start everything, print the exports, shut down |
| ``routes.py`` | the one port: routing by X-Amz-Target, SigV4 credential scope, path-style S3 |
| ``auth.py`` | the state dir's key pair, the SigV4 check of every request (botocore's signers), loopback |
| ``statedir.py`` | the state dir's lock (one server per state dir) and its private modes |
| ``leftovers.py`` | what a SIGKILLed server's jobs left running: tokens recorded, swept at start-up |
| ``s3_keys.py`` | the S3 keys SeaweedFS would alias (empty path segments), refused |
| ``listener.py`` | the socket: listen backlog, connection cap (503 beyond it), read timeout |
| ``bodies.py`` | request bodies in bounded memory: Content-Length or chunked, malformed framing refused |
| ``protocol.py`` | botocore's service models: validation, AWS-shaped errors, JSON 1.1 |
| ``sagemaker.py`` | the SageMaker operations (Create/Describe/List/Stop, tags) |
| ``describe.py`` | DescribeTrainingJob of a stored job: local mode's renderer (local.state.render), adapted |
| ``cloudwatch.py`` | the CloudWatch Logs operations (DescribeLogStreams, GetLogEvents) |
| ``sts.py`` | STS GetCallerIdentity |
| ``store.py`` | SQLite under the state dir: jobs, transitions, log events, metrics, tags |
| ``scheduler.py`` | the queue (``--max-running``), the job processes, stopping |
| ``job_process.py`` | one job's process: local mode's job, its events on a pipe |
| ``metrics.py`` | MetricDefinitions: checked at create, matched in a process of the job's own |
| ``s3.py`` | the embedded S3 (SeaweedFS, persisting under the state dir) and the proxy to it |
| ``tuning/`` | hyperparameter tuning jobs: their operations, the tuner loop, the strategies on Optuna (its ``__init__.py``) |
"""
