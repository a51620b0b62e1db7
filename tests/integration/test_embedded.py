"""The embedded PostgreSQL and Redis, started for real in a short temporary data dir."""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg2
import pytest
import redis

from gateway.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedServerError,
    ServerUrls,
    free_port,
    servers,
)

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PORTS = {5432, 6379}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short on purpose: unix socket paths and PGDATA paths over ~100 bytes break PostgreSQL.
    path = Path(tempfile.mkdtemp(prefix="sg", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def postgres(data_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(data_dir / "pg")
    yield server
    server.stop()


@pytest.fixture
def redis_server(data_dir: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(data_dir / "redis")
    yield server
    server.stop()


def query(url: str, statement: str) -> list[tuple[object, ...]]:
    with closing(psycopg2.connect(url, connect_timeout=2)) as conn, conn.cursor() as cur:
        cur.execute(statement)
        rows = cur.fetchall() if cur.description else []
        conn.commit()
        return rows


def ping(url: str) -> bool:
    with redis.Redis.from_url(url, socket_connect_timeout=2) as client:
        return bool(client.ping())


def refuses(url: str) -> bool:
    host_port = url.split("@")[-1].split("//")[-1].split("/")[0]
    host, port = host_port.split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) != 0


def test_free_port_is_bindable_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_postgres_serves_the_smsgw_database_over_tcp(postgres: EmbeddedPostgres) -> None:
    url = postgres.start()

    assert url.startswith("postgresql://postgres@127.0.0.1:")
    assert url.endswith("/smsgw")
    assert url == postgres.url
    assert int(url.rsplit(":", 1)[1].split("/")[0]) not in SYSTEM_PORTS
    assert query(url, "SELECT 1, current_database()") == [(1, "smsgw")]
    assert query(url, "SHOW synchronous_commit") == [("on",)]
    assert query(url, "SHOW fsync") == [("on",)]
    assert query(url, "SHOW max_connections") == [("200",)]
    assert query(url, "SHOW listen_addresses") == [("127.0.0.1",)]


def test_postgres_start_is_idempotent(postgres: EmbeddedPostgres) -> None:
    assert postgres.start() == postgres.start()


def test_postgres_restart_keeps_port_and_data(data_dir: Path) -> None:
    first = EmbeddedPostgres(data_dir / "pg")
    url = first.start()
    query(url, "CREATE TABLE kept (id int); INSERT INTO kept VALUES (42)")
    first.stop()
    assert refuses(url)

    second = EmbeddedPostgres(data_dir / "pg")
    try:
        assert second.start() == url
        assert query(url, "SELECT id FROM kept") == [(42,)]
    finally:
        second.stop()


def test_postgres_kill_then_start_recovers_committed_rows(postgres: EmbeddedPostgres) -> None:
    url = postgres.start()
    query(url, "CREATE TABLE durable (id int); INSERT INTO durable VALUES (7)")

    postgres.kill()
    assert refuses(url)

    assert postgres.start() == url
    assert query(url, "SELECT id FROM durable") == [(7,)]


def test_postgres_url_before_start_is_an_error(data_dir: Path) -> None:
    with pytest.raises(EmbeddedServerError, match="not started"):
        _ = EmbeddedPostgres(data_dir / "pg").url


def test_postgres_start_failure_shows_the_log(data_dir: Path) -> None:
    with socket.socket() as taken:  # bound, not listening: probes are refused at once
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        server = EmbeddedPostgres(data_dir / "pg", port=port)
        with pytest.raises(EmbeddedServerError, match=r"(?s)did not accept.*could not bind"):
            server.start()


def test_redis_answers_ping(redis_server: EmbeddedRedis) -> None:
    url = redis_server.start()

    assert url.startswith("redis://127.0.0.1:")
    assert url.endswith("/0")
    assert int(url.rsplit(":", 1)[1].split("/")[0]) not in SYSTEM_PORTS
    assert ping(url)
    assert redis_server.start() == url


def test_redis_restart_keeps_port(data_dir: Path) -> None:
    first = EmbeddedRedis(data_dir / "redis")
    url = first.start()
    first.stop()
    assert refuses(url)

    second = EmbeddedRedis(data_dir / "redis")
    try:
        assert second.start() == url
        assert ping(url)
    finally:
        second.stop()


def test_redis_kill_then_start_recovers(redis_server: EmbeddedRedis) -> None:
    url = redis_server.start()

    redis_server.kill()
    assert refuses(url)

    assert redis_server.start() == url
    assert ping(url)


def test_redis_start_failure_shows_the_log(data_dir: Path) -> None:
    with socket.socket() as taken:  # bound, not listening: probes are refused at once
        taken.bind(("127.0.0.1", 0))
        server = EmbeddedRedis(data_dir / "redis", port=taken.getsockname()[1])
        with pytest.raises(EmbeddedServerError, match=r"(?s)did not accept.*in use"):
            server.start()


def test_servers_starts_both_and_stops_them_on_exit(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.embedded")
    with servers(data_dir, None, None) as urls:
        assert query(urls.database_url, "SELECT 1") == [(1,)]
        assert ping(urls.redis_url)

    assert refuses(urls.database_url)
    assert refuses(urls.redis_url)
    messages = [r.getMessage() for r in caplog.records if r.name == "gateway.embedded"]
    assert any("embedded PostgreSQL at " + urls.database_url in m for m in messages)
    assert any("embedded Redis at " + urls.redis_url in m for m in messages)


def test_servers_stops_them_on_exception(data_dir: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), servers(data_dir, None, None) as urls:
        raise RuntimeError("boom")

    assert refuses(urls.database_url)
    assert refuses(urls.redis_url)


def test_servers_with_urls_starts_nothing(data_dir: Path) -> None:
    given = ServerUrls("postgresql://db.example:5432/smsgw", "redis://cache.example:6379/0")

    with servers(data_dir, given.database_url, given.redis_url) as urls:
        assert urls == given

    assert list(data_dir.iterdir()) == []


def test_servers_starts_only_the_missing_one(data_dir: Path, redis_server: EmbeddedRedis) -> None:
    redis_url = redis_server.start()

    with servers(data_dir / "gw", None, redis_url) as urls:
        assert urls.redis_url == redis_url
        assert query(urls.database_url, "SELECT 1") == [(1,)]

    assert not (data_dir / "gw" / "redis").exists()
    assert ping(redis_url)


GATEWAY_KILLED_MID_RUN = """
import sys, time
from pathlib import Path
from gateway.embedded import EmbeddedPostgres, EmbeddedRedis
data_dir = Path(sys.argv[1])
print(EmbeddedPostgres(data_dir / "pg").start(), EmbeddedRedis(data_dir / "redis").start())
sys.stdout.flush()
time.sleep(60)
"""


def start_then_kill_a_gateway(data_dir: Path) -> tuple[str, str]:
    """A process starts both servers and is SIGKILLed: the servers outlive it."""
    gateway = subprocess.Popen(
        [sys.executable, "-c", GATEWAY_KILLED_MID_RUN, str(data_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert gateway.stdout is not None
    with gateway.stdout:
        db_url, redis_url = gateway.stdout.readline().split()
    gateway.send_signal(signal.SIGKILL)
    gateway.wait()
    return db_url, redis_url


def test_servers_left_by_a_killed_gateway_are_reused(data_dir: Path) -> None:
    db_url, redis_url = start_then_kill_a_gateway(data_dir)
    pg_pid = (data_dir / "pg" / "data" / "postmaster.pid").read_text().split()[0]
    redis_pid = (data_dir / "redis" / "redis.pid").read_text().strip()

    with servers(data_dir, None, None) as urls:
        assert urls == ServerUrls(db_url, redis_url)
        assert (data_dir / "pg" / "data" / "postmaster.pid").read_text().split()[0] == pg_pid
        assert (data_dir / "redis" / "redis.pid").read_text().strip() == redis_pid
        assert query(urls.database_url, "SELECT 1") == [(1,)]
        assert ping(urls.redis_url)

    assert refuses(db_url)
    assert refuses(redis_url)


def test_kill_of_a_reused_postgres_then_start_recovers(data_dir: Path) -> None:
    db_url, redis_url = start_then_kill_a_gateway(data_dir)

    postgres = EmbeddedPostgres(data_dir / "pg")
    redis_server = EmbeddedRedis(data_dir / "redis")
    try:
        assert postgres.start() == db_url
        assert redis_server.start() == redis_url
        postgres.kill()
        redis_server.kill()
        # The same ports, unless another program took one meanwhile (then a free one).
        db_url, redis_url = postgres.start(), redis_server.start()
        assert query(db_url, "SELECT 1") == [(1,)]
        assert ping(redis_url)
    finally:
        postgres.stop()
        redis_server.stop()
