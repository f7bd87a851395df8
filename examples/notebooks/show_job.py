"""Print a finished job's DescribeTrainingJob and what its model.tar.gz holds; copy it to OUT_DIR/<job>/.

``python examples/notebooks/show_job.py JOB OUT_DIR`` (with serve's exports). Exits 1
unless the job Completed."""

import io
import json
import os
import sys
import tarfile

import boto3


def main(job: str, out_dir: str) -> int:
    description = boto3.client("sagemaker").describe_training_job(TrainingJobName=job)
    description.pop("ResponseMetadata", None)
    print(f"--- {job}: DescribeTrainingJob")
    print(json.dumps(description, indent=2, default=str))
    uri = description["ModelArtifacts"]["S3ModelArtifacts"]
    if description["TrainingJobStatus"] == "Completed":
        bucket, key = uri[len("s3://"):].split("/", 1)
        data = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        target = os.path.join(out_dir, job, "model.tar.gz")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = [m.name for m in tar.getmembers() if m.isfile()]
        print(f"--- {uri} ({len(data)} bytes, copied to {target}):")
        for name in names:
            print(f"  {name}")
    print(f"  job: {job}  {description['TrainingJobStatus']} ({description['SecondaryStatus']}) "
          f"in {description.get('TrainingTimeInSeconds', '?')}s")
    if "FailureReason" in description:
        print(f"  failure: {description['FailureReason'].splitlines()[0]}")
    return 0 if description["TrainingJobStatus"] == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
