"""An mpi4py rank: Allreduce of (rank + 1) over the world; what it saw goes to a JSON file per rank."""

import argparse
import json
import os
import signal
import sys
import time

import numpy as np
from mpi4py import MPI

parser = argparse.ArgumentParser()
parser.add_argument("--fail-rank", type=int, default=-1)
parser.add_argument("--kill-rank", type=int, default=-1)
parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
parser.add_argument("--sleep", type=float, default=0)
args = parser.parse_args()


def on_sigterm(signum, frame):  # what a stopped job does: save its state, then end
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], f"stopped-{rank}"), "w") as f:
        f.write(os.environ["SM_CURRENT_HOST"])
    sys.exit(143)


signal.signal(signal.SIGTERM, on_sigterm)

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
if rank == args.fail_rank:
    raise ValueError(f"rank {rank} was told to fail")
if rank == args.kill_rank:
    os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
total = np.zeros(1)
comm.Allreduce(np.array([rank + 1.0]), total, op=MPI.SUM)
seen = {"rank": rank, "size": size, "sum": float(total[0]), "host": os.environ["SM_CURRENT_HOST"],
        "hostname": MPI.Get_processor_name(), "mark": os.environ.get("MPI_TEST_MARK")}
print(f"rank {rank} of {size} on {seen['host']}: sum {seen['sum']:g}", flush=True)
out = os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], f"rank-{rank}.json")
with open(out, "w") as f:
    json.dump(seen, f)
if rank == 0:
    with open(os.path.join(args.model_dir, "model.json"), "w") as f:
        json.dump({"sum": float(total[0]), "size": size}, f)
time.sleep(args.sleep)
comm.Barrier()
