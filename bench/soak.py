"""Soak: ``tsfleet serve`` ingests MQTT at 1,000+ readings/s and analyses continuously.

    PYTHONPATH=. python bench/soak.py                                    # 3 min, 1,000 devices
    PYTHONPATH=. python bench/soak.py --devices 10000 --history-days 30 --seconds 1800
    PYTHONPATH=. python bench/soak.py --hostile --seconds 600     # issue 22: mixed good and bad

Setup (not measured): a store with ``--history-days`` of simulated history for
``--devices`` devices, ending now, analysed once. Then a real mosquitto on
127.0.0.1, ``python -m tsfleet serve`` as a child process with the analysis
cadence ``--analyze-every`` (default: the built-in cadences), and a QoS 1
publisher in this process sending SenML JSON packs (one device, 5 metrics x
``--steps`` times each) round-robin over the devices at ``--rate`` readings/s
for ``--seconds``. After the last acknowledgement it waits until the server
holds every reading, then stops it with SIGTERM (a clean shutdown).

Printed figures (targets of issue 11):

- freshness per analysis: the worst staleness over the soak, i.e. for each
  successful run, how old the oldest received batch it was the first to cover
  was when it finished (and, at the end, how old the oldest uncovered batch is);
  target <= 300 s. Computed from ``analysis_runs`` and ``ingest_batches``.
- memory: the server's peak RSS (VmHWM) at the end of the warm-up and at the
  end; target end <= 1.2 x warm-up. The warm-up lasts ``--warmup`` seconds and
  until every analysis has run twice (the first run at start sees only the first
  seconds of data, the second the whole fleet: its working set; growth after
  that is what the target is about).
- readings published (acknowledged by the broker) vs stored; target: no loss.

Issue 23 (analyses off the ingest path):

- publish-to-commit latency of each message: its publish time here, and the time of the
  first commit of serve (serve's ``-v`` log line ``committed ... rows``, with the time it
  was written) after which serve had committed as many rows as were published up to that
  message (one publisher, QoS 1: in order). p50/p99/max **during analyses** (the message's
  window, publish to commit, overlaps a run in ``analysis_runs``) and outside; target
  p99 <= 2 s during analyses.
- ``--cli-loop``: while the soak runs, a loop of reads through serve's control interface
  as the CLI forwards them (``tsfleet.remote.run_remote``): ``sql``, ``device ID``,
  ``alerts list``, ``workorders --no-plan``, one at a time; every 25th round the same four as
  real ``python -m tsfleet`` processes (the CLI finding serve by itself). Failures are
  counted (target 0) and the device card's p50/p99 printed (target p99 <= 100 ms).
- ``--analyses-on-writer``: serve runs the analyses on its writer thread between commits,
  the design before issue 23: the baseline of the same machine.

``--hostile`` (issue 22): ``--messages`` per second (default 1,000), a share
``--bad-share`` (default 0.5) of them hostile payloads from
:mod:`tsfleet.live.hostile` (seeded), the rest good packs as above. Lost means
good readings published and not stored (counted over the soak's own devices);
the server must still be up at the end, exit 0, and its RSS stay within 1.2 x of
the warm-up's. Serving is complete when mosquitto's ``$SYS`` counts show no QoS 1
message left queued (read every second), i.e. ``serve`` acknowledged them all.
Also printed: good readings stored per second and their publish-to-stored latency
(p50/p99: the pack's time to the end of its ingest batch, from the store).

Memory trace (any mode): serve's RSS and the store's WAL size every ``--trace-every``
seconds (a WAL that shrinks is a checkpoint); with ``--trace-duckdb`` also serve's
``duckdb_memory()`` every 0.25 s through its control interface. Printed: RSS
quantiles after the warm-up, the RSS rise around each checkpoint beside the same
rise at 400 random instants (a control), and the highest peaks with the nearest
checkpoint, whether an analysis ran, and DuckDB's memory by tag. ``--keep`` saves the
trace as ``rss_trace.npy`` (seconds, VmRSS kB, WAL bytes).
"""

from __future__ import annotations

import argparse
import bisect
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt

from tsfleet import Fleet
from tsfleet.domain import DOMAINS
from tsfleet.live.broker import LocalBroker
from tsfleet.live.hostile import hostile
from tsfleet.live.senml import encode_json
from tsfleet.remote import find_server, run_remote
from tsfleet.service.cadence import parse_every
from tsfleet.simulate import SimConfig, simulate

ROOT = Path(__file__).resolve().parents[1]
#: analyses serve runs on its writer thread by default (they write tables ingest writes)
ON_WRITER = [d.name for d in DOMAINS if d.shares_ingest_tables]

#: metric -> (SenML name, unit, start value, step sd)
METRICS = {"battery_pct": ("battery", "%EL", 80.0, 0.0), "temperature_c": ("temp", "Cel", 21.0,
                                                                           0.3),
           "humidity_pct": ("hum", "%RH", 45.0, 0.5), "rssi_dbm": ("rssi", "dBm", -80.0, 1.0),
           "battery_voltage_v": ("battery_voltage", "V", 3.6, 0.0)}

FRESHNESS_SQL = """
with ok as (
    select analysis, run_id, finished_at, to_batch_id,
           coalesce(lag(to_batch_id) over (partition by analysis order by run_id), ?) as prev_to
    from analysis_runs where status = 'ok'
),
per_run as (
    select o.analysis, o.finished_at,
           date_diff('millisecond', min(cast(b.finished_at as timestamp)), o.finished_at) / 1e3
               as stale_s
    from ok o join ingest_batches b on b.batch_id > o.prev_to and b.batch_id <= o.to_batch_id
    where o.finished_at >= ? and b.batch_id > ?
    group by o.analysis, o.run_id, o.finished_at
),
tail as (
    select l.analysis, date_diff('millisecond', min(cast(b.finished_at as timestamp)), ?) / 1e3
               as stale_s
    from (select analysis, max(to_batch_id) as to_batch_id from ok group by 1) l
    join ingest_batches b on b.batch_id > l.to_batch_id and b.batch_id > ?
    group by 1
)
select r.analysis, count(*) filter (where r.status = 'ok') as n_ok,
       count(*) filter (where r.status = 'failed') as n_failed,
       median(r.duration_s) as median_s, max(r.duration_s) as max_s,
       median(r.n_items) as median_items, sum(r.duration_s) as total_s,
       greatest(max(p.stale_s), max(t.stale_s)) as worst_stale_s,
       max(t.stale_s) as end_stale_s
from analysis_runs r
left join (select analysis, max(stale_s) as stale_s from per_run group by 1) p
    on p.analysis = r.analysis
left join tail t on t.analysis = r.analysis
where r.started_at >= ?
group by r.analysis order by r.analysis
"""


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, kB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


class Tracer:
    """Samples serve's VmRSS and the size of the store's WAL every ``every`` seconds on a
    thread: a WAL that shrinks is a checkpoint (DuckDB's automatic one at a commit, or
    one tsfleet asks for), which is how RSS peaks are told apart from analyses."""

    def __init__(self, pid: int, wal: Path, every: float, db: str | None = None):
        self.pid, self.wal, self.every = pid, wal, every
        self.t0 = time.monotonic()
        #: (seconds since start, VmRSS kB, WAL bytes)
        self.samples: list[tuple[float, int, int]] = []
        #: (seconds since start, {tag: MB}) of serve's duckdb_memory(), with ``db``
        self.duck: list[tuple[float, dict]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if db is not None:
            threading.Thread(target=self._duck, args=(db,), daemon=True).start()

    def _duck(self, db: str) -> None:
        """duckdb_memory() of serve, through its control interface, every 0.25 s."""
        from tsfleet.remote import request
        advert = None
        while advert is None and not self.stop.wait(0.2):
            advert = find_server(db)
        while not self.stop.wait(0.25):
            try:
                rows = request(advert, "/query", {"sql": (
                    "select tag, memory_usage_bytes // 1048576 as mb from duckdb_memory() "
                    "where memory_usage_bytes >= 1048576"), "params": []}, 10)["rows"]
            except Exception:  # noqa: BLE001 - a sample missed
                continue
            self.duck.append((time.monotonic() - self.t0, {r["tag"]: r["mb"] for r in rows}))

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                rss = rss_kb(self.pid)[0]
            except (OSError, KeyError):
                return
            try:
                wal = self.wal.stat().st_size
            except OSError:
                wal = 0
            self.samples.append((time.monotonic() - self.t0, rss, wal))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)

    def checkpoints(self) -> list[tuple[float, int]]:
        """(time, WAL bytes before) of each WAL shrink."""
        s = self.samples
        return [(s[i][0], s[i - 1][2]) for i in range(1, len(s)) if s[i][2] < s[i - 1][2]]

    def report(self, after: float, runs: list[tuple[float, float]], top: int = 6) -> None:
        """RSS quantiles after ``after`` s and its highest peaks, each with the nearest
        checkpoint and whether an analysis (``runs``: start, end in this clock) ran."""
        s = [x for x in self.samples if x[0] >= after]
        if not s:
            return
        rss = np.array([x[1] for x in s]) / 1024
        cps = self.checkpoints()
        print(f"memory trace (every {self.every:g} s, {len(s):,} samples after {after:.0f} s): "
              f"RSS median {np.median(rss):.0f} MB, p95 {np.quantile(rss, .95):.0f}, "
              f"p99 {np.quantile(rss, .99):.0f}, max {rss.max():.0f}; checkpoints "
              f"(WAL shrinks) {len(cps)} over the run, WAL before them median "
              f"{np.median([c[1] for c in cps]) / 2**20 if cps else 0:.1f} MB, "
              f"max {max((c[1] for c in cps), default=0) / 2**20:.1f} MB")
        ts = np.array([x[0] for x in self.samples])
        ms = np.array([x[1] for x in self.samples]) / 1024

        def rise(at: float) -> float:  # max in [-1, +1.5] s less the median of [-5, -1] s
            base = ms[(ts >= at - 5) & (ts < at - 1)]
            near = ms[(ts >= at - 1) & (ts <= at + 1.5)]
            return float(near.max() - np.median(base)) if len(base) and len(near) else 0.0

        at_cp = [rise(c[0]) for c in cps]
        ctrl = [rise(x) for x in np.random.default_rng(0).uniform(ts[0] + 6, ts[-1] - 2, 400)]
        if at_cp:
            print(f"  RSS rise around each checkpoint (max within -1..+1.5 s less the median of "
                  f"the 4 s before): median {np.median(at_cp):.0f} MB, p90 "
                  f"{np.quantile(at_cp, .9):.0f}, max {max(at_cp):.0f}; the same at 400 random "
                  f"instants: median {np.median(ctrl):.0f}, p90 {np.quantile(ctrl, .9):.0f}, "
                  f"max {max(ctrl):.0f}")
        if self.duck:
            tot = np.array([sum(d.values()) for t, d in self.duck if t >= after])
            if len(tot):
                print(f"  serve's duckdb_memory() total (every 0.25 s): median "
                      f"{np.median(tot):.0f} MB, max {tot.max():.0f} MB")
        peaks = []
        for i in np.argsort(-rss):  # highest first, at least 3 s apart
            t = s[i][0]
            if all(abs(t - p[0]) >= 3 for p in peaks):
                peaks.append((t, rss[i]))
            if len(peaks) == top:
                break
        for t, mb in sorted(peaks):
            near = min(cps, key=lambda c: abs(c[0] - t), default=None)
            cp = f"checkpoint at {near[0] - t:+.1f} s (WAL {near[1] / 2**20:.1f} MB)" \
                if near else "no checkpoint"
            an = any(a - 0.5 <= t <= b + 0.5 for a, b in runs)
            duck = min(self.duck, key=lambda d: abs(d[0] - t), default=None)
            tags = "" if duck is None or abs(duck[0] - t) > 0.5 else \
                "; duckdb_memory MB " + " ".join(f"{k} {v}" for k, v in sorted(
                    duck[1].items(), key=lambda kv: -kv[1]))
            print(f"  peak {mb:6.0f} MB at t={t:6.1f} s: {cp}; "
                  f"{'during an analysis' if an else 'no analysis running'}{tags}")


def items(n) -> str:
    return "all" if n is None else f"{n:.0f}"


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def prepare(db: str, devices: int, history_days: int) -> list[str]:
    """A store with simulated history up to now, analysed once; returns the device ids."""
    fleet = Fleet(db)
    if history_days > 0:
        start = (now_utc() - timedelta(days=history_days)).replace(minute=0, second=0,
                                                                   microsecond=0)
        sim = simulate(SimConfig(n_devices=devices, days=history_days, seed=11, start=start))
        sim.write(fleet)
        t = time.perf_counter()
        fleet.analyze()
        print(f"setup: {fleet.info()['rows']['readings']:,} readings of history, analysed in "
              f"{time.perf_counter() - t:.1f} s", flush=True)
        ids = [r[0] for r in fleet.con.execute("select device_id from devices order by 1")
               .fetchall()]
    else:
        ids = [f"soak-{i:05d}" for i in range(devices)]
    fleet.close()
    return ids


class Serve:
    """``python -m tsfleet serve -v`` as a child process; reads what the store holds."""

    def __init__(self, db: str, port: int, every: str | None, log_path: Path,
                 memory_limit: str | None = None, cache_limit: str | None = None,
                 on_writer: bool = False, checkpoint_wal: str | None = None,
                 allocator_purge: bool = True, memory_log: float | None = None,
                 quarantine_keep: str = "off"):
        cmd = [sys.executable, "-m", "tsfleet", "serve", "--db", db, "--mqtt",
               f"127.0.0.1:{port}", "--client-id", "soak", "-v",
               "--quarantine-keep", quarantine_keep]
        if on_writer:
            cmd += ["--analyses-on-writer"]
        if every:
            cmd += ["--analyze-every", every]
        if memory_limit:
            cmd += ["--memory-limit", memory_limit]
        if cache_limit:
            cmd += ["--cache-limit", cache_limit]
        if checkpoint_wal:
            cmd += ["--checkpoint-wal", checkpoint_wal]
        if not allocator_purge:
            cmd += ["--no-allocator-purge"]
        if memory_log:
            cmd += ["--memory-log", str(memory_log)]
        self.proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.log = log_path.open("w")
        self.held = 0
        self.subscribed = threading.Event()
        self.analyses: list[str] = []
        #: (unix time of the log line, rows committed so far) after each commit
        self.commits: list[tuple[float, int]] = []
        self._rows = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.log.write(line)
            if "subscribed" in line:
                self.subscribed.set()
            m = re.search(r"store holds (\d+) readings", line)
            if m:
                self.held = int(m[1])
                c = re.search(r"committed \d+ payloads: (\d+) rows", line)
                if c:
                    self._rows += int(c[1])
                    at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    self.commits.append((at, self._rows))
            elif " analysis " in line or "Traceback" in line:
                self.analyses.append(line.strip())


class QueuedCount:
    """mosquitto's messages in store less its retained ones (its own $SYS topics):
    the QoS 1 messages queued or in flight, 0 once ``serve`` acknowledged them all."""

    def __init__(self, port: int):
        self.counts = {"store": -1, "retained": -1}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="soak-sys")
        self.client.on_message = self._count
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([("$SYS/broker/store/messages/count", 0),
                               ("$SYS/broker/retained messages/count", 0)])
        self.client.loop_start()

    def _count(self, client, userdata, msg) -> None:
        key = "store" if msg.topic.endswith("store/messages/count") else "retained"
        self.counts[key] = int(msg.payload)

    def wait_zero(self, deadline: float) -> None:
        zeros = 0
        while zeros < 2 and time.monotonic() < deadline:
            # mosquitto 2.0.11 may count fewer messages stored than retained ($SYS topics)
            ok = min(self.counts.values()) >= 0 and \
                self.counts["store"] <= self.counts["retained"]
            zeros = zeros + 1 if ok else 0
            time.sleep(1.0)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _published(info) -> bool:
    """paho's is_published, False for a message paho refused to queue (it raises)."""
    try:
        return info.is_published()
    except ValueError:
        return False


class Publisher:
    """QoS 1 SenML JSON packs, round-robin over devices, at a target rate."""

    def __init__(self, port: int, ids: list[str], steps: int, seed: int = 0,
                 bad_share: float = 0.0, ranges: dict | None = None):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="soak-pub")
        self.client.max_inflight_messages_set(2000)
        self.client.max_queued_messages_set(0)
        self.n_acked = 0
        self.bad_share = bad_share
        self.hostile = hostile(random.Random(seed), 256 * 1024)
        self.n_bad_sent = 0
        self.n_all_acked = 0
        self.infos: dict[str, list] = {"good": [], "bad": []}  # with --hostile (ids wrap)
        self.client.on_publish = self._acked
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.ids, self.steps = ids, steps
        self.rng = np.random.default_rng(seed)
        self.state = {m: np.full(len(ids), v[2]) for m, v in METRICS.items()}
        self.n_sent = 0
        #: the catalog's range per metric, and the readings published outside it (the
        #: pipeline quarantines them as out_of_range: counted as stored by the accounting,
        #: which --quarantine-keep may then cut from quarantine)
        self.ranges = ranges or {}
        self.out_of_range: list[int] = []     # per good message sent
        self.per_msg = len(METRICS) * steps
        self.last_t = 0.0
        #: unix time each good message was handed to the client (in publish order)
        self.sent_at: list[float] = []

    def _acked(self, client, userdata, mid, reason_code, properties) -> None:
        self.n_all_acked += 1
        if not self.bad_share:
            self.n_acked += 1

    @property
    def n_out_of_range(self) -> int:
        """Readings of acknowledged good messages outside their metric's range."""
        if self.bad_share:
            return sum(n for info, n in zip(self.infos["good"], self.out_of_range, strict=True)
                       if _published(info))
        return sum(self.out_of_range) if self.n_acked == self.n_sent else -1

    @property
    def n_bad_acked(self) -> int:
        return sum(map(_published, self.infos["bad"]))

    def one_bad(self) -> None:
        h = next(self.hostile)
        self.infos["bad"].append(self.client.publish(
            f"fleet/hz-{self.n_bad_sent % 50}/{h['fmt']}", h["payload"], qos=1))
        self.n_bad_sent += 1

    def one(self) -> None:
        k = self.n_sent % len(self.ids)
        t = max(time.time(), self.last_t + 1e-3)  # strictly increasing: no duplicate keys
        self.last_t = t + (self.steps - 1) * 1e-3
        pack, outside = [], 0
        for m, (name, unit, _, sd) in METRICS.items():
            for s in range(self.steps):
                if sd:
                    self.state[m][k] += self.rng.normal(0, sd)
                elif m == "battery_pct":
                    self.state[m][k] = max(self.state[m][k] - 0.001, 0)
                rec = {"n": name, "u": unit, "v": round(float(self.state[m][k]), 3),
                       "t": s * 1e-3}
                lo, hi = self.ranges.get(m, (-math.inf, math.inf))
                outside += not lo <= rec["v"] <= hi
                if not pack:
                    rec.update(bn=f"{self.ids[k]}:", bt=t)
                pack.append(rec)
        self.sent_at.append(time.time())
        self.out_of_range.append(outside)
        info = self.client.publish(f"fleet/{self.ids[k]}/senml", encode_json(pack), qos=1)
        if self.bad_share:
            self.infos["good"].append(info)
        self.n_sent += 1

    def run(self, rate: float, seconds: float, on_second=None, messages: float = 0.0) -> None:
        """``rate`` good readings/s; or, with ``messages``, that many messages/s of which
        ``bad_share`` are hostile."""
        t0 = time.monotonic()
        next_report = 1.0
        while (elapsed := time.monotonic() - t0) < seconds:
            if messages:
                due = int(elapsed * messages)
                while self.n_sent + self.n_bad_sent < due:
                    self.one_bad() if self.rng.random() < self.bad_share else self.one()
            due = 0 if messages else int(elapsed * rate / self.per_msg)
            while self.n_sent < due:
                self.one()
            if on_second and elapsed >= next_report:
                on_second(elapsed)
                next_report += 1.0
            time.sleep(0.005)

    def close(self, timeout: float = 900.0) -> None:
        deadline = time.monotonic() + timeout
        seen, still_since = -1, time.monotonic()
        while self.n_all_acked < self.n_sent + self.n_bad_sent and time.monotonic() < deadline:
            if self.n_all_acked != seen:
                seen, still_since = self.n_all_acked, time.monotonic()
            elif time.monotonic() - still_since > 60:  # paho stopped sending: report it
                print(f"publisher: {self.n_sent + self.n_bad_sent - self.n_all_acked:,} "
                      f"messages never acknowledged (no acknowledgement for 60 s)", flush=True)
                break
            time.sleep(0.05)
        if self.bad_share:
            self.n_acked = sum(map(_published, self.infos["good"]))
        self.client.disconnect()
        self.client.loop_stop()


class CliLoop:
    """Reads through serve's control interface, one at a time, until stopped."""

    def __init__(self, db: str, ids: list[str], seed: int = 2, every_process: int = 25):
        self.db, self.ids, self.rng = db, ids, random.Random(seed)
        self.every_process = every_process
        self.seconds: dict[str, list[float]] = {n: [] for n in ("sql", "device", "alerts list",
                                                                 "workorders")}
        self.failures: dict[str, int] = dict.fromkeys(self.seconds, 0)
        self.n_process = self.n_process_failed = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def commands(self) -> list[tuple[str, list[str]]]:
        return [("sql", ["sql", "select count(*) as n from readings"]),
                ("device", ["device", self.rng.choice(self.ids), "--format", "json"]),
                ("alerts list", ["alerts", "list"]), ("workorders", ["workorders", "--no-plan"])]

    def _run(self) -> None:
        advert = None
        while advert is None and not self.stop.is_set():
            advert = find_server(self.db)
            time.sleep(0.2)
        k = 0
        while not self.stop.is_set():
            for name, argv in self.commands():
                t = time.perf_counter()
                try:
                    answer = run_remote(advert, argv, timeout=300)
                    ok, why = answer["rc"] == 0, answer.get("stderr", "")
                except Exception as exc:  # noqa: BLE001 - counted and shown
                    ok, why = False, f"{type(exc).__name__}: {exc}"
                self.seconds[name].append(time.perf_counter() - t)
                if not ok:
                    self.failures[name] += 1
                    self.errors.append(f"{name}: {why.strip()[:200]}")
            k += 1
            if k % self.every_process == 0:  # the real command line, finding serve itself
                for name, argv in self.commands():
                    r = subprocess.run([sys.executable, "-m", "tsfleet", "--db", self.db, *argv],
                                       capture_output=True, text=True, timeout=600,
                                       env={**os.environ, "PYTHONPATH": str(ROOT)})
                    self.n_process += 1
                    if r.returncode != 0:
                        self.n_process_failed += 1
                        self.errors.append(f"process {name}: {r.stderr.strip()[:200]}")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(600)


def pct(values, q: float) -> float:
    return float(np.quantile(np.asarray(values), q)) if len(values) else float("nan")


def commit_latency(sent_at: list[float], per_msg: int, commits: list[tuple[float, int]],
                   runs: list[tuple[float, float]]):
    """(latency s, during an analysis?) of each message committed: see the docstring."""
    rows = [c[1] for c in commits]
    starts = np.array([r[0] for r in runs]) if runs else np.zeros(0)
    ends = np.array([r[1] for r in runs]) if runs else np.zeros(0)
    out = []
    for i, t in enumerate(sent_at):
        j = bisect.bisect_left(rows, (i + 1) * per_msg)
        if j == len(rows):
            continue  # not committed (counted as lost below)
        tc = commits[j][0]
        during = bool(np.any((starts <= tc) & (ends >= t)))
        out.append((tc - t, during))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--history-days", type=int, default=14)
    ap.add_argument("--rate", type=float, default=1000.0, help="readings per second")
    ap.add_argument("--steps", type=int, default=2, help="time steps per pack (x 5 metrics)")
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before the RSS baseline")
    ap.add_argument("--analyze-every", default=None, help="as tsfleet serve (default built-in)")
    ap.add_argument("--keep", action="store_true", help="keep the store and the server log")
    ap.add_argument("--hostile", action="store_true",
                    help="mixed good and hostile messages at --messages per second (issue 22)")
    ap.add_argument("--messages", type=float, default=1000.0,
                    help="with --hostile: messages per second, good and bad")
    ap.add_argument("--bad-share", type=float, default=0.5,
                    help="with --hostile: share of the messages that are hostile")
    ap.add_argument("--seed", type=int, default=0, help="seed of the traffic")
    ap.add_argument("--memory-limit", default=None, help="as tsfleet serve (DuckDB's limit)")
    ap.add_argument("--cache-limit", default=None,
                    help="as tsfleet serve (DuckDB's cache of store blocks; off: DuckDB's own)")
    ap.add_argument("--trace-every", type=float, default=0.1,
                    help="seconds between samples of serve's RSS and WAL size (0: none)")
    ap.add_argument("--checkpoint-wal", default=None,
                    help="as tsfleet serve (off: DuckDB's automatic checkpoints, the baseline)")
    ap.add_argument("--no-allocator-purge", dest="allocator_purge", action="store_false",
                    help="as tsfleet serve (freed DuckDB memory stays in jemalloc: the baseline "
                         "before session 12)")
    ap.add_argument("--memory-log", type=float, default=None, metavar="SECONDS",
                    help="as tsfleet serve (its lines go to serve.log, kept with --keep)")
    ap.add_argument("--quarantine-keep", default="off", metavar="ROWS",
                    help="as tsfleet serve (default off here, as in the soaks before session "
                         "27; the accounting counts the soak's own out-of-range readings from "
                         "what it published, so a cut does not show as a loss)")
    ap.add_argument("--trace-duckdb", action="store_true",
                    help="also sample serve's duckdb_memory() every 0.25 s (control interface)")
    ap.add_argument("--cli-loop", action="store_true",
                    help="loop sql, device, alerts list, workorders through serve meanwhile")
    ap.add_argument("--reuse-store", default=None, metavar="PATH",
                    help="copy the prepared store from PATH if it exists, else save it there "
                         "(two runs on the same history: the design and its baseline)")
    ap.add_argument("--analyses-on-writer", action="store_true",
                    help="serve's --analyses-on-writer: the design before issue 23 (baseline)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tsfleet-soak-"))
    db = str(work / "soak.duckdb")
    t = time.perf_counter()
    if args.reuse_store and Path(args.reuse_store).is_file():
        import shutil
        shutil.copyfile(args.reuse_store, db)
        with Fleet(db) as f:  # writable: a store prepared by an older tsfleet is migrated
            ids = [r["device_id"] for r in f.query("select device_id from devices order by 1")] \
                if args.history_days > 0 else [f"soak-{i:05d}" for i in range(args.devices)]
        print(f"setup: the store prepared earlier, {args.reuse_store}", flush=True)
    else:
        ids = prepare(db, args.devices, args.history_days)
        if args.reuse_store:
            import shutil
            shutil.copyfile(db, args.reuse_store)
    with Fleet(db, read_only=True) as f:
        base_batch = f.query("select coalesce(max(batch_id), 0) as b from ingest_batches")[0]["b"]
        base_n = f.query("select count(*) as n from readings")[0]["n"]
        ranges = {r["metric"]: (r["min_value"], r["max_value"]) for r in f.query(
            "select metric, min_value, max_value from metric_catalog where metric in "
            "(select unnest(?::varchar[]))", [list(METRICS)])}
    print(f"setup: {len(ids):,} devices in {time.perf_counter() - t:.0f} s; store {db}",
          flush=True)

    broker = LocalBroker()
    if args.hostile:  # $SYS every second: how many QoS 1 messages are still queued
        broker.config.write_text(broker.config.read_text() + "sys_interval 1\n")
    with broker:
        queued = QueuedCount(broker.port) if args.hostile else None
        serve = Serve(db, broker.port, args.analyze_every, work / "serve.log",
                      args.memory_limit, args.cache_limit, args.analyses_on_writer,
                      args.checkpoint_wal, args.allocator_purge, args.memory_log,
                      args.quarantine_keep)
        assert serve.subscribed.wait(120), "tsfleet serve did not subscribe"
        tracer = Tracer(serve.proc.pid, Path(db + ".wal"), args.trace_every,
                        db if args.trace_duckdb else None) \
            if args.trace_every > 0 else None
        trace_wall0 = time.time() - (time.monotonic() - tracer.t0) if tracer else 0.0
        cli = CliLoop(db, ids) if args.cli_loop else None
        started_at = now_utc()
        pub = Publisher(broker.port, ids, args.steps, seed=args.seed,
                        bad_share=args.bad_share if args.hostile else 0.0, ranges=ranges)
        samples: list[tuple[float, int, int]] = []
        hwm_warm = [0]
        # The warm-up lasts --warmup seconds and until every analysis of the cadence has
        # run twice: the first run at start covers the first seconds of data only, the
        # second the whole fleet (its working set, not growth).
        expected = set(parse_every(args.analyze_every))
        warm_end = [None]

        def on_second(elapsed: float) -> None:
            rss, hwm = rss_kb(serve.proc.pid)
            samples.append((elapsed, rss, hwm))
            if warm_end[0] is None:
                hwm_warm[0] = hwm
                ran = [m[1] for line in serve.analyses
                       if (m := re.search(r"analysis (\w+) ok", line))]
                if elapsed >= args.warmup and all(ran.count(n) >= 2 for n in expected):
                    warm_end[0] = elapsed
            if int(elapsed) % 30 == 0:
                good = pub.n_sent if args.hostile else pub.n_acked  # hostile: sent, not acked
                print(f"  t={elapsed:5.0f} s  published {good * pub.per_msg:>9,}  "
                      f"stored {serve.held - base_n:>9,}  rss {rss / 1024:6.0f} MB  "
                      f"analysis runs {len(serve.analyses)}"
                      + (f"  hostile sent {pub.n_bad_sent:,}" if args.hostile else ""),
                      flush=True)

        pub.run(args.rate, args.seconds, on_second,
                messages=args.messages if args.hostile else 0.0)
        pub.close()
        loads = [os.getloadavg()]
        published = pub.n_acked * pub.per_msg
        pub_seconds = args.seconds
        deadline = time.monotonic() + 300
        if queued is not None:  # hostile payloads store rows too: wait for the broker
            deadline = time.monotonic() + 1800
            queued.wait_zero(deadline)
            queued.close()
        while queued is None and serve.held - base_n < published and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        if cli is not None:
            cli.close()
        alive = serve.proc.poll() is None
        if tracer is not None:
            tracer.close()
        end_at = now_utc()
        rss_end, hwm_end = rss_kb(serve.proc.pid)
        serve.proc.send_signal(signal.SIGTERM)
        rc = serve.proc.wait(300)

    with Fleet(db, read_only=True) as f:
        # ours: the soak's devices (a bit-flipped hostile payload may name any other)
        stored = f.query("select count(*) as n from readings where batch_id > ? "
                         "and device_id in (select unnest(?::varchar[]))",
                         [base_batch, ids])[0]["n"]
        judged = f.query("select count(*) as n from quarantine where batch_id > ? and kind = "
                         "'readings' and json_extract_string(raw, '$.device_id') in "
                         "(select unnest(?::varchar[]))", [base_batch, ids])[0]["n"]
        n_hostile_rows = f.query("select count(*) as n from readings where batch_id > ?",
                                 [base_batch])[0]["n"] - stored
        reasons = f.query("select reason, count(*) as n from quarantine where batch_id > ? "
                          "group by 1 order by 2 desc", [base_batch])
        quarantined = f.query("select count(*) as n from quarantine where batch_id > ?",
                              [base_batch])[0]["n"]
        # only batches of the soak count: a store prepared earlier may hold a batch its last
        # run of an analysis did not cover, as old as the store (not staleness of serve)
        fresh = f.query(FRESHNESS_SQL, [base_batch, started_at, base_batch, end_at, base_batch,
                                        started_at])
        failures = f.query("select analysis, error from analysis_runs where status = 'failed' "
                           "and started_at >= ? limit 5", [started_at])
        runs = [(r["s"], r["e"]) for r in f.query(
            "select epoch(started_at) as s, epoch(finished_at) as e from analysis_runs "
            "where started_at >= ? order by started_at", [started_at])]
        # good readings: publish (the pack's time, step 0) to the end of their batch
        lat_rows = f.query(
            "select epoch(cast(b.finished_at as timestamp)) - epoch(r.observed_at) as s "
            "from readings r join ingest_batches b using (batch_id) where r.batch_id > ? "
            "and r.metric = 'temperature_c' and r.device_id in (select unnest(?::varchar[]))",
            [base_batch, ids]) if args.hostile else []
        on_writer_s = f.query(
            "select coalesce(sum(duration_s), 0) as s from analysis_runs where started_at >= ? "
            "and (? or analysis in (select unnest(?::varchar[])))",
            [started_at, args.analyses_on_writer, ON_WRITER])[0]["s"]
    print(f"\nsoak: {len(ids):,} devices, {args.seconds:.0f} s at {args.rate:,.0f} readings/s "
          f"offered ({pub.per_msg} readings per message), analysis cadence "
          f"{args.analyze_every or 'built-in defaults'}; server exit code {rc}")
    if args.hostile:
        print(f"hostile: {args.messages:,.0f} messages/s offered, {args.bad_share:.0%} hostile "
              f"(seed {args.seed}): {pub.n_bad_acked:,} hostile and {pub.n_acked:,} good messages "
              f"acknowledged by the broker; server up at the end: {alive}; rows stored from "
              f"hostile payloads {n_hostile_rows:,}; quarantine by reason: "
              + ", ".join(f"{r['reason']} {r['n']:,}" for r in reasons))
        print(f"load average at the end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
              f"{os.getloadavg()[2]:.2f}")
    if args.hostile and lat_rows:
        lat = [r["s"] for r in lat_rows]
        print(f"good readings: stored {stored / pub_seconds:,.0f}/s over the {pub_seconds:.0f} s "
              f"of publishing; publish-to-stored latency (pack time to the end of its "
              f"ingest batch, {len(lat):,} temperature readings) p50 {pct(lat, .5):.3f} s "
              f"p99 {pct(lat, .99):.3f} s max {max(lat):.3f} s")
    outside = pub.n_out_of_range
    if judged or outside:  # a random walk of the soak's own that left a metric's range
        # what the publisher sent outside the catalog's ranges is what the pipeline must
        # quarantine; the quarantine itself may have been cut (--quarantine-keep)
        print(f"readings of the soak's devices outside their metric's range: {outside:,} "
              f"published, {judged:,} still in quarantine"
              + (" (the rest cut by --quarantine-keep)" if args.quarantine_keep != "off"
                 else "" if judged == outside else " [MISMATCH]")
              + "; counted as stored below")
        stored += outside
    print(f"readings: published {published:,} ({published / pub_seconds:,.0f}/s), stored "
          f"{stored:,}, lost {published - stored:,}, quarantined {quarantined:,}  "
          f"[target: no loss] -> {'MET' if stored == published else 'NOT MET'}")
    if warm_end[0] is None:
        print("memory: every analysis did not run twice within the soak: run it longer")
    print(f"memory: peak RSS after warm-up ({warm_end[0] or pub_seconds:.0f} s, every analysis "
          f"run twice) {hwm_warm[0] / 1024:.0f} MB, "
          f"at the end {hwm_end / 1024:.0f} MB (ratio {hwm_end / max(hwm_warm[0], 1):.2f}; "
          f"current RSS {rss_end / 1024:.0f} MB)  [target <= 1.20] -> "
          f"{'MET' if warm_end[0] and hwm_end <= 1.2 * hwm_warm[0] else 'NOT MET'}")
    print("freshness (worst staleness over the soak; target <= 300 s):")
    print(f"  {'analysis':<12} {'ok':>4} {'failed':>6} {'median s':>9} {'max s':>7} "
          f"{'items':>7} {'worst stale s':>14} {'at end s':>9}")
    worst = 0.0
    for r in fresh:
        w = r["worst_stale_s"] or 0.0
        worst = max(worst, w)
        print(f"  {r['analysis']:<12} {r['n_ok']:>4} {r['n_failed']:>6} {r['median_s']:>9.2f} "
              f"{r['max_s']:>7.2f} {items(r['median_items']):>7} {w:>14.1f} "
              f"{r['end_stale_s'] or 0:>9.1f}")
    print(f"  worst over all analyses {worst:.1f} s -> {'MET' if worst <= 300 else 'NOT MET'}")
    total = sum(r["total_s"] for r in fresh)
    held_by = "every analysis" if args.analyses_on_writer else ", ".join(ON_WRITER)
    print(f"analyses ran {total:.0f} s of {args.seconds:.0f} s; of it on the writer thread "
          f"(ingest held meanwhile) {on_writer_s:.0f} s ({held_by})")
    if not args.hostile:
        lat = commit_latency(pub.sent_at[:pub.n_sent], pub.per_msg, serve.commits, runs)
        dur = [x for x, d in lat if d]
        out = [x for x, d in lat if not d]
        print(f"publish-to-commit ({len(lat):,} messages): during analyses n={len(dur):,} "
              f"p50 {pct(dur, .5):.3f} s p99 {pct(dur, .99):.3f} s "
              f"max {max(dur, default=0):.3f} s; "
              f"outside n={len(out):,} p50 {pct(out, .5):.3f} s p99 {pct(out, .99):.3f} s "
              f"max {max(out, default=0):.3f} s  [target p99 during <= 2 s] -> "
              f"{'MET' if dur and pct(dur, .99) <= 2.0 else 'NOT MET'}")
    if cli is not None:
        n_fail = sum(cli.failures.values()) + cli.n_process_failed
        card = cli.seconds["device"]
        print("CLI loop through serve: " + ", ".join(
            f"{k} {len(v):,} (p99 {pct(v, .99) * 1e3:.0f} ms)" for k, v in cli.seconds.items())
            + f"; {cli.n_process} as tsfleet processes; failures {n_fail}  [target 0] -> "
            f"{'MET' if n_fail == 0 else 'NOT MET'}")
        print(f"device card through the interface: n={len(card):,} "
              f"p50 {pct(card, .5) * 1e3:.1f} ms "
              f"p99 {pct(card, .99) * 1e3:.1f} ms  [target <= 100 ms] -> "
              f"{'MET' if card and pct(card, .99) <= 0.1 else 'NOT MET'}")
        for e in cli.errors[:5]:
            print(f"  CLI failure: {e}")
    print(f"load average at the end of publishing: {loads[0][0]:.2f} {loads[0][1]:.2f} "
          f"{loads[0][2]:.2f}; analyses on "
          f"{'the writer thread' if args.analyses_on_writer else 'their own thread'}")
    for fl in failures:
        print(f"  failed run: {fl['analysis']}: {fl['error']}")
    if tracer is not None:
        tracer.report(warm_end[0] or 0.0, [(a - trace_wall0, b - trace_wall0) for a, b in runs])
    if args.keep:
        if tracer is not None:
            np.save(work / "rss_trace.npy", np.array(tracer.samples))
        print(f"kept {work}")
    else:
        import shutil
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
