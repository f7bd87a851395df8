"""The supervisor: child processes started, streamed, signalled and reaped to an outcome.

| module | concern |
|---|---|
| ``processes.py`` | the supervisor: its children to an outcome (pidfds), signals passed on |
| ``child.py`` | one started child: exec guard, output streams, pidfd, process group, error record |
| ``guard.py`` | the exec guard every child (and serve's processes) starts through: the parent-death signal without ``preexec_fn`` |
| ``streams.py`` | a child's output line by line in bounded memory, the stderr tail |
| ``failures.py`` | a finished child as a one-line failure reason |
| ``orphans.py`` | the subreaper flag and the sweep of a job's orphans |
| ``signals.py`` | the stopping signals: their names, one installer of SIGTERM/SIGINT handlers (put back after), forwarding |
| ``stopping.py`` | SIGTERM/SIGINT from the first line of ``train`` until the supervisor runs |
| ``report.py`` | an outcome as (failure text, exit code); ``output/success`` / ``output/failure`` |
"""
