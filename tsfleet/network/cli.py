"""``tsfleet network``: analyze, load, balance, redundancy, down, flapping, plan, frontier,
findings."""

from __future__ import annotations

import argparse

from tsfleet.cliutil import add_format, add_summary_format, open_fleet, print_rows, print_summary
from tsfleet.errors import InvalidParameter

READS = {
    "load": ("devices per gateway against capacity now", lambda n, a: n.load(a.site)),
    "balance": ("imbalance indices per site", lambda n, a: n.balance()),
    "bottlenecks": ("gateways above the overload level or beyond saturation",
                    lambda n, a: n.bottlenecks()),
    "redundancy": ("devices stranded per gateway if it failed", lambda n, a: n.redundancy()),
    "spof": ("devices that reach only one gateway", lambda n, a: n.single_points_of_failure()),
    "down": ("devices of down gateways with failover targets", lambda n, a: n.down()),
    "flapping": ("devices that reconnect too often", lambda n, a: n.flapping()),
    "saturation": ("fitted saturation points (after analyze)",
                   lambda n, a: n.fleet.query("select * from network_saturation "
                                              "order by gateway_id")),
    "findings": ("open network findings", lambda n, a: n.findings()),
}


#: What --objective fix_overloads brings every gateway to unless --target-utilization.
TARGET_UTILIZATION = 0.9

#: The summary columns a table shows (the CSV and JSON carry every column).
SUMMARY_TABLE = ("site", "n_moves", "n_failover", "max_utilization_before",
                 "max_utilization_after", "n_over_capacity_after", "jain_after")


def register(sub) -> None:
    p = sub.add_parser("network", help="gateway load, balance, redundancy, failures and a "
                                       "rebalancing plan")
    ps = p.add_subparsers(dest="network_command", required=True, metavar="ACTION")
    actions = [ps.add_parser("analyze", help="fit saturation and overload trends, make the plan "
                                             "and store them (the only action that writes); "
                                             "print the summary")]
    for name, (text, _) in READS.items():
        s = ps.add_parser(name, help=text)
        if name == "load":
            s.add_argument("--site", default=None, help="only this site")
        actions.append(s)
    pl = ps.add_parser("plan", help="recommend device moves: the lowest worst utilisation "
                                    "for a move budget (exact min-cost flows); printed, not "
                                    "stored (network analyze stores the plan without a budget)")
    pl.add_argument("--max-moves", type=_budget, default=None,
                    help="move budget (failovers off down gateways not counted; default: none)")
    pl.add_argument("--objective", choices=("min_max", "fix_overloads"), default="min_max",
                    help="min_max: the lowest worst utilisation for the budget (default); "
                         "fix_overloads: the fewest moves to bring gateways to the target")
    pl.add_argument("--target-utilization", type=float, default=None,
                    help="with --objective fix_overloads: the level every gateway should end "
                         f"at or below (default {TARGET_UTILIZATION:g})")
    pl.add_argument("--summary", action="store_true", help="print the before/after figures")
    fr = ps.add_parser("frontier", help="moves against worst utilisation, Jain and devices "
                                        "without failover, beside the lower bound; printed, "
                                        "not stored")
    fr.add_argument("--points", type=int, default=10, help="thresholds to try (default 10)")
    for s in (pl, fr):
        s.add_argument("--rssi-floor", type=float, default=None,
                       help="weakest usable mean heard RSSI, dBm (default: the setting)")
        s.add_argument("--pin", action="append", default=None, metavar="DEVICE",
                       help="a device that must not move (repeatable; also network_plan_pins)")
    actions += [pl, fr]
    add_summary_format(actions[0])     # analyze: a summary, sentences or key figures
    for s in actions[1:]:
        add_format(s)
    p.set_defaults(func=run)


def _budget(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    if getattr(args, "target_utilization", None) is not None \
            and args.objective != "fix_overloads":
        raise InvalidParameter("--target-utilization needs --objective fix_overloads (the "
                               "default objective, min_max, has no target)")
    # Only analyze writes; plan and frontier are computed from the views and printed (the
    # stored plan is analyze's, as the stored work orders are the workorders command's).
    with open_fleet(args, read_only=args.network_command != "analyze") as fleet:
        net = fleet.network
        if args.network_command == "analyze":
            net.analyze()
            print_summary(args, net.summary, net.figures)
            return 0
        if args.network_command == "plan":
            plan = net.plan(args.max_moves, args.objective, rssi_floor_dbm=args.rssi_floor,
                            target_utilization=(TARGET_UTILIZATION if args.target_utilization
                                                is None else args.target_utilization),
                            pinned=args.pin,
                            store=False)
            rows = plan.summary if args.summary else plan.moves
            if args.summary and args.format == "table":     # 120 columns; csv/json: all
                rows = [{k: r[k] for k in SUMMARY_TABLE} for r in rows]
        elif args.network_command == "frontier":
            rows = net.frontier(args.points, rssi_floor_dbm=args.rssi_floor, pinned=args.pin,
                                store=False)
        else:
            rows = READS[args.network_command][1](net, args)
        print_rows(rows, args)
    return 0
