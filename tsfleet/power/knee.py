"""Each cell's own gauge knee, from its history around the chemistry's nominal knee.

The chemistry gives a nominal knee (Li-SOCl2: about 20 %) and gain
(:mod:`tsfleet.power.chemistry`), but each cell's knee differs by a point or two,
and near empty the 30-day drop is most of the remaining level, so a knee one
point off moves it by 10% and more. A device whose current segment shows days
both above the knee range and below the nominal knee (:data:`MIN_DAYS` each,
over its last :data:`WINDOW_DAYS` days, empty-gauge days left out) shows its
own: among knees within :data:`KNEE_RANGE` points of the nominal one, the one
that makes its charge-equivalent series most nearly a straight line (least
residual spread relative to the slope: the charge-equivalent compresses the
levels below the knee, so the spread alone would favour the highest knee) is
its own, unless the gauge is erratic (residual spread above
:data:`tsfleet.power.patterns.ERRATIC_SD`: its scatter would pick the knee). Other
devices keep the nominal knee (there is nothing to see yet).

A percent fuel gauge judges its own knee only from days below *every* candidate
(the nominal knee less :data:`KNEE_RANGE`). A few days just under the nominal knee
bend too little to tell a knee from a consumption that grows for another reason,
such as a zone that cools, yet a knee kept there bends the whole forecast. On the
independent fleet (``bench/independent/power.py``, seed 3) one such gauge, 3 points
under, got a knee at 19 % and a forecast drop of 2.1 times the truth. Until its
days reach below every candidate, such a gauge takes its type's verdict.

Nor is a knee kept where the zone's temperature explains the bend as well: a gauge whose
consumption grew as its zone cooled judges the knee against a line whose rate follows the
zone's daily temperature too (:func:`tsfleet.power.temperature.consumption_spread`). On
the independent fleet one such gauge a seed (12-14 %, below 0 C) had kept a knee and was
forecast to empty in 0.38-0.52 of the true time.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tsfleet.power import patterns, temperature
from tsfleet.power.chemistry import charge_from_level
from tsfleet.power.series import Series

KNEE_RANGE = 3.0          # points either side of the nominal knee
KNEE_STEP = 0.5
WINDOW_DAYS = 40          # the segment's last days the line is fitted over
MIN_DAYS = 3              # days above the knee range and below the nominal knee needed
FLOOR_PCT = 1.0           # levels at or below this are left out (an empty gauge)
GAUGE_GAIN = 0.9          # a percent gauge's knee must straighten its line by 10% at least


def fit(s: Series) -> Series:
    """``s`` with each cell's own knee (and charge-equivalent) where its history shows it
    (see :func:`fit_pooled`)."""
    return fit_pooled(s)[0]


def fit_pooled(s: Series, pooled: dict | None = None) -> tuple[Series, dict]:
    """``s`` with each cell's own knee where its history shows it, and per device type
    whether its percent gauges show the chemistry's knee (1.0 or 0.0).

    A percent fuel gauge (not ``voltage_only``) has no knee to start with: the nominal
    knee is only a candidate, kept where it makes the history straighter than no knee
    by :data:`GAUGE_GAIN` (its own history shows the knee); else it stays linear. A
    percent gauge that has not passed below every candidate knee yet (or is erratic) takes
    its device type's verdict: the knee where most of the type's gauges that crossed it show it.
    ``pooled`` maps a device type to the verdict of an earlier fleet run (NaN: none, no
    knee), used instead of this run's (an incremental run of a few devices decides as the
    fleet did).
    """
    n, m = s.level.shape
    nominal = s.knee if s.knee_nominal is None else s.knee_nominal
    gauge = nominal > s.knee                 # a percent gauge with a nominal knee to test
    lo = np.maximum(s.start, s.end - WINDOW_DAYS + 1)
    cols = np.arange(m)[None, :]
    with np.errstate(invalid="ignore"):
        window = (cols >= lo[:, None]) & (cols <= s.end[:, None]) & (s.level > FLOOR_PCT)
        # a percent gauge judges its own knee only from days below every candidate knee:
        # a few days just under the nominal knee bend too little to tell a knee from a
        # consumption that grows for another reason (a zone that cools), yet the knee, once
        # kept, bends the whole forecast; until then it takes its type's verdict
        floor = np.where(gauge, nominal - KNEE_RANGE, nominal)
        below = (window & (s.level < floor[:, None])).sum(axis=1)
        above = (window & (s.level > nominal[:, None] + KNEE_RANGE)).sum(axis=1)
    sel = np.flatnonzero((nominal > 0) & (below >= MIN_DAYS) & (above >= MIN_DAYS))
    y = np.where(window[sel], s.level[sel], np.nan)
    gain = s.gain[sel][:, None]
    best, best_sd = np.full(len(sel), np.inf), np.full(len(sel), np.inf)
    knee = nominal[sel].copy()
    for dk in np.arange(-KNEE_RANGE, KNEE_RANGE + KNEE_STEP / 2, KNEE_STEP):
        k = nominal[sel] + dk
        _, slope, sd = patterns.line_fit(charge_from_level(y, k[:, None], gain), lo[sel],
                                         s.end[sel])
        with np.errstate(divide="ignore", invalid="ignore"):
            crit = sd / np.abs(slope)
        better = np.isfinite(crit) & (crit < best)
        best, knee = np.where(better, crit, best), np.where(better, k, knee)
        best_sd = np.where(better, sd, best_sd)
    _, slope0, sd0 = patterns.line_fit(y, lo[sel], s.end[sel])
    with np.errstate(divide="ignore", invalid="ignore"):
        plain = sd0 / np.abs(slope0)
    # a gauge's knee must also beat a drain that follows the zone's temperature
    g = gauge[sel]
    plain[g] = np.fmin(plain[g], temperature.consumption_spread(
        y[g], s.temperature[sel][g], lo[sel][g], s.end[sel][g]))
    shows = best < GAUGE_GAIN * plain
    # an erratic gauge's scatter, not its knee, decides its straightest line
    erratic = best_sd > patterns.ERRATIC_SD
    # the type's verdict: from the earlier fleet run, else from this run's gauges
    judged = gauge[sel] & ~erratic
    verdict = {t: float(shows[judged][s.device_type[sel][judged] == t].mean() > 0.5)
               for t in np.unique(s.device_type[sel][judged])}
    verdict.update(pooled or {})             # NaN: the fleet run saw no verdict either
    type_knee = np.array([verdict.get(t, 0.0) > 0 for t in s.device_type], dtype=bool)
    all_knee = np.where(gauge & type_knee, nominal, s.knee)
    own = gauge[sel] & ~erratic
    all_knee[sel] = np.where(own, np.where(shows, knee, 0.0),
                             np.where(gauge[sel], all_knee[sel],
                                      np.where(erratic, nominal[sel], knee)))
    return (replace(s, knee=all_knee,
                    charge=charge_from_level(s.level, all_knee[:, None], s.gain[:, None])),
            verdict)

