"""Loading an OSV feed into the store and judging every known version against it.

Records that cannot be evaluated go to ``quarantine`` (kind ``osv_advisories``)
with a reason code, like any other rejected input; the rest land in
``firmware_advisories`` under the feed label they were loaded with.
:func:`evaluate_advisories` maps each record's packages to fleet models
(``firmware_osv_packages``, see :mod:`tsfleet.firmware.osv_packages`) and
writes ``firmware_vulnerable_versions``: each known version of a model that an
advisory affects, judged with the model's version scheme. It also refreshes
each advisory's ``notes`` (what is not judged), so that a mapping or scheme
changed after loading shows there.
"""

from __future__ import annotations

import json
from collections import defaultdict

import duckdb
import pyarrow as pa

from tsfleet.firmware.catalog import resolve_schemes
from tsfleet.firmware.osv import InvalidAdvisory, affects, parse_record, read_feed
from tsfleet.firmware.osv_packages import DEFAULT_FEED, load_package_map
from tsfleet.firmware.versions import get_scheme
from tsfleet.ingest import IngestReport
from tsfleet.results import now_utc, write_result
from tsfleet.store import QUARANTINE_INTO, transaction

KIND = "osv_advisories"


def load_osv(con: duckdb.DuckDBPyConnection, source: object,
             feed: str = DEFAULT_FEED) -> IngestReport:
    """Read an OSV feed (path, folder, JSON text, dict or list), store the valid
    records under the label ``feed`` (a record with a known id replaces it) and
    quarantine the rest."""
    label = str(source) if isinstance(source, str) and len(source) < 300 else type(source).__name__
    report = IngestReport(KIND, label)
    records, rejected = read_feed(source)
    models = {tuple(r) for r in con.execute(
        "select manufacturer, model from devices union select manufacturer, model "
        "from firmware_releases").fetchall()}
    schemes = resolve_schemes(con, models)
    packages = load_package_map(con)

    def scheme_of(manufacturer: str, model: str):
        found = schemes.get((manufacturer, model))
        return get_scheme(found[0]) if found else None

    good: dict[str, dict] = {}
    for rec in records:
        try:
            adv = parse_record(rec, scheme_of,
                               lambda eco, name: packages.targets(feed, eco, name))
        except InvalidAdvisory as exc:
            rejected.append((exc.reason, str(exc), json.dumps(rec, default=str)))
            continue
        good[adv.id] = dict(advisory_id=adv.id, summary=adv.summary, severity=adv.severity,
                            score=adv.score, published_at=adv.published,
                            modified_at=adv.modified, aliases=", ".join(adv.aliases),
                            record=json.dumps(rec, default=str, sort_keys=True),
                            feed=feed, notes="; ".join(adv.notes) or None)
    now = now_utc()
    with transaction(con):
        batch_id = con.execute("select nextval('ingest_batch_seq')").fetchall()[0][0]
        if good:
            table = pa.Table.from_pylist(list(good.values()))
            con.complete()
            con.register("_fw_adv", table)
            con.execute("delete from firmware_advisories where advisory_id in "
                        "(select advisory_id from _fw_adv)")
            con.execute("insert into firmware_advisories (advisory_id, summary, severity, "
                        "score, published_at, modified_at, aliases, record, batch_id, "
                        "loaded_at, feed, notes) select advisory_id, summary, severity, "
                        "score, published_at, modified_at, aliases, record, ?, ?, feed, notes "
                        "from _fw_adv", [batch_id, now])
            con.unregister("_fw_adv")
        if rejected:
            con.complete()
            con.register("_fw_rej", pa.table({"reason": [r[0] for r in rejected],
                                              "detail": [r[1] for r in rejected],
                                              "raw": [r[2] for r in rejected]}))
            con.execute(f"insert into {QUARANTINE_INTO} select ?, ?, ?, reason, detail, raw, now() "
                        "from _fw_rej", [batch_id, KIND, label])
            con.unregister("_fw_rej")
        report.n_rows = len(records) + sum(1 for r in rejected if r[0] in ("invalid_json",
                                                                               "not_a_record"))
        report.n_accepted = len(good)
        report.n_duplicates = len(records) - len(good) - sum(
            1 for r in rejected if r[0] not in ("invalid_json", "not_a_record"))
        report.quarantined_by_reason.update(r[0] for r in rejected)
        report.n_quarantined = len(rejected)
        report.batch_ids.append(batch_id)
        con.execute("insert into ingest_batches values (?, ?, ?, now(), now(), ?, ?, ?, ?, "
                    "NULL, NULL)", [batch_id, KIND, label, report.n_rows, report.n_accepted,
                                    report.n_duplicates, report.n_quarantined])
    return report


def evaluate_advisories(con: duckdb.DuckDBPyConnection) -> int:
    """Judge every ranked version of every model against every stored advisory;
    replaces ``firmware_vulnerable_versions`` and refreshes each advisory's
    ``notes``. Returns the number of vulnerable-version rows."""
    versions: dict[tuple[str, str], list[str]] = defaultdict(list)
    schemes: dict[tuple[str, str], str] = {}
    for man, model, version, scheme in con.execute(
            "select manufacturer, model, version, scheme from firmware_versions").fetchall():
        versions[(man, model)].append(version)
        schemes[(man, model)] = scheme
    packages = load_package_map(con)
    cols: dict[str, list] = defaultdict(list)
    notes: dict[str, list] = {"advisory_id": [], "notes": []}
    for aid, severity, score, record, feed in con.execute(
            "select advisory_id, severity, score, record, coalesce(feed, ?) "
            "from firmware_advisories order by advisory_id", [DEFAULT_FEED]).fetchall():
        try:
            adv = parse_record(json.loads(record),
                               lambda m, mo: get_scheme(schemes[(m, mo)])
                               if (m, mo) in schemes else None,
                               lambda eco, name, f=feed: packages.targets(f, eco, name))
        except InvalidAdvisory as exc:  # e.g. a scheme or a mapping changed after loading
            notes["advisory_id"].append(aid)
            notes["notes"].append(f"not judged: {exc}")
            continue
        notes["advisory_id"].append(aid)
        notes["notes"].append("; ".join(adv.notes) or None)
        hits = set()
        for entry in adv.affected:
            for man_model in entry.models:
                if man_model not in versions:
                    continue
                scheme = get_scheme(schemes[man_model])
                hits.update((man_model, text) for text in versions[man_model]
                            if affects(entry, text, scheme))
        for (man, model), text in sorted(hits):
            cols["manufacturer"].append(man)
            cols["model"].append(model)
            cols["version"].append(text)
            cols["advisory_id"].append(aid)
            cols["severity"].append(severity)
            cols["score"].append(score)
    if notes["advisory_id"]:
        con.complete()
        con.register("_fw_notes", pa.table(notes, schema=pa.schema(
            [("advisory_id", pa.string()), ("notes", pa.string())])))
        con.execute("update firmware_advisories a set notes = n.notes from _fw_notes n "
                    "where a.advisory_id = n.advisory_id")
        con.unregister("_fw_notes")
    if not cols:
        con.execute("delete from firmware_vulnerable_versions")
        return 0
    return write_result(con, "firmware_vulnerable_versions", cols,
                        params={"rule": "OSV IsVulnerable: affected[] versions and ranges",
                                "packages": "firmware_osv_packages"})
