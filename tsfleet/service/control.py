"""The control interface of ``tsfleet serve``: every other command, through the one writer.

DuckDB lets one process write a file, and while it does no other process may even read
it. So ``serve`` answers for the store: an HTTP server on 127.0.0.1 (a port the OS
chooses), announced in ``<store>.serve.json`` and protected by the token of
``<store>.serve.token`` (mode 0600; see :mod:`tsfleet.remote`).

``POST /cli`` ``{"argv": [...], "cwd": "..."}`` runs ``tsfleet``'s own ``main`` in this
process and answers ``{"rc", "stdout", "stderr"}``: exactly what the command prints
without serve. The command opens the store through :func:`tsfleet.cliutil.open_fleet`,
which here hands it the server's store instead of a file:

- a command that opens it read-only (``sql``, ``device``, ``alerts list``, ``info``,
  ``snapshot``, ...) runs on the request's thread on a fresh cursor of serve's
  connection: DuckDB's MVCC gives it a consistent view while ingest commits;
- a command that writes (``ingest``, ``analyze``, registrations, ``alerts ack`` and
  ``silence``, ``workorders`` that plans) is run again as a whole on the writer thread,
  between two batches (:meth:`Writer.call`): one writer, no write conflicts, and a
  file's rows land once. It first waits for a running analysis (which runs on a thread
  of its own, :mod:`tsfleet.service.worker`) and none starts until it is done.

``POST /query`` ``{"sql", "params"}`` answers ``{"rows": [...], "types": {column: DuckDB
type}}`` for :class:`tsfleet.remote.ServedFleet`, which reads the values back by their types
(a decimal comes as its exact text, a UUID as text). Both refuse SQL other than queries. Requests
without the token get 401; the interface never listens beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsfleet.errors import InvalidParameter, TsfleetError, sql_error
from tsfleet.remote import advert_path, token_path

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet
    from tsfleet.live.writer import Writer

log = logging.getLogger("tsfleet.service")

HOST = "127.0.0.1"
#: The largest request body accepted, bytes.
MAX_BODY = 1 << 20
#: The most a command may print through the interface (stdout and stderr each), bytes.
MAX_OUTPUT = 64 << 20
#: Commands that never run inside serve: they open stores of their own (``snmp-poll``
#: polls in its own process and sends serve only its results, ``--store-polled``).
REFUSED = ("serve", "demo", "snmp-poll")
#: Statement types a read may run (DuckDB's StatementType names).
READ_STATEMENTS = ("SELECT", "EXPLAIN", "PRAGMA")


def snmp_scheduled(targets: str) -> str:
    """Why ``snmp-poll`` is refused beside a serve that polls SNMP on its own schedule."""
    return (f"tsfleet serve polls SNMP itself (--snmp-targets {targets}); add the agents to "
            "that file: polled from here too, their intervals would be counted twice")


def _query_default(v: object) -> object:
    """JSON of a value of :meth:`ServedFleet.query`'s rows: times as ISO text (a
    ``timestamptz`` with its offset, a ``timestamp`` naive as the store holds it), which
    the client reads back, by the answer's column types, as the times ``Fleet.query``
    returns (:func:`tsfleet.remote.decode_rows`); the CLI's ``--format json`` writes them
    with ``Z`` (:func:`tsfleet.cliutil.utc_iso`)."""
    from datetime import date

    from tsfleet.cliutil import json_default

    return v.isoformat() if isinstance(v, date) else json_default(v)


class OutputTooLarge(TsfleetError, OSError):
    """A command printed more than :data:`MAX_OUTPUT` through the interface."""


class NeedsWriter(BaseException):  # noqa: N818 - a signal, not an error: nothing may catch it
    """A command run on a request thread asked to write: it is run again on the writer."""


class _Buffer(io.StringIO):
    def __init__(self, limit: int):
        super().__init__()
        self.limit, self.n = limit, 0

    def write(self, text: str) -> int:
        self.n += len(text)
        if self.n > self.limit:
            raise OutputTooLarge(f"the command printed more than {self.limit >> 20} MiB through "
                                 "tsfleet serve; narrow it (a LIMIT, a --format csv export "
                                 "of a snapshot)")
        return super().write(text)

    def isatty(self) -> bool:
        return False


class _Router(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` while the interface runs: what a thread running a
    command prints goes to that command's buffer, everything else where it went."""

    def __init__(self, original, local: threading.local, name: str):
        self.original, self.local, self.name = original, local, name

    def _target(self):
        return getattr(self.local, self.name, None) or self.original

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self._target().isatty()

    @property
    def encoding(self) -> str:
        return getattr(self._target(), "encoding", None) or "utf-8"

    def fileno(self) -> int:
        return self._target().fileno()

    def __getattr__(self, name: str):
        return getattr(self._target(), name)


class _Streams:
    """Routes ``sys.stdout`` and ``sys.stderr`` through :class:`_Router` while a control
    interface runs (several servers may share a process, as in tests)."""

    lock = threading.Lock()
    users = 0
    local = threading.local()

    @classmethod
    def _ensure(cls) -> None:
        """Wrap the current streams (whoever replaced them since: a test harness)."""
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout, cls.local, "out")
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr, cls.local, "err")

    @classmethod
    def install(cls) -> None:
        with cls.lock:
            cls.users += 1
            cls._ensure()

    @classmethod
    def uninstall(cls) -> None:
        with cls.lock:
            cls.users -= 1
            if cls.users == 0:
                for name in ("stdout", "stderr"):
                    stream = getattr(sys, name)
                    if isinstance(stream, _Router):
                        setattr(sys, name, stream.original)

    @classmethod
    @contextlib.contextmanager
    def capture(cls, out: _Buffer, err: _Buffer):
        with cls.lock:
            cls._ensure()
        cls.local.out, cls.local.err = out, err
        try:
            yield
        finally:
            cls.local.out = cls.local.err = None


def _borrowed(fleet: Fleet, con, *, read_only: bool, owns: bool, pin=None) -> Fleet:
    from tsfleet.fleet import Fleet
    return Fleet.borrow(con, fleet.path, read_only=read_only, owns=owns,
                        unknown_devices=fleet.unknown_devices, pin=pin)


def read_cursor(fleet: Fleet):
    """A new cursor of serve's connection, set up as tsfleet sets up its connections."""
    cur = fleet.con.cursor()
    cur.execute("SET TimeZone = 'UTC'")
    return cur


def check_query(cur, sql: str) -> None:
    """Refuse anything but queries, as DuckDB refuses writes to a read-only store."""
    import duckdb
    try:
        statements = cur.extract_statements(sql)
    except duckdb.Error as exc:
        raise sql_error(exc) from None
    for st in statements:
        kind = str(st.type).rsplit(".", 1)[-1]
        if kind not in READ_STATEMENTS:
            raise TsfleetError(f"SQL error: the store is held by tsfleet serve, which runs "
                               f"queries only through its control interface, got a {kind} "
                               "statement (ingest and the other commands write through it)")


class _Opener:
    """What :func:`tsfleet.cliutil.open_fleet` returns inside serve."""

    def __init__(self, fleet: Fleet, writer: Writer, on_writer: bool):
        self.fleet, self.writer, self.on_writer = fleet, writer, on_writer

    @staticmethod
    def check_sql(con, sql: str) -> None:
        check_query(con, sql)

    def __call__(self, read_only: bool) -> Fleet:
        if self.on_writer:  # the writer's own connection, which the writer keeps open
            return _borrowed(self.fleet, self.fleet.con, read_only=read_only, owns=False)
        if not read_only:
            raise NeedsWriter
        return _borrowed(self.fleet, read_cursor(self.fleet), read_only=True, owns=True,
                         pin=self.writer.call)  # tsfleet snapshot: between two batches


class ControlServer:
    """Serve's control interface: start() it after the writer, stop() it before."""

    def __init__(self, fleet: Fleet, writer: Writer, *, port: int = 0,
                 run_command: Callable[..., int] | None = None,
                 write_timeout: float | None = None, exclusive=None,
                 snmp_targets: str | None = None):
        if fleet.path is None:
            raise InvalidParameter("an in-memory store has no control interface")
        self.fleet, self.writer = fleet, writer
        self.run_command = run_command  # tsfleet.cli.main, handed over by the serve command
        self.requested_port = port
        self.write_timeout = write_timeout
        #: held while a write runs: the analysis thread's lock (tsfleet.service.worker), so
        #: that a forwarded write never runs beside an analysis (None: nothing to take)
        self.exclusive = exclusive if exclusive is not None else contextlib.nullcontext()
        #: serve's own SNMP targets file (--snmp-targets): its poller keeps the counters in
        #: memory, so ``snmp-poll`` beside it is refused (both would count an interval)
        self.snmp_targets = snmp_targets
        self.advert_path = advert_path(fleet.path)
        self.token_path = token_path(fleet.path)
        self.token = ""
        self.port = 0
        self.n_requests = 0
        self._busy = 0
        self._busy_lock = threading.Condition()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> ControlServer:
        self.token = secrets.token_urlsafe(32)
        _write_private(self.token_path, self.token + "\n")
        try:
            self._httpd = ThreadingHTTPServer((HOST, self.requested_port), _handler(self))
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.token_path.unlink()
            raise TsfleetError(f"the control interface cannot listen on {HOST}:"
                               f"{self.requested_port}: {exc.strerror or exc} (see "
                               "--control-port, --no-control)") from None
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        _Streams.install()
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="tsfleet-control", daemon=True)
        self._thread.start()
        _write_private(self.advert_path, json.dumps({
            "pid": os.getpid(), "host": HOST, "port": self.port,
            "token_file": str(self.token_path.resolve()),
            "store": str(Path(self.fleet.path).resolve()), "started_at": time.time(),
            "snmp_targets": self.snmp_targets}) + "\n")
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Withdraw the advert, refuse new requests, wait for those running."""
        if self._httpd is None:
            return
        for path in (self.advert_path, self.token_path):
            with contextlib.suppress(OSError):
                path.unlink()
        self._httpd.shutdown()
        self._httpd.server_close()
        deadline = time.monotonic() + timeout
        with self._busy_lock:
            while self._busy and time.monotonic() < deadline:
                self._busy_lock.wait(0.1)
        _Streams.uninstall()
        self._httpd = None

    # -- requests ------------------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        scheme, _, token = (header or "").partition(" ")
        return scheme == "Bearer" and hmac.compare_digest(token.strip().encode(),
                                                          self.token.encode())

    def run_cli(self, argv: list[str], cwd: str | None) -> dict[str, Any]:
        """Run one ``tsfleet`` command line here; ``{rc, stdout, stderr}``."""
        command = _command(argv)
        if self.run_command is None:
            return {"rc": 2, "stdout": "",
                    "stderr": "tsfleet: error: this serve was started without the tsfleet "
                              "command line (ServeConfig.run_command); only /query is served\n"}
        if command == "snmp-poll" and self.snmp_targets:
            return {"rc": 2, "stdout": "",
                    "stderr": f"tsfleet: error: {snmp_scheduled(self.snmp_targets)}\n"}
        if command in REFUSED and not (command == "snmp-poll" and "--store-polled" in argv):
            return {"rc": 2, "stdout": "",
                    "stderr": f"tsfleet: error: {command} cannot run while tsfleet serve "
                              f"(pid {os.getpid()}) holds the store\n"}
        try:
            return self._attempt(argv, cwd, on_writer=False)
        except NeedsWriter:
            with self.exclusive:  # waits for a running analysis, on this request's thread
                return self.writer.call(lambda: self._attempt(argv, cwd, on_writer=True),
                                        timeout=self.write_timeout)

    def _attempt(self, argv: list[str], cwd: str | None, *, on_writer: bool) -> dict[str, Any]:
        from tsfleet.cliutil import SERVED

        out, err = _Buffer(MAX_OUTPUT), _Buffer(MAX_OUTPUT)
        token = SERVED.set(_Opener(self.fleet, self.writer, on_writer))
        try:
            with _Streams.capture(out, err):
                try:
                    rc = self.run_command(argv, cwd=cwd)
                except SystemExit as exc:  # argparse: --help, a usage error
                    rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None
                                                                     else 2)
                    if isinstance(exc.code, str):
                        print(exc.code, file=sys.stderr)
                except Exception as exc:  # noqa: BLE001 - a bug: one line there, the trace here
                    log.exception("control: %s failed", " ".join(argv)[:200])
                    print(f"tsfleet: error: internal error in tsfleet serve: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                          " (traceback in serve's log)", file=sys.stderr)
                    rc = 1
        finally:
            SERVED.reset(token)
            if on_writer:  # nothing a command left open may hold the writer's connection
                with contextlib.suppress(Exception):
                    self.fleet.con.execute("rollback")
        return {"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()}

    def run_query(self, sql: str, params: list) -> dict[str, Any]:
        """Rows of one read-only query as JSON-ready dicts: a decimal as its exact text
        (the client reads it back as a Decimal; a float would round it), the rest as the
        CLI's records have them (:func:`tsfleet.cliutil.plain`)."""
        from tsfleet.cliutil import plain

        cur = read_cursor(self.fleet)
        try:
            check_query(cur, sql)
            import duckdb
            try:
                rel = cur.execute(sql, params)
            except duckdb.Error as exc:
                raise sql_error(exc) from None
            names = [d[0] for d in rel.description or []]
            types = {n: str(d[1]) for n, d in zip(names, rel.description or [], strict=True)}
            rows = [dict(zip(names, (str(v) if isinstance(v, Decimal) else plain(v)
                                     for v in r), strict=True))
                    for r in rel.fetchall()]
        finally:
            cur.close()
        # the column types let the client read a time back as the time Fleet.query gives
        text = json.dumps({"rows": rows, "types": types}, default=_query_default)
        if len(text) > MAX_OUTPUT:
            raise OutputTooLarge(f"the answer holds more than {MAX_OUTPUT >> 20} MiB; narrow "
                                 "the query")
        return json.loads(text)

    def enter(self) -> None:
        with self._busy_lock:
            self._busy += 1
            self.n_requests += 1

    def leave(self) -> None:
        with self._busy_lock:
            self._busy -= 1
            self._busy_lock.notify_all()


def _command(argv: list[str]) -> str | None:
    """The command word of a command line (after the global ``--db PATH``)."""
    args = list(argv)
    while args:
        word = args.pop(0)
        if word == "--db":
            args[:1] = []
        elif not word.startswith("-"):
            return word
    return None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, replacing it atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(OSError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _handler(control: ControlServer):
    class Handler(BaseHTTPRequestHandler):
        server_version = "tsfleet-control"

        def log_message(self, fmt: str, *args: object) -> None:  # not on serve's stderr
            log.debug("control: " + fmt, *args)

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if not control.authorized(self.headers.get("Authorization")):
                return self._answer(401, {"error": "a valid token is required"})
            self._answer(405, {"error": "use POST /cli or POST /query"})

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            if not control.authorized(self.headers.get("Authorization")):
                return self._answer(401, {"error": "a valid token is required "
                                                   "(Authorization: Bearer <token file>)"})
            if self.path not in ("/cli", "/query"):
                return self._answer(404, {"error": f"no endpoint {self.path[:100]}"})
            try:
                n = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                n = -1
            if not 0 < n <= MAX_BODY:
                return self._answer(413 if n > MAX_BODY else 400,
                                    {"error": f"a JSON body of 1..{MAX_BODY} bytes is needed"})
            try:
                body = json.loads(self.rfile.read(n))
                if not isinstance(body, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                return self._answer(400, {"error": f"the body is not a JSON object: {exc}"})
            control.enter()
            try:
                self._dispatch(body)
            finally:
                control.leave()

        def _dispatch(self, body: dict) -> None:
            if self.path == "/cli":
                argv, cwd = body.get("argv"), body.get("cwd")
                if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)) \
                        or not (cwd is None or isinstance(cwd, str)):
                    return self._answer(400, {"error": "argv must be a list of strings and "
                                                       "cwd a string"})
                try:
                    return self._answer(200, control.run_cli(argv, cwd))
                except TsfleetError as exc:  # the writer stopped, a timeout
                    return self._answer(200, {"rc": 2, "stdout": "",
                                              "stderr": f"tsfleet: error: {exc}\n"})
            sql, params = body.get("sql"), body.get("params") or []
            if not isinstance(sql, str) or not isinstance(params, list):
                return self._answer(400, {"error": "sql must be a string, params a list"})
            try:
                return self._answer(200, control.run_query(sql, params))
            except TsfleetError as exc:
                return self._answer(200, {"error": str(exc)})

    return Handler
