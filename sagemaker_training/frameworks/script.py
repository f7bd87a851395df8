"""Plain script mode: the entry point runs as its own process."""

from __future__ import annotations

from ..host import entry_point
from ..supervision.processes import ProcessSpec
from . import Plan


def script_spec(job, extra_env: dict | None = None, name: str | None = None) -> ProcessSpec:
    """The user's entry point as a main child, with hyperparameters as arguments."""
    env = job.env
    argv = entry_point.command(env.code_dir, env.user_entry_point, env.user_args())
    environ = entry_point.child_environ(env, extra_env)
    entry_point.check_exec_size(argv, environ)
    return ProcessSpec(
        name=name or env.user_entry_point,
        argv=argv,
        env=environ,
        cwd=env.code_dir,
        main=True,
        user_code=True,
    )


def plan(job) -> Plan:
    return Plan(specs=[script_spec(job)], description=f"script mode: {job.env.user_entry_point}")
