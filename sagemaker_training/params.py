"""The platform's names and paths, spelled once: what SageMaker writes, reads and shows.

Every layer reads these; this module imports nothing of the package.
"""

from __future__ import annotations

# -- the container's file system -----------------------------------------------------
BASE_DIR = "/opt/ml"  # replaced by $SAGEMAKER_BASE_DIR (several hosts on one machine, tests)
BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
CHECKPOINTS_DIR = BASE_DIR + "/checkpoints"  # CheckpointConfig.LocalPath's default

# -- the hyperparameters the SDKs add to a job's own -----------------------------------
PROGRAM = "sagemaker_program"
SUBMIT_DIRECTORY = "sagemaker_submit_directory"
REGION = "sagemaker_region"
JOB_NAME = "sagemaker_job_name"
LOG_LEVEL = "sagemaker_container_log_level"
REQUIREMENTS = "sagemaker_requirements"
CLOUDWATCH_METRICS = "sagemaker_enable_cloudwatch_metrics"
PARAMETER_SERVER = "sagemaker_parameter_server_enabled"
MULTI_WORKER_MIRRORED = "sagemaker_multi_worker_mirrored_strategy_enabled"
MPI_ENABLED = "sagemaker_mpi_enabled"
MPI_PROCESSES_PER_HOST = "sagemaker_mpi_num_of_processes_per_host"
MPI_OPTIONS = "sagemaker_mpi_custom_mpi_options"
CHECKPOINT_PATH = "checkpoint_path"  # TF script mode's S3 checkpoints (the SDK's estimator)

# -- what DescribeTrainingJob shows ----------------------------------------------------
ACCOUNT = "000000000000"  # the account of ARNs and default buckets on this machine
FAILURE_REASON_LIMIT = 1024  # characters of FailureReason the platform keeps


def account_of(role_arn: str | None) -> str:
    """The account a job belongs to: the role's (``arn:aws:iam::ACCOUNT:role/...``), else :data:`ACCOUNT`."""
    parts = (role_arn or "").split(":")
    return parts[4] if len(parts) >= 6 and parts[4] else ACCOUNT


def training_job_arn(region: str, role_arn: str | None, job_name: str) -> str:
    """The job's ARN, as AWS writes it (the name in lower case)."""
    return f"arn:aws:sagemaker:{region}:{account_of(role_arn)}:training-job/{job_name.lower()}"


def failure_reason(text: str) -> str:
    """``text`` as DescribeTrainingJob's FailureReason: its first :data:`FAILURE_REASON_LIMIT` characters."""
    return text[:FAILURE_REASON_LIMIT]


# -- the region ----------------------------------------------------------------------
# AWS_REGION first: the platform sets it in a training container, and the newer AWS SDKs read it;
# then AWS_DEFAULT_REGION, the variable botocore reads. The toolkit, local mode and serve all use
# this one rule (a region given explicitly, e.g. --region or sagemaker_region, wins over both).
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
DEFAULT_REGION = "us-east-1"


def region_from(environ, given: str | None = None, default: str | None = DEFAULT_REGION) -> str | None:
    """``given``, else the first of :data:`REGION_VARIABLES` set in ``environ``, else ``default``."""
    if given:
        return given
    for name in REGION_VARIABLES:
        if environ.get(name):
            return environ[name]
    return default
