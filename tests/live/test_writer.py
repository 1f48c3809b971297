"""The writer hands readings to the pipeline as the pipeline would read them itself."""

from __future__ import annotations

import numpy as np

from tsfleet import Fleet
from tsfleet.live.decoded import Decoded
from tsfleet.live.writer import readings_table

T = 1_780_000_000.0


def stored_times(times: list) -> tuple[list, list]:
    """(times stored from the writer's table, times stored from plain float seconds)."""
    n = len(times)
    d = Decoded("senml+json", ["d1"] * n, times, ["temperature_c"] * n, [20.0] * n)
    out = []
    for table in (readings_table([d]), {"device_id": ["d1"] * n, "observed_at": times,
                                        "metric": ["temperature_c"] * n, "value": [20.0] * n}):
        fleet = Fleet(memory=True)
        fleet.ingest("readings", table)
        out.append([(r["observed_at"], r["reason"]) for r in fleet.query(
            "select observed_at, NULL as reason from readings union all "
            "select NULL, reason from quarantine order by 1, 2")])
    return out[0], out[1]


def test_times_in_the_accepted_span_store_exactly_as_float_seconds_do():
    rng = np.random.default_rng(7)
    times = list(T + rng.random(2000) * 1e5) + [T + 0.0000005, T + 0.0000015, T + 1e-7]
    assert readings_table([Decoded("x", ["d"], [T], ["m"], [1.0])]).schema.field(
        "observed_at").type == "timestamp[us]"
    via_writer, via_floats = stored_times(times)
    assert via_writer == via_floats and len(via_writer) >= 2000  # equal microseconds merge


def test_a_time_outside_the_span_keeps_the_batch_in_seconds_for_the_pipeline_to_judge():
    for bad in (5e10, 100.0, None):
        via_writer, via_floats = stored_times([T, bad])
        assert via_writer == via_floats
        assert [reason for _, reason in via_writer if reason] in (["bad_timestamp"],
                                                                  ["missing_field"])
