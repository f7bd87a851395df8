"""SDK 1.72.1: an MXNet script-mode job whose entry point (argv[1], in its directory) raises.

Prints ``RAISED <type>: <message>`` when fit() raises, as the notebook would show it."""

import os
import sys

from sagemaker.mxnet import MXNet

entry_point, bucket, role = sys.argv[1:4]
estimator = MXNet(entry_point=os.path.basename(entry_point), source_dir=os.path.dirname(entry_point), role=role,
                  output_path=f"s3://{bucket}/artifacts", code_location=f"s3://{bucket}/customcode",
                  train_instance_count=1, train_instance_type="ml.m4.xlarge", framework_version="1.6.0",
                  py_version="py3")
try:
    estimator.fit({"train": f"s3://{bucket}/data"})
except Exception as exc:  # noqa: BLE001 - show what the user would see
    print(f"RAISED {type(exc).__name__}: {exc}")
    sys.exit(0)
print("fit() returned")
