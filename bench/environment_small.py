"""Small fleets through the environment analysis: does every fit have a maximum?

    PYTHONPATH=. python bench/environment_small.py            # about a minute

For fleets of 17-234 failures from both generators (tsfleet.simulate and
bench/independent/environment.py), prints the events, the largest |coefficient| of a
factor term in ``environment_model`` per outcome (with its standard error), how many
devices with environment data have a 30-day failure probability, their expected failures
in 30 days beside the failures seen scaled to 30 days (the baseline), and the
operating limits found. A fit whose likelihood has no maximum shows
as slopes of hundreds with standard errors of thousands (docs/environment.md, session 21).
"""

from __future__ import annotations

import os
import warnings

from bench.environment import _independent
from tsfleet import Fleet
from tsfleet.simulate import SimConfig, simulate

SIM = [(150, 14, 5), (150, 14, 6), (300, 14, 5), (300, 30, 6), (600, 30, 7), (1000, 30, 8)]
INDEPENDENT = [(400, 14, 6, 5), (800, 30, 10, 6), (1500, 30, 12, 7)]


def run(tag: str, days: int, load) -> None:
    with Fleet(memory=True) as f:
        load(f)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            f.analyze("environment")
        q = f.con.execute
        events = dict(q("select event, count(*) from device_events where event in "
                        "('failure', 'reboot') group by 1 order by 1").fetchall())
        model = q("select outcome, max(abs(coefficient)), arg_max(std_error, abs(coefficient)) "
                  "from environment_model where factor is not null group by 1 order by 1"
                  ).fetchall()
        n, with_p, expected = q(
            "select count(*), count(p_fail_30d), sum(failures_per_30d_expected) "
            "from environment_device_exposure where env_source <> 'none'").fetchone()
        limits = q("select count(*) from environment_limits").fetchone()[0]
    fits = "; ".join(f"{o} {c:.3g} (SE {se:.3g})" for o, c, se in model) or "no fit"
    print(f"{tag}: {events.get('failure', 0)} failures, {events.get('reboot', 0)} reboots\n"
          f"    largest slope: {fits}\n    p_fail_30d for {with_p} of {n} devices, "
          f"{(expected or 0):.1f} failures expected in 30 days\n    baseline, the failures seen "
          f"x 30 / {days} days: {events.get('failure', 0) * 30 / days:.1f}; limits {limits}; "
          f"warnings {len(caught)}", flush=True)


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.1f}")
    for n, d, s in SIM:
        run(f"simulator {n} x {d}, seed {s}", d,
            lambda f, n=n, d=d, s=s: simulate(SimConfig(n_devices=n, days=d, seed=s)).write(f))
    ind = _independent()
    for n, d, z, s in INDEPENDENT:
        run(f"independent {n} x {d} ({z} zones), seed {s}", d,
            lambda f, n=n, d=d, z=z, s=s: ind.generate(n, d, s, n_zones=z).write(f))
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
