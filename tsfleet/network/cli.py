"""``tsfleet network``: analyze, load, balance, redundancy, down, flapping, plan, findings."""

from __future__ import annotations

import argparse

from tsfleet.cliutil import add_format, open_fleet, print_rows

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


def register(sub) -> None:
    p = sub.add_parser("network", help="gateway load, balance, redundancy, failures and a "
                                       "rebalancing plan")
    ps = p.add_subparsers(dest="network_command", required=True, metavar="ACTION")
    actions = [ps.add_parser("analyze", help="fit saturation and overload trends, make the plan")]
    for name, (text, _) in READS.items():
        s = ps.add_parser(name, help=text)
        if name == "load":
            s.add_argument("--site", default=None, help="only this site")
        actions.append(s)
    pl = ps.add_parser("plan", help="recommend device moves (min-cost flow)")
    pl.add_argument("--rssi-floor", type=float, default=None,
                    help="weakest usable median RSSI, dBm (default: the setting)")
    pl.add_argument("--target-utilization", type=float, default=0.9,
                    help="fill gateways to at most this fraction of capacity (default 0.9)")
    pl.add_argument("--summary", action="store_true", help="print the before/after figures")
    actions.append(pl)
    for s in actions:
        add_format(s)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with open_fleet(args) as fleet:
        net = fleet.network
        if args.network_command == "analyze":
            net.analyze()
            lines = net.summary()
            if args.format == "table":
                print("\n".join(lines))
                return 0
            rows = [{"summary": line} for line in lines]
        elif args.network_command == "plan":
            plan = net.plan(rssi_floor_dbm=args.rssi_floor,
                            target_utilization=args.target_utilization)
            rows = plan.summary if args.summary else plan.moves
        else:
            rows = READS[args.network_command][1](net, args)
        print_rows(rows, args)
    return 0
