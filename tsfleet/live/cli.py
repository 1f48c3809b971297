"""``tsfleet serve``: parse the options, run the server, print its log on stderr."""

from __future__ import annotations

import argparse
import logging
import sys

from tsfleet.live.decode import DEFAULT_MAX_PAYLOAD, DEVICE_SOURCES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="live ingest: MQTT and CoAP into the store (owns the DuckDB writer)",
        description="Receive SenML (JSON, CBOR), LwM2M and vendor JSON over MQTT and CoAP and "
                    "store it. Stops cleanly on SIGINT or SIGTERM.")
    p.add_argument("--db", dest="sub_db", default=None, help="DuckDB file")
    p.add_argument("--mqtt", metavar="HOST:PORT", help="MQTT broker to subscribe at")
    p.add_argument("--topic", action="append", dest="topics", metavar="FILTER",
                   help="topic filter, repeatable (default fleet/#)")
    p.add_argument("--topic-layout", default="+/{device}/{format}",
                   help="where topics carry {device} and {format} (default +/{device}/{format})")
    p.add_argument("--device-from", choices=DEVICE_SOURCES, default="auto",
                   help="device id from the topic, the payload, or the payload else the topic")
    p.add_argument("--client-id", default="tsfleet-serve",
                   help="MQTT client id; the persistent session belongs to it")
    p.add_argument("--receive-maximum", type=int, default=4000,
                   help="unacknowledged MQTT messages the broker may send at once")
    p.add_argument("--coap", metavar="HOST:PORT", help="bind a CoAP server (UDP)")
    p.add_argument("--max-payload", type=int, default=DEFAULT_MAX_PAYLOAD,
                   help="largest payload accepted, bytes (larger ones are quarantined)")
    p.add_argument("--max-packet", type=int, default=None,
                   help="largest MQTT packet the broker may send, bytes (MQTT 5 Maximum Packet "
                        "Size; the broker discards larger ones; default 4 x --max-payload "
                        "+ 64 KiB)")
    p.add_argument("--memory-limit", default=None, metavar="SIZE",
                   help="DuckDB memory limit of the store, e.g. 1GB (default DuckDB's, 80%% of "
                        "RAM: the store's blocks stay cached up to it)")
    p.add_argument("--batch-rows", type=int, default=25_000, help="commit at this many rows")
    p.add_argument("--batch-delay", type=float, default=0.5,
                   help="commit at the latest this many seconds after the first held payload")
    p.add_argument("--profiles", action="append", default=[], metavar="DIR",
                   help="folder of extra vendor profiles (.toml), repeatable")
    p.add_argument("--analyze-every", metavar="NAME=DURATION,...", default=None,
                   help="cadence of each analysis, e.g. power=5m,firmware=1h (default firmware "
                        "and alerts 1m, the others 2m; all=2m sets every one; off disables)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every commit")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from tsfleet.cli import db_path
    from tsfleet.errors import InvalidParameter
    from tsfleet.live.server import ServeConfig, serve
    from tsfleet.service.cadence import parse_every

    if not args.mqtt and not args.coap:
        raise InvalidParameter("give --mqtt HOST:PORT, --coap HOST:PORT or both")
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(message)s",
                        level=logging.INFO if args.verbose else logging.WARNING)
    if not args.verbose:
        logging.getLogger("tsfleet.live").setLevel(logging.WARNING)
        logging.getLogger("tsfleet.service").setLevel(logging.WARNING)
    config = ServeConfig(
        db=db_path(args), mqtt=args.mqtt, coap=args.coap, topics=args.topics or ["fleet/#"],
        topic_layout=args.topic_layout, device_from=args.device_from, client_id=args.client_id,
        receive_maximum=args.receive_maximum, max_payload=args.max_payload,
        max_packet=args.max_packet, memory_limit=args.memory_limit,
        batch_rows=args.batch_rows, batch_delay_s=args.batch_delay, profile_dirs=args.profiles,
        analyze_every=parse_every(args.analyze_every))
    cadence = ", ".join(f"{k} {v:g}s" for k, v in config.analyze_every.items()) or "off"
    print(f"tsfleet serve: {config.db} (mqtt {config.mqtt or '-'}, coap {config.coap or '-'}; "
          f"analysis {cadence})", file=sys.stderr, flush=True)
    serve(config)
    return 0
