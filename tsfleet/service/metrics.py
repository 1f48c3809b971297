"""Prometheus metrics and a health check for ``tsfleet serve`` (``--metrics HOST:PORT``).

``GET /metrics`` answers in the Prometheus text format (version 0.0.4);
``GET /healthz`` answers 200 ``ok`` while the writer runs and the broker (when
one is configured) is connected and subscribed, else 503 with the reason.

Every figure is read when scraped from what the server already counts (the
writer's totals, the subscriber's state, the queue), plus three things
gathered here: payloads and readings received per transport (counted at
submit), the receive-to-commit latency of every payload (a histogram, fed by
the commit hook) and a copy of the ``freshness`` view (each analysis's last
run, duration, status and staleness), refreshed on the writer thread, which
owns the store, at most every ``refresh_s`` seconds. A scrape never touches
the store, so it cannot block ingest.

>>> h = Histogram((0.1, 1.0))
>>> h.observe(0.05); h.observe(0.5); h.observe(3.0)
>>> h.counts, h.count, round(h.total, 2)
([1, 2], 3, 3.55)
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tsfleet.live.server import Server

log = logging.getLogger("tsfleet.service")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Receive-to-commit latency buckets, seconds (the batch delay is 0.5 s by default).
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class Histogram:
    """Cumulative buckets, a sum and a count (thread-safe enough: one writer thread)."""

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS_S):
        self.buckets = tuple(sorted(buckets))
        self.counts = [0] * len(self.buckets)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Text:
    """Builds the exposition: one ``# HELP``/``# TYPE`` pair per family."""

    def __init__(self):
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[dict[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def histogram(self, name: str, help_text: str, h: Histogram) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} histogram")
        for bound, n in zip(h.buckets, h.counts, strict=True):
            self.lines.append(f'{name}_bucket{{le="{_number(bound)}"}} {n}')
        self.lines.append(f'{name}_bucket{{le="+Inf"}} {h.count}')
        self.lines.append(f"{name}_sum {_number(h.total)}")
        self.lines.append(f"{name}_count {h.count}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class ServeMetrics:
    """What ``tsfleet serve`` exposes; see the module docstring."""

    def __init__(self, refresh_s: float = 5.0):
        self.refresh_s = refresh_s
        self.received: Counter = Counter()          # (transport) -> payloads
        self.received_rows: Counter = Counter()     # (transport) -> readings and facts
        self.rejected: Counter = Counter()          # reason -> whole payloads refused
        self.latency = Histogram()
        self.started_at = time.time()
        self.last_commit_at: float | None = None
        self.freshness: list[dict] = []
        self.freshness_at = 0.0
        self.refresh_cpu_s = 0.0  # CPU seconds spent copying the freshness view
        self._lock = threading.Lock()

    # -- hooks (called by the server) ------------------------------------------------
    def counting(self, submit: Callable) -> Callable:
        """Wrap ``Writer.submit`` to count what arrives, per transport."""
        def counted(env) -> None:
            with self._lock:
                self.received[env.transport] += 1
                self.received_rows[env.transport] += env.decoded.n_rows if env.decoded else 0
            submit(env)
        return counted

    def on_commit(self, batch, committed_at: float) -> None:
        """The writer's commit hook: latency of each payload and rejection reasons."""
        for env in batch:
            self.latency.observe(max(0.0, committed_at - env.received_at))
            if env.reject is not None:
                self.rejected[env.reject.reason] += 1
        self.last_commit_at = committed_at

    def refresh(self, fleet) -> None:
        """Copy the freshness view (writer thread; at most every ``refresh_s``)."""
        now = time.monotonic()
        if now - self.freshness_at < self.refresh_s:
            return
        self.freshness_at = now
        cpu0 = time.thread_time()
        try:
            self.freshness = fleet.query(
                "select analysis, epoch(last_run_at) as last_run_s, duration_s, status, "
                "stale_s, n_failures_since_ok from freshness")
        except Exception as exc:  # noqa: BLE001 - metrics never stop ingest
            log.warning("metrics: reading the freshness view failed: %s", exc)
        self.refresh_cpu_s += time.thread_time() - cpu0

    # -- exposition ------------------------------------------------------------------
    def render(self, server: Server) -> str:
        t = _Text()
        with self._lock:
            received, rows = dict(self.received), dict(self.received_rows)
        t.family("tsfleet_messages_received_total", "counter",
                 "Payloads received, per transport.",
                 [({"transport": k}, v) for k, v in sorted(received.items())])
        t.family("tsfleet_readings_received_total", "counter",
                 "Rows decoded from received payloads (readings and other facts), per transport.",
                 [({"transport": k}, v) for k, v in sorted(rows.items())])
        w = server.writer
        s = w.stats if w is not None else None
        if s is not None:
            t.family("tsfleet_messages_stored_total", "counter",
                     "Payloads committed (stored, quarantined or refused with a reason).",
                     [({}, s.n_messages)])
            t.family("tsfleet_readings_stored_total", "counter",
                     "Rows accepted into the store.", [({}, s.n_accepted)])
            t.family("tsfleet_duplicates_total", "counter",
                     "Rows already in the store (redeliveries, retransmissions).",
                     [({}, s.n_duplicates)])
            by_reason = Counter(getattr(s, "quarantined_by_reason", {}) or {})
            by_reason.update({f"payload:{k}": v for k, v in self.rejected.items()})
            t.family("tsfleet_quarantined_total", "counter",
                     "Rows quarantined by the pipeline, and whole payloads refused "
                     "(reason payload:...), per reason.",
                     [({"reason": k}, v) for k, v in sorted(by_reason.items())])
            t.family("tsfleet_unmapped_fields_total", "counter",
                     "Fields kept in the unmapped table.", [({}, s.n_unmapped)])
            t.family("tsfleet_set_aside_deleted_total", "counter",
                     "Quarantined live rows and unmapped fields deleted, oldest first, to "
                     "keep --quarantine-keep, per table.",
                     [({"table": k}, v) for k, v in sorted(
                         {"quarantine_rows": 0, "unmapped_item_rows": 0,
                          **s.n_set_aside_deleted}.items())])
            t.family("tsfleet_redelivered_total", "counter",
                     "MQTT messages the broker redelivered.", [({}, s.n_redelivered)])
            t.family("tsfleet_batches_total", "counter", "Commits.", [({}, s.n_batches)])
            t.family("tsfleet_queue_depth", "gauge",
                     "Payloads received and waiting for the writer.", [({}, w._q.qsize())])
            t.family("tsfleet_writer_up", "gauge", "1 while the writer thread runs.",
                     [({}, float(w._thread.is_alive() and w.error is None))])
        t.histogram("tsfleet_commit_latency_seconds",
                    "Seconds from receiving a payload to committing it.", self.latency)
        if self.last_commit_at is not None:
            t.family("tsfleet_last_commit_timestamp_seconds", "gauge",
                     "Unix time of the last commit.", [({}, self.last_commit_at)])
        sub = server.subscriber
        if sub is not None:
            broker = {"broker": f"{sub.host}:{sub.port}", "client_id": sub.client_id}
            t.family("tsfleet_mqtt_connected", "gauge",
                     "1 while connected and subscribed to the broker.",
                     [(broker, float(sub.subscribed.is_set()))])
            t.family("tsfleet_mqtt_connects_total", "counter", "Accepted MQTT connections.",
                     [(broker, sub.n_connects)])
            t.family("tsfleet_mqtt_failures_total", "counter",
                     "Failed or lost MQTT connections and refused subscriptions.",
                     [(broker, getattr(sub, "n_failures", 0))])
            resumed = getattr(sub, "session_resumed", None)
            if resumed is not None:
                t.family("tsfleet_mqtt_session_resumed", "gauge",
                         "1 when the last connection resumed the persistent session.",
                         [(broker, float(resumed))])
        ua = getattr(server, "opcua", None)
        if ua is not None:
            lbl, st = {"server": ua.url}, ua.stats
            t.family("tsfleet_opcua_connected", "gauge",
                     "1 while connected to the OPC UA server and subscribed.",
                     [(lbl, float(ua.connected.is_set()))])
            t.family("tsfleet_opcua_connects_total", "counter", "Accepted OPC UA connections.",
                     [(lbl, st.n_connects)])
            t.family("tsfleet_opcua_failures_total", "counter",
                     "Failed or lost OPC UA connections.", [(lbl, st.n_failures)])
            t.family("tsfleet_opcua_monitored_items", "gauge",
                     "Nodes monitored in the current subscription.", [(lbl, st.n_items)])
            t.family("tsfleet_opcua_values_total", "counter",
                     "Data changes received from the subscription.", [(lbl, st.n_values)])
            t.family("tsfleet_opcua_rejected_total", "counter",
                     "Values rejected (bad status, not a number) per reason; repeats counted.",
                     [(dict(lbl, reason=k), v) for k, v in sorted(st.by_reason.items())])
            t.family("tsfleet_opcua_dropped_total", "counter",
                     "Values dropped because the writer held too many already.",
                     [(lbl, st.n_dropped)])
        fresh = self.freshness
        t.family("tsfleet_analysis_last_run_timestamp_seconds", "gauge",
                 "Unix time the analysis last ran.",
                 [({"analysis": r["analysis"]}, r["last_run_s"]) for r in fresh
                  if r["last_run_s"] is not None])
        t.family("tsfleet_analysis_duration_seconds", "gauge",
                 "Duration of the analysis's last run.",
                 [({"analysis": r["analysis"]}, r["duration_s"]) for r in fresh
                  if r["duration_s"] is not None])
        t.family("tsfleet_analysis_ok", "gauge", "1 when the analysis's last run succeeded.",
                 [({"analysis": r["analysis"]}, float(r["status"] == "ok")) for r in fresh
                  if r["status"] is not None])
        t.family("tsfleet_analysis_stale_seconds", "gauge",
                 "Age of the oldest received data the analysis's results do not reflect yet.",
                 [({"analysis": r["analysis"]}, r["stale_s"]) for r in fresh
                  if r["stale_s"] is not None])
        t.family("tsfleet_start_time_seconds", "gauge", "Unix time serve started.",
                 [({}, self.started_at)])
        return t.text()

    def health(self, server: Server) -> tuple[bool, str]:
        """(healthy, reason)."""
        w = server.writer
        if w is None or not w._thread.is_alive() or w.error is not None:
            return False, f"writer stopped: {getattr(w, 'error', None) or 'not running'}"
        sub = server.subscriber
        if sub is not None and not sub.subscribed.is_set():
            return False, (f"MQTT not connected to {sub.host}:{sub.port}: "
                           f"{getattr(sub, 'last_error', None) or 'connecting'}")
        return True, "ok"


class MetricsEndpoint:
    """``/metrics`` and ``/healthz`` on ``host:port`` in a daemon thread."""

    def __init__(self, metrics: ServeMetrics, server: Server, host: str, port: int):
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                cpu0 = time.thread_time()
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    code, body, ctype = 200, metrics.render(server), CONTENT_TYPE
                elif path == "/healthz":
                    ok, reason = metrics.health(server)
                    code, body, ctype = (200 if ok else 503), reason + "\n", "text/plain"
                else:
                    code, body, ctype = 404, "not found: try /metrics or /healthz\n", "text/plain"
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                endpoint.n_scrapes += path == "/metrics"
                endpoint.cpu_s += time.thread_time() - cpu0

            def log_message(self, *args):  # no access log on stderr
                pass

        self.n_scrapes = 0
        self.cpu_s = 0.0  # CPU seconds spent answering (bench/metrics_overhead.py)
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="tsfleet-metrics",
                                       daemon=True)

    def start(self) -> MetricsEndpoint:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def with_metrics(metrics: ServeMetrics, fleet, on_commit, between_commits):
    """The writer's commit hook and between-commits task, with the metrics' own added."""
    def commit(batch, committed_at):
        metrics.on_commit(batch, committed_at)
        if on_commit is not None:
            on_commit(batch, committed_at)

    def between():
        metrics.refresh(fleet)
        if between_commits is not None:
            return between_commits()
        return None

    return commit, between
