"""The seeds' first cell, in the form that runs against ``sagemaker-training serve``.

The seed notebooks call ``get_execution_role()`` and name a bucket of
yours; ``get_execution_role()`` asks IAM, which no local endpoint answers,
so the role is written out (any ARN of that shape: nothing is assumed) and
the bucket is the one ``serve --bucket`` created (``NOTEBOOK_BUCKET``).
Everything else is the seeds' own text.
"""

import os

import sagemaker

sagemaker_session = sagemaker.Session()
role = os.environ.get("NOTEBOOK_ROLE", "arn:aws:iam::123456789012:role/service-role/AmazonSageMaker-ExecutionRole-20171201T000000")
bucket = os.environ.get("NOTEBOOK_BUCKET", "sagemaker-notebooks")
custom_code_upload_location = 's3://{}/customcode/tensorflow_iris'.format(bucket)
model_artifacts_location = 's3://{}/artifacts'.format(bucket)
