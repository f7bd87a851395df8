"""A local job's channels onto its hosts, as their input mode says.

Each channel (listed and checked by preflight.py) reaches the hosts as its
input mode says: File (and FastFile, run as File) downloaded into every
host's ``input/data/<channel>`` (:func:`download`), Pipe fed as FIFOs while
the hosts run (:func:`pipe_feeds`, pipes.py). ``ShardedByS3Key`` deals the
objects the same way in both (:func:`shares`).
"""

from __future__ import annotations

import os
import shutil

from ..storage import transfer
from .pipes import Feed
from .progress import Transfer


def is_sharded(channel, hosts: list) -> bool:
    return channel.distribution == "ShardedByS3Key" and len(hosts) > 1


def shares(channel, entries: list, hosts: list) -> dict:
    """The objects each host gets: all of them, or with ``ShardedByS3Key`` on
    several hosts the i-th object (in key order) to host i mod N."""
    if is_sharded(channel, hosts):
        return {host: entries[i::len(hosts)] for i, host in enumerate(hosts)}
    return {host: list(entries) for host in hosts}


def _where(channel) -> str:
    return f"channel {channel.name} <- {channel.uri}{'' if channel.is_s3 else ' (local path)'}"


def download(cluster, channel, entries: list, region: str, client, log) -> None:
    """File mode: the channel into every host's ``input/data/<channel>`` (a
    replicated channel is downloaded once, into the first host, then copied)."""
    hosts = cluster.hosts
    dirs = {h: os.path.join(cluster.base_dir(h), "input", "data", channel.name) for h in hosts}
    for path in dirs.values():
        os.makedirs(path, exist_ok=True)
    sharded = is_sharded(channel, hosts)
    dealt = shares(channel, entries, hosts) if sharded else {hosts[0]: entries}
    pairs = [(entry, os.path.join(dirs[host], *entry.relative.split("/")))
             for host, share in dealt.items() for entry in share]
    with Transfer(log, _where(channel), sum(e.size for e, _ in pairs), len(pairs)) as progress:
        for entry, target in pairs:
            transfer.fetch(entry, target, region, what=channel.field, client=client, progress=progress)
    if not sharded:
        for host in hosts[1:]:
            shutil.copytree(dirs[hosts[0]], dirs[host], dirs_exist_ok=True)


def pipe_feeds(cluster, channel, entries: list, region: str, client, log) -> list:
    """Pipe mode: a feeder per host of this channel (pipes.py); nothing is
    downloaded. A feeder that fails stops the hosts (the job then fails)."""

    def read(entry):
        return transfer.read_chunks(entry, region, what=channel.field, client=client)

    log(f"{_where(channel)}: Pipe mode, FIFOs {channel.name}_0, {channel.name}_1, ... in every host's input/data")
    return [Feed(os.path.join(cluster.base_dir(host), "input", "data"), channel.name, share, read,
                 recordio_wrap=channel.record_wrapper == "RecordIO", host=host, log=log,
                 on_error=lambda reason: cluster.stop())
            for host, share in shares(channel, entries, cluster.hosts).items()]
