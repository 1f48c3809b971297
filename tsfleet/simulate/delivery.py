"""How readings reach the store: reporting schedules, outages, loss, late
batches, retransmitted duplicates and out-of-order arrival.

Applied to all generated readings alike, after the domain generators.
Ground truth (what was lost, late and duplicated per device) goes to
``sim.delivery``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsfleet.simulate.skeleton import Skeleton


@dataclass(frozen=True)
class DeliveryConfig:
    outages_per_30_days: float = 1.0
    outage_mean_hours: float = 10.0
    share_buffered: float = 0.6      # outages whose data arrive late instead of being lost
    random_loss: float = 0.005
    duplicate_rate: float = 0.003
    chunk_hours: int = 48            # one ingest call per this many hours of arrival


@dataclass
class Delivered:
    """Readings in arrival order: ``chunk`` says in which ingest call each row arrives."""

    metric: np.ndarray        # int16 index into metrics
    metrics: list[str]
    device_idx: np.ndarray    # int32
    hour_idx: np.ndarray      # int32
    value: np.ndarray         # float64
    chunk: np.ndarray         # int32, non-decreasing


def deliver(sk: Skeleton, readings: list, cfg: DeliveryConfig = DeliveryConfig()) -> tuple[
        Delivered, dict]:
    rng = sk.rng("delivery")
    n_dev, n_hours = sk.n_devices, sk.n_hours
    metrics = sorted({r[0] for r in readings})
    m_idx = np.concatenate([np.full(len(r[1]), metrics.index(r[0]), np.int16) for r in readings])
    dev = np.concatenate([r[1] for r in readings])
    hour = np.concatenate([r[2] for r in readings])
    val = np.concatenate([r[3] for r in readings])

    # Device-hour grids, looked up once per reading through a flat index.
    # Sleepy devices report once per interval, at their own phase.
    step = np.maximum(1, (sk.devices["reporting_interval_s"] // 3600).astype(np.int64))
    phase = sk.devices["phase_s"] % step
    silent = (np.arange(n_hours)[None, :] % step[:, None]) != phase[:, None]
    # Outages: lost hours, or buffered hours released at the outage's end.
    n_out = rng.poisson(cfg.outages_per_30_days * n_hours / (24 * 30), size=n_dev)
    out_dev = np.repeat(np.arange(n_dev), n_out)
    out_start = rng.integers(0, n_hours, size=len(out_dev))
    out_len = 1 + rng.exponential(cfg.outage_mean_hours, size=len(out_dev)).astype(int)
    out_end = np.minimum(out_start + out_len, n_hours)
    buffered = rng.random(len(out_dev)) < cfg.share_buffered
    arrival_grid = np.broadcast_to(np.arange(n_hours, dtype=np.int32), (n_dev, n_hours)).copy()
    lost = np.zeros((n_dev, n_hours), bool)
    for d, s, e, b in zip(out_dev, out_start, out_end, buffered, strict=True):
        if b:
            arrival_grid[d, s:e] = np.maximum(arrival_grid[d, s:e], e)
        else:
            lost[d, s:e] = True
    flat = dev.astype(np.int64) * n_hours + hour
    keep = ~(silent | lost).ravel()[flat]
    keep &= rng.random(len(dev)) >= cfg.random_loss
    dev, hour, val, m_idx = dev[keep], hour[keep], val[keep], m_idx[keep]
    arrival = arrival_grid.ravel()[flat[keep]]
    late = arrival > hour

    # Retransmissions: a copy arrives in the next chunk.
    dup = rng.random(len(dev)) < cfg.duplicate_rate
    chunk = (arrival // cfg.chunk_hours).astype(np.int32)
    dev = np.concatenate([dev, dev[dup]])
    hour = np.concatenate([hour, hour[dup]])
    val = np.concatenate([val, val[dup]])
    m_idx = np.concatenate([m_idx, m_idx[dup]])
    chunk = np.concatenate([chunk, chunk[dup] + 1])
    # Arrival order: by chunk, shuffled inside a chunk (out of order). A random
    # permutation followed by a stable radix sort on the 16-bit chunk number.
    shuffle = rng.permutation(len(dev))
    order = shuffle[np.argsort(chunk[shuffle].astype(np.int16), kind="stable")]
    delivered = Delivered(m_idx[order], metrics, dev[order], hour[order], val[order], chunk[order])
    truth = dict(
        device_id=sk.devices["device_id"],
        n_outages=n_out,
        n_lost_hours=lost.sum(axis=1),
        n_late_readings=np.bincount(dev[: len(late)][late], minlength=n_dev),
        n_duplicates_sent=np.bincount(dev[: len(dup)][dup], minlength=n_dev),
    )
    return delivered, truth
