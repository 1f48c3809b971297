"""Which scheme reads each model's versions, and every known version string ranked.

The ranks go to the ``firmware_versions`` table so that the SQL views can
order versions of any vendor with a plain integer comparison. The scheme of a
model is, in this order: configured (``firmware_schemes``, model or ``*``),
detected from the model's catalog (:func:`~tsfleet.firmware.versions.detect_scheme`),
else :data:`~tsfleet.firmware.versions.DEFAULT_SCHEME`.
"""

from __future__ import annotations

from collections import defaultdict

import duckdb

from tsfleet.firmware.versions import DEFAULT_SCHEME, UnparsableVersion, detect_scheme, get_scheme
from tsfleet.results import write_result

Model = tuple[str, str]


def resolve_schemes(con: duckdb.DuckDBPyConnection, models: set[Model]) -> dict[Model, tuple]:
    """``(scheme, source)`` for each model; source is configured, detected or default."""
    configured = {(m, mo): s for m, mo, s in con.execute(
        "select manufacturer, model, scheme from firmware_schemes").fetchall()}
    catalog: dict[Model, list[str]] = defaultdict(list)
    for m, mo, v in con.execute("select manufacturer, model, version from firmware_releases"
                                ).fetchall():
        catalog[(m, mo)].append(v)
    out = {}
    for man, model in models:
        if (man, model) in configured:
            out[(man, model)] = (configured[(man, model)], "configured")
        elif (man, "*") in configured:
            out[(man, model)] = (configured[(man, "*")], "configured")
        elif (found := detect_scheme(catalog.get((man, model), []))) is not None:
            out[(man, model)] = (found, "detected")
        else:
            out[(man, model)] = (DEFAULT_SCHEME, "default")
    return out


def known_versions(con: duckdb.DuckDBPyConnection, batches: list[int] | None = None
                   ) -> dict[Model, set[str]]:
    """Version strings per model from the catalog, campaigns and reports (all reports,
    or only those of ``batches``)."""
    found: dict[Model, set[str]] = defaultdict(set)
    rows = con.execute(
        "select manufacturer, model, version from firmware_releases union "
        "select d.manufacturer, d.model, u.target_version from update_events u "
        "join devices d using (device_id) where u.target_version is not null").fetchall()
    if batches is None:
        rows += con.execute("select distinct d.manufacturer, d.model, r.version from "
                            "firmware_reports r join devices d using (device_id)").fetchall()
    else:
        rows += con.execute("select distinct d.manufacturer, d.model, r.version from "
                            "firmware_reports r join devices d using (device_id) "
                            "where list_contains(?, r.batch_id)", [batches]).fetchall()
    for man, model, version in rows:
        found[(man, model)].add(version)
    return found


def sync_versions(con: duckdb.DuckDBPyConnection, batches: list[int] | None = None,
                  full: bool = False) -> int:
    """Rank every version string of the models that have strings not yet ranked (all
    models when ``full``). Returns the number of models re-ranked."""
    found = known_versions(con, batches)
    stored: dict[Model, dict[str, tuple]] = defaultdict(dict)
    for man, model, version, scheme, source in con.execute(
            "select manufacturer, model, version, scheme, scheme_source from firmware_versions"
    ).fetchall():
        stored[(man, model)][version] = (scheme, source)
    todo = set(found) if full else {m for m, vs in found.items() if vs - set(stored.get(m, {}))}
    if not todo:
        return 0
    schemes = resolve_schemes(con, todo)
    cols: dict[str, list] = defaultdict(list)
    for key in sorted(todo):
        scheme_name, source = schemes[key]
        scheme = get_scheme(scheme_name)
        versions = found[key] | set(stored.get(key, {}))
        parsed = {}
        errors = {}
        for text in versions:
            try:
                parsed[text] = scheme.parse(text, context=f"{key[0]} {key[1]}")
            except UnparsableVersion as exc:
                errors[text] = str(exc)
        order = {k: i + 1 for i, k in enumerate(sorted({v.key for v in parsed.values()}))}
        for text in sorted(versions):
            v = parsed.get(text)
            cols["manufacturer"].append(key[0])
            cols["model"].append(key[1])
            cols["version"].append(text)
            cols["scheme"].append(scheme_name)
            cols["scheme_source"].append(source)
            cols["version_rank"].append(order[v.key] if v is not None else None)
            cols["canonical"].append(scheme.format(v) if v is not None else None)
            cols["parse_error"].append(errors.get(text))
    write_result(con, "firmware_versions", cols, params={"detection": "catalog"},
                 key=["manufacturer", "model"])
    return len(todo)
