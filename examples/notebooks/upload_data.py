"""Put the seeds' sample data where the seeds read it, in the S3 that ``serve`` embeds.

``python examples/notebooks/upload_data.py`` (with serve's exports) copies
examples/tensorflow/data to ``s3://sagemaker-sample-data-REGION/tensorflow/iris/`` and
examples/mxnet/data to ``.../mxnet/mnist/train/`` and ``.../mxnet/mnist/test/`` (the
demo uses the one MNIST slice as both), as the SageMaker sample-data bucket holds them.
"""

import os

import boto3

EXAMPLES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLACES = {
    "tensorflow/data": ["tensorflow/iris"],
    "mxnet/data": ["mxnet/mnist/train", "mxnet/mnist/test"],
}


def main() -> None:
    s3 = boto3.client("s3")
    bucket = "sagemaker-sample-data-{}".format(boto3.Session().region_name)
    for source, prefixes in PLACES.items():
        folder = os.path.join(EXAMPLES, source)
        for name in sorted(os.listdir(folder)):
            for prefix in prefixes:
                s3.upload_file(os.path.join(folder, name), bucket, f"{prefix}/{name}")
                print(f"s3://{bucket}/{prefix}/{name}")


if __name__ == "__main__":
    main()
