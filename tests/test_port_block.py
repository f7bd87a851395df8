"""ports.reserve_port_block: a job's ports are reserved on this machine for as long as it holds
them, so that another job, in another process, never gets any of them. Real processes, real
lock files, real sockets."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from sagemaker_training.local import cluster, ports


def _reserve_in_another_process(size: int, candidates: list[int], lock_dir: str) -> str:
    """The base port another process gets (or its error's first line)."""
    code = textwrap.dedent(f"""
        from sagemaker_training.local.ports import reserve_port_block
        try:
            print(reserve_port_block({size}, candidates={candidates!r}, lock_dir={lock_dir!r}).base)
        except RuntimeError as exc:
            print(exc)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_held_block_is_never_given_to_another_process(tmp_path):
    locks = str(tmp_path / "ports")
    first = ports.free_port_block(6)
    second = ports.free_port_block(12)
    second = second if not set(range(second, second + 6)) & set(range(first, first + 6)) else second + 6
    block = ports.reserve_port_block(6, candidates=[first], lock_dir=locks)
    assert (block.base, list(block.ports)) == (first, list(range(first, first + 6)))
    # the same block, or one overlapping it by one port, goes to nobody else: the next candidate is taken
    assert _reserve_in_another_process(6, [first, second], locks) == str(second)
    assert _reserve_in_another_process(6, [first + 5, second], locks) == str(second)
    assert _reserve_in_another_process(6, [first - 3], locks) == \
        "no block of 6 free ports found that no other job holds"
    block.release()
    # released: its lock files are gone (the other processes ended without releasing theirs: left, unlocked)
    assert sorted(os.listdir(locks)) == sorted(f"{port}.lock" for port in range(second, second + 6))
    assert _reserve_in_another_process(6, [first], locks) == str(first)


def test_a_block_ends_with_the_process_that_held_it(tmp_path):
    locks = str(tmp_path / "ports")
    base = ports.free_port_block(3)
    code = (f"import os; from sagemaker_training.local.ports import reserve_port_block; "
            f"reserve_port_block(3, candidates=[{base}], lock_dir={locks!r}); os._exit(0)")  # no release
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert len(os.listdir(locks)) == 3  # its lock files are left, unlocked
    assert ports.reserve_port_block(3, candidates=[base], lock_dir=locks).base == base


def test_a_port_in_use_is_skipped(tmp_path):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        other = ports.free_port_block(2)
        block = ports.reserve_port_block(2, candidates=[port, other], lock_dir=str(tmp_path / "ports"))
        assert block.base == other
        block.release()


def test_a_cluster_holds_its_ports_while_its_hosts_run_and_releases_them(tmp_path):
    job = cluster.LocalCluster(str(tmp_path / "job"), host_count=2)
    specs = job.specs()
    base = int(specs[0].env["SAGEMAKER_TF_PORT"])
    assert list(job.ports.ports) == list(range(base, base + 2 * cluster.PORTS_PER_HOST))
    assert _reserve_in_another_process(6, [base], ports.port_lock_dir()) == \
        "no block of 6 free ports found that no other job holds"
    job.release_ports()
    assert job.ports is None
    assert _reserve_in_another_process(6, [base], ports.port_lock_dir()) == str(base)
