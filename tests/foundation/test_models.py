"""The SQL validation of the ingest pipeline agrees with the pydantic models.

The models are the source of truth; the pipeline re-states their rules as
DuckDB expressions for speed. Hypothesis feeds both the same rows.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsfleet import Fleet
from tsfleet.models import KINDS, Device, MetricDeclaration, Reading

CATALOG = {"battery_pct": (0, 100), "temperature_c": (-80, 250), "humidity_pct": (0, 100)}

good_times = st.datetimes(
    min_value=datetime(1991, 1, 1),
    max_value=datetime(2099, 1, 1),
    timezones=st.sampled_from([UTC, None]),
).map(lambda d: d.replace(microsecond=0))
time_values = st.one_of(
    good_times.map(lambda d: d.isoformat()),
    good_times.map(lambda d: d.isoformat().replace("T", " ")),
    good_times.map(lambda d: int(d.replace(tzinfo=d.tzinfo or UTC).timestamp())),
    st.sampled_from(["", "soon", "2026-13-45T00:00:00", None]),
)
values = st.one_of(
    st.floats(min_value=-200, max_value=300, allow_nan=False),
    st.integers(min_value=-200, max_value=300),
    st.floats(min_value=-200, max_value=300, allow_nan=False).map(str),
    st.sampled_from(["NaN", "inf", "-Infinity", "abc", "", None]),
)
rows = st.fixed_dictionaries(
    {
        "device_id": st.one_of(st.text(alphabet="abc-1 ", max_size=6), st.none()),
        "observed_at": time_values,
        "metric": st.sampled_from([*CATALOG, "bogus_metric", ""]),
        "value": values,
    }
)

_prefix = itertools.count()


def pydantic_verdict(row: dict) -> Reading | None:
    try:
        r = Reading.model_validate(row)
    except pydantic.ValidationError:
        return None
    lo, hi = CATALOG.get(r.metric, (math.inf, -math.inf))
    if not lo <= r.value <= hi:
        return None
    return r


@pytest.fixture(scope="module")
def shared():
    f = Fleet(memory=True)
    yield f
    f.close()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(rows, min_size=1, max_size=12))
def test_sql_validation_matches_the_pydantic_model(shared, batch):
    tag = f"h{next(_prefix)}-"
    batch = [
        dict(r, device_id=None if r["device_id"] is None else tag + r["device_id"]) for r in batch
    ]
    # An id of only spaces is missing once trimmed, as pydantic's strip does.
    expected = {}
    for i, row in enumerate(batch):
        verdict = pydantic_verdict(row)
        if verdict is not None:
            key = (
                verdict.device_id,
                verdict.observed_at.astimezone(UTC).replace(tzinfo=None)
                if verdict.observed_at.tzinfo
                else verdict.observed_at,
                verdict.metric,
            )
            expected.setdefault(key, (i, verdict.value))
    report = shared.ingest("readings", batch)
    got = {
        (r["device_id"], r["observed_at"], r["metric"]): r["value"]
        for r in shared.query(
            "select device_id, observed_at, metric, value from readings "
        "where starts_with(device_id, ?)",
            [tag],
        )
    }
    assert got == {k: v for k, (_, v) in expected.items()}
    assert report.n_rows == len(batch)
    assert report.n_rows == report.n_accepted + report.n_duplicates + report.n_quarantined


@settings(max_examples=40, deadline=None)
@given(
    crit=st.one_of(st.integers(-3, 9), st.sampled_from(["2", "2.5", "x", None])),
    chem=st.sampled_from(["li_socl2", "ALKALINE", "unobtainium", None]),
    cap=st.one_of(st.floats(-10, 1e7, allow_nan=False), st.none()),
)
def test_device_rules_match_the_pydantic_model(shared, crit, chem, cap):
    # a new device id each example: every row is judged alone, as in an empty store
    row = {
        "device_id": f"dev{next(_prefix)}",
        "device_type": "t",
        "manufacturer": "m",
        "model": "x",
        "site": "s",
        "zone": "z",
        "criticality": crit,
        "battery_chemistry": chem,
        "battery_capacity_mah": cap,
    }
    norm = dict(row, battery_chemistry=chem.lower() if isinstance(chem, str) else chem)
    try:
        Device.model_validate({k: v for k, v in norm.items() if v is not None})
        ok = True
    except pydantic.ValidationError:
        ok = False
    assert shared.ingest("devices", [row]).n_accepted == int(ok)


@settings(max_examples=40, deadline=None)
@given(
    id_len=st.integers(250, 262),
    unit_len=st.sampled_from([1, 4096, 4097]),
    lo=st.floats(-10, 10, allow_nan=False),
    hi=st.floats(-10, 10, allow_nan=False),
)
def test_text_lengths_and_ordered_fields_match_the_pydantic_model(shared, id_len, unit_len,
                                                                   lo, hi):
    """The row rules added in session 23 (an id of at most 256 characters, other text of
    at most 4,096, a declared metric's min below its max) say the same in both."""
    tag = f"m{next(_prefix)}"
    row = {"metric": tag + "x" * (id_len - len(tag)), "unit": "u" * unit_len,
           "min_value": lo, "max_value": hi}
    reading = {"device_id": tag + "d" * (id_len - len(tag)), "observed_at": "2026-03-01T10:00Z",
               "metric": "battery_pct", "value": 1}
    for model, kind, r in ((MetricDeclaration, "metrics", row), (Reading, "readings", reading)):
        try:
            model.model_validate(r)
            ok = True
        except pydantic.ValidationError:
            ok = False
        assert shared.ingest(kind, [r]).n_accepted == int(ok), (kind, id_len, unit_len, lo, hi)


def test_every_kind_has_a_documented_model():
    for kind, model in KINDS.items():
        for name, info in model.model_fields.items():
            assert info.description, f"{kind}.{name} has no description"
            assert info.examples, f"{kind}.{name} has no examples"
        assert set(model.spec.key) <= set(model.model_fields), kind


def test_rows_near_the_accepted_time_limits():
    with Fleet(memory=True) as f:
        r = f.ingest(
            "readings",
            [
                {
                    "device_id": "d",
                    "observed_at": "1989-12-31T23:59:59Z",
                    "metric": "battery_pct",
                    "value": 1,
                },
                {
                    "device_id": "d",
                    "observed_at": (datetime(2100, 1, 1) - timedelta(seconds=1)).isoformat(),
                    "metric": "battery_pct",
                    "value": 1,
                },
            ],
        )
        assert (r.n_accepted, r.quarantined_by_reason) == (1, {"bad_timestamp": 1})
