"""The other hosts of a parameter-server job, seen through their ports.

TensorFlow's gRPC runtime does not end a task when a peer goes away: a
parameter server blocks in ``server.join()`` forever, and a trainer whose
parameter server died retries (``MonitoredSession`` treats
``UnavailableError`` as recoverable) until its own deadline, hours later.
So every host of a parameter-server job watches its peers by TCP connect,
without importing TensorFlow:

* :func:`watch` runs as an auxiliary child of each host
  (``python -m sagemaker_training.frameworks.tensorflow.peers``). It fails,
  naming the host and task, when a peer's parameter server does not come up
  within ``SAGEMAKER_TF_PEER_START_SECONDS`` (600) or, once up, goes away
  while this host's trainer still runs. A failing auxiliary child fails the
  host, which stops its own parameter server, which the other hosts' watchers
  then see: one dead task ends the whole job within seconds.
* :func:`wait_closed` is what a host does once its trainer succeeded
  (``Plan.on_mains_done``): it keeps its parameter server up while another
  trainer may need it: until the master's port closes
  (``SAGEMAKER_TF_MASTER_WAIT_SECONDS``, 3600), then until every other
  worker's port closes (``SAGEMAKER_TF_PEER_WAIT_SECONDS``, 120: longer
  than TensorFlow's worker start delay of at most 60 s; workers stop within
  a step once the master is done). Then the supervisor stops them.

When this host's trainer has finished, ``on_mains_done`` gets the
watcher's handle from the supervisor and sends it SIGTERM before it waits:
the watcher then exits at once and quietly instead of reporting the peers
that end normally. Nothing is written to disk for that.

Every bound is read with :func:`sagemaker_training.core.settings.seconds`: a
value that is not a number >= 0 is a ClientError naming the variable.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

from ...core import settings
from ...core.values import Value
from ...errors import PlatformError, record

START_ENV = "SAGEMAKER_TF_PEER_START_SECONDS"
PEER_WAIT_ENV = "SAGEMAKER_TF_PEER_WAIT_SECONDS"
MASTER_WAIT_ENV = "SAGEMAKER_TF_MASTER_WAIT_SECONDS"
POLL_ENV = "SAGEMAKER_TF_PEER_POLL_SECONDS"

DEFAULTS = {START_ENV: 600.0, PEER_WAIT_ENV: 120.0, MASTER_WAIT_ENV: 3600.0, POLL_ENV: 0.5}


def seconds(name: str, environ=None) -> float:
    """A bound from the environment, or its default when unset (a bad value is a ClientError)."""
    return settings.seconds(name, DEFAULTS[name], environ)


class Endpoint(Value):
    """One task of the cluster: ``task`` is ``"ps 1"``, ``"master"``, ``"worker 0"``;
    ``watch``: a parameter server, whose loss ends the job."""

    _fields = ("task", "host", "address", "port", "watch")

    def __init__(self, task: str, host: str, address: str, port: int, watch: bool = True):
        self.task = task
        self.host = host
        self.address = address
        self.port = int(port)
        self.watch = watch

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self._fields}

    @property
    def where(self) -> str:
        return f"{self.address}:{self.port}"

    def describe(self) -> str:
        return f"{self.task} on {self.host} ({self.where})"


def endpoints(tf_config: dict, hosts) -> list[Endpoint]:
    """Every task of a parameter-server TF_CONFIG, with the host it runs on.

    The layout is :func:`sagemaker_training.host.distributed.tf_config_parameter_servers`'s:
    ``ps`` i on the i-th host (sorted), ``master`` on the first, ``worker`` i
    on the (i+1)-th.
    """
    hosts = sorted(hosts)
    cluster = tf_config["cluster"]
    found = []
    offsets = {"ps": 0, "master": 0, "chief": 0, "worker": 1}
    for kind in ("master", "chief", "worker", "ps"):
        for index, where in enumerate(cluster.get(kind, [])):
            address, _, port = where.rpartition(":")
            task = kind if kind in ("master", "chief") else f"{kind} {index}"
            found.append(Endpoint(task=task, host=hosts[index + offsets[kind]], address=address,
                                  port=int(port), watch=kind == "ps"))
    return found


def is_open(endpoint: Endpoint, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at the endpoint now."""
    try:
        with socket.create_connection((endpoint.address, endpoint.port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_closed(targets, bound: float, poll: float = 0.5, log=None, sleep=time.sleep,
                clock=time.monotonic, stopping=lambda: False) -> list:
    """Wait until nothing listens on any of ``targets`` any more, at most
    ``bound`` seconds, or until ``stopping()``; return the endpoints still open."""
    deadline = clock() + bound
    remaining = list(targets)
    announced = False
    while True:
        remaining = [e for e in remaining if is_open(e)]
        if not remaining or stopping():
            return remaining
        if clock() >= deadline:
            break
        if log and not announced:
            log.info("waiting up to %gs for %s to finish", bound, ", ".join(e.describe() for e in remaining))
            announced = True
        sleep(min(poll, max(0.0, deadline - clock())))
    if remaining and log:
        log.warning("%s still running after %gs; stopping this host's parameter server anyway",
                    ", ".join(e.describe() for e in remaining), bound)
    return remaining


class PeerLost(PlatformError):
    """A task on another host is gone (or never came up)."""

    advice = "The root cause is in that host's log (its first error); this host only lost its peer."


class Watch:
    """The watcher's state; :meth:`step` probes once and raises :class:`PeerLost`."""

    def __init__(self, targets, me: str, start_bound: float, peer_wait: float, clock=time.monotonic,
                 probe=is_open):
        self.targets = list(targets)
        self.me = me
        self.start_bound = start_bound
        self.peer_wait = peer_wait
        self.clock = clock
        self.probe = probe
        self.started = clock()
        self.seen: set = set()
        self.gone_since: dict = {}

    def step(self, confirm: float) -> None:
        now = self.clock()
        for target in self.targets:
            key = target.where
            if self.probe(target):
                self.seen.add(key)
                self.gone_since.pop(key, None)
                continue
            if key in self.seen:
                self.gone_since.setdefault(key, now)
                if target.watch and now - self.gone_since[key] >= confirm:
                    raise PeerLost(self._lost_message(target))
            elif target.watch and now - self.started > self.start_bound:
                raise PeerLost(
                    f"{target.describe()} did not start within {self.start_bound:g}s, so {self.me} cannot train: "
                    f"that host failed or has not started. {START_ENV} sets the bound."
                )

    def _lost_message(self, target: Endpoint) -> str:
        text = f"{target.describe()} went away while {self.me} was still running"
        masters = [t for t in self.targets
                   if not t.watch and t.task in ("master", "chief") and t.where in self.gone_since]
        if masters:
            ago = self.clock() - self.gone_since[masters[0].where]
            text += (f" (the {masters[0].task} on {masters[0].host} had ended {ago:.0f}s before: every worker must "
                     f"finish within {PEER_WAIT_ENV}={self.peer_wait:g}s of the master)")
        else:
            text += ": that host failed or was stopped"
        return text


def watch(targets, me: str, environ=None, sleep=time.sleep) -> None:
    """Probe the peers until stopped (SIGTERM); raise PeerLost on a lost peer."""
    poll = seconds(POLL_ENV, environ)
    state = Watch(targets, me, seconds(START_ENV, environ), seconds(PEER_WAIT_ENV, environ))
    # A port that closes because the whole job is ending normally closes a moment after this host's
    # trainer exits: confirm a loss over two probes before blaming the peer.
    confirm = max(1.0, 2 * poll)
    while True:
        state.step(confirm)
        sleep(poll)


# --------------------------------------------------------------------------
# The watcher child


def spec_argv(targets, me: str) -> list:
    """The command line of a watcher child."""
    payload = json.dumps({"me": me, "targets": [t.as_dict() for t in targets]})
    return [sys.executable, "-m", __name__, payload]


@record
def main(argv=None) -> None:
    import argparse  # noqa: PLC0415 - only the watcher child parses arguments

    parser = argparse.ArgumentParser(description="watch a TensorFlow job's peer tasks")
    parser.add_argument("config", help="JSON: {me, targets: [{task, host, address, port, watch}]}")
    args = parser.parse_args(argv)
    config = json.loads(args.config)
    targets = [Endpoint(**t) for t in config["targets"]]

    def stop(signum, frame):  # noqa: ARG001 - the supervisor stands the watcher down: at once, quietly
        os._exit(0)

    import signal  # noqa: PLC0415

    signal.signal(signal.SIGTERM, stop)
    watch(targets, config["me"])


if __name__ == "__main__":
    main()
