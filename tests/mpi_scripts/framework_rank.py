"""An MPI rank that computes with the job's framework (SAGEMAKER_FRAMEWORK), then Allreduces with mpi4py."""

import json
import os

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
framework = os.environ.get("SAGEMAKER_FRAMEWORK") or "none"
if framework == "tensorflow":
    import tensorflow as tf

    value = float(tf.reduce_sum(tf.fill([rank + 1], 1.0)).numpy())
    version = tf.__version__
elif framework == "mxnet":
    import mxnet as mx

    value = float(mx.nd.ones((rank + 1,)).sum().asscalar())
    version = mx.__version__
else:
    value, version = float(rank + 1), None
total = np.zeros(1)
comm.Allreduce(np.array([value]), total, op=MPI.SUM)
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], f"rank-{rank}.json"), "w") as f:
    json.dump({"rank": rank, "size": size, "sum": float(total[0]), "framework": framework, "version": version,
               "host": os.environ["SM_CURRENT_HOST"]}, f)
