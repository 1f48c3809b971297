"""``tsfleet serve``: parse the options, run the server, print its log on stderr."""

from __future__ import annotations

import argparse
import logging
import sys

from tsfleet.cliutil import positive_number, whole_number_from
from tsfleet.live.decode import DEFAULT_MAX_PAYLOAD, DEVICE_SOURCES

#: serve --quarantine-keep's default: tsfleet.live.writer.DEFAULT_QUARANTINE_KEEP (not
#: imported here: the command line starts without DuckDB and pyarrow)
QUARANTINE_KEEP = 100_000


def rows_or_off(text: str) -> int | None:
    """The type of ``--quarantine-keep``: a whole number of rows >= 1, or ``off`` (None)."""
    if text.strip().lower() == "off":
        return None
    try:
        return whole_number_from(1)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 or off, "
                                         f"got {text!r}") from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="live ingest: MQTT and CoAP into the store (owns the DuckDB writer)",
        description="Receive SenML (JSON, CBOR), LwM2M and vendor JSON over MQTT and CoAP and "
                    "store it. Stops cleanly on SIGINT or SIGTERM.")
    p.add_argument("--mqtt", metavar="URL", type=_broker,
                   help="MQTT broker to subscribe at: host:port, mqtt://host:port or "
                        "mqtts://host:port (TLS, default port 8883)")
    p.add_argument("--topic", action="append", dest="topics", metavar="FILTER",
                   help="topic filter, repeatable (default fleet/#)")
    p.add_argument("--topic-layout", default="+/{device}/{format}",
                   help="where topics carry {device} and {format} (default +/{device}/{format}), "
                        "or a network server's layout: chirpstack, tts")
    p.add_argument("--device-from", choices=DEVICE_SOURCES, default="auto",
                   help="device id from the topic, the payload, or the payload else the topic")
    p.add_argument("--client-id", default=None,
                   help="MQTT client id; the persistent session belongs to it (default "
                        "tsfleet-<store id>: each store its own session)")
    p.add_argument("--receive-maximum", type=int, default=4000,
                   help="unacknowledged MQTT messages the broker may send at once")
    p.add_argument("--coap", metavar="HOST:PORT", type=_address(5683),
                   help="bind a CoAP server (UDP)")
    p.add_argument("--max-payload", type=int, default=DEFAULT_MAX_PAYLOAD,
                   help="largest payload accepted, bytes (larger ones are quarantined)")
    p.add_argument("--max-packet", type=int, default=None,
                   help="largest MQTT packet the broker may send, bytes (MQTT 5 Maximum Packet "
                        "Size; the broker discards larger ones; default 4 x --max-payload "
                        "+ 64 KiB)")
    p.add_argument("--memory-limit", default=None, metavar="SIZE",
                   help="DuckDB memory limit of the store, e.g. 1GB (default DuckDB's, 80%% of "
                        "RAM: the store's blocks stay cached up to it)")
    p.add_argument("--cache-limit", default="64MiB", metavar="SIZE",
                   help="DuckDB's cache of store blocks is trimmed to this every 5 s, e.g. "
                        "256MB; 0 keeps none; off leaves it to DuckDB (up to --memory-limit) "
                        "(default 64MiB)")
    p.add_argument("--checkpoint-wal", default="off", metavar="SIZE",
                   help="the writer checkpoints the store between batches once its WAL is "
                        "this large (e.g. 4MiB), not while an analysis runs (up to 4x); off "
                        "leaves it to DuckDB's automatic checkpoint at 16 MiB (default off)")
    p.add_argument("--no-allocator-purge", dest="allocator_purge", action="store_false",
                   help="leave freed DuckDB memory in its allocator's arenas (default: background "
                        "threads give it back to the system within about a second)")
    p.add_argument("--memory-log", type=float, default=None, metavar="SECONDS",
                   help="log a line every SECONDS seconds, at any log level: RSS, peak RSS "
                        "and DuckDB's memory by tag (default: none)")
    p.add_argument("--unknown-devices", choices=("accept", "quarantine"), default="accept",
                   help="readings of a device not in the registry: accept (default) or "
                        "quarantine (unknown_device), as ingest --unknown-devices")
    p.add_argument("--quarantine-keep", type=rows_or_off, default=QUARANTINE_KEEP,
                   metavar="ROWS",
                   help="keep the newest ROWS quarantined live rows and as many unmapped "
                        "fields; older ones go with their texts, checked every minute; off "
                        f"keeps all (default {QUARANTINE_KEEP})")
    p.add_argument("--batch-rows", type=int, default=60_000, help="commit at this many rows")
    p.add_argument("--batch-delay", type=float, default=0.5,
                   help="commit at the latest this many seconds after the first held payload")
    p.add_argument("--profiles", action="append", default=[], metavar="DIR",
                   help="folder of extra vendor profiles (.toml), repeatable")
    p.add_argument("--analyze-every", metavar="NAME=DURATION,...", default=None,
                   help="cadence of each analysis, e.g. power=5m,firmware=1h (default firmware "
                        "and alerts 1m, the others 2m; all=2m sets every one; off disables)")
    p.add_argument("--analyses-on-writer", action="store_true",
                   help="run the analyses on the writer thread between commits (the design "
                        "before issue 23: readings wait for a running analysis); default: on "
                        "a thread of their own beside ingest")
    p.add_argument("--chirpstack-mqtt", metavar="HOST:PORT", type=_address(1883, lowest=1),
                   help="also read a ChirpStack v4 integration and gateway bridge (JSON or "
                        "Protobuf) from this broker")
    p.add_argument("--tts-mqtt", metavar="HOST:PORT", type=_address(1883, lowest=1),
                   help="also read The Things Stack v3 uplinks and joins from this broker")
    p.add_argument("--snmp-targets", metavar="FILE",
                   help="also poll the SNMP agents of this targets file (as snmp-poll) into "
                        "gateway_stats")
    p.add_argument("--snmp-every", metavar="DURATION", default="60s",
                   help="SNMP polling interval, e.g. 30s or 5m (default 60s)")
    p.add_argument("--snmp-concurrency", type=int, default=100,
                   help="SNMP agents polled at once (default 100)")
    _industrial_options(p)
    _security_options(p)
    _sharing_options(p)
    p.add_argument("-v", "--verbose", action="store_true", help="log every commit")
    p.set_defaults(func=cmd_serve)

    q = subparsers.add_parser(
        "snmp-poll", help="poll gateways and access points over SNMP into gateway_stats",
        description="Ask every agent of a targets file (v2c community or v3 user) for uptime, "
                    "interface counters, CPU, memory and associated clients; an agent that "
                    "does not answer is recorded as down.")
    q.add_argument("--targets", required=True, metavar="FILE",
                   help="TOML or JSON file of [[agent]] entries (see docs/lorawan.md)")
    q.add_argument("--timeout", type=positive_number, default=2.0,
                   help="seconds per request (default 2)")
    q.add_argument("--retries", type=whole_number_from(0), default=1,
                   help="retries per request after a timeout (default 1)")
    q.add_argument("--concurrency", type=whole_number_from(1), default=100,
                   help="agents polled at once (default 100)")
    # while serve holds the store, the command polls in its own process and hands serve the
    # results in this file, which serve's writer stores (never given by a user)
    q.add_argument("--store-polled", metavar="FILE", help=argparse.SUPPRESS)
    q.set_defaults(func=cmd_snmp_poll)


# -- addresses: a port out of range is an error of the command line, not of a bind ---------
def _port_error(port: object, lowest: int, text: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"a port is within {lowest}..65535, got {port} in "
                                      f"{text!r}")


def _address(default_port: int, lowest: int = 0):
    """The type of a HOST:PORT option: the text as given once its port is within
    ``lowest``..65535 (a server may bind port 0, any free one; a connection may not)."""
    def check(text: str) -> str:
        from tsfleet.errors import InvalidParameter
        from tsfleet.live.mqtt import parse_address

        try:
            _, port = parse_address(text, default_port)
        except InvalidParameter as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if port < lowest:
            raise _port_error(port, lowest, text)
        return text
    return check


def _broker(text: str) -> str:
    """The type of --mqtt: host:port, mqtt:// or mqtts:// with a port within 1..65535."""
    from tsfleet.errors import InvalidParameter
    from tsfleet.live.security import parse_broker

    try:
        parse_broker(text)
    except InvalidParameter as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _url(text: str) -> str:
    """The type of a URL option: its port, if it names one, within 1..65535."""
    import urllib.parse

    parts = urllib.parse.urlsplit(text)
    try:
        port = parts.port
    except ValueError:  # not a number, or outside 0..65535
        port = parts.netloc.rpartition(":")[2]
    if port is not None and not (isinstance(port, int) and port >= 1):
        raise _port_error(port, 1, text)
    return text


def _port(text: str) -> int:
    """The type of --control-port: a port within 0..65535 (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is within 0..65535, got {port}")
    return port


def _industrial_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Sparkplug B (docs/live.md)")
    g.add_argument("--sparkplug", action="store_true",
                   help="also read Sparkplug B (spBv1.0/#) from the --mqtt broker; a sequence "
                        "gap or data before birth publishes a rebirth request (NCMD)")
    g.add_argument("--sparkplug-map", metavar="FILE",
                   help="TOML rules: Sparkplug metric names -> tsfleet metrics, device id "
                        "templates (default: last name segment and engUnit, as SenML)")
    o = p.add_argument_group("OPC UA (docs/live.md)")
    o.add_argument("--opcua", metavar="URL", type=_url,
                   help="also subscribe to an OPC UA server, opc.tcp://HOST:PORT[/path]")
    o.add_argument("--opcua-map", metavar="FILE",
                   help="JSON map: node ids (or folders to browse) -> environment monitor "
                        "device and metric, sampling interval")
    o.add_argument("--opcua-security", choices=("none", "Basic256Sha256"), default=None,
                   help="security policy (default Basic256Sha256 when --opcua-cert is given, "
                        "else none)")
    o.add_argument("--opcua-mode", choices=("SignAndEncrypt", "Sign"),
                   default="SignAndEncrypt", help="message security mode (default "
                   "SignAndEncrypt)")
    o.add_argument("--opcua-cert", metavar="FILE",
                   help="client certificate (PEM or DER) with the application URI in its "
                        "subjectAltName")
    o.add_argument("--opcua-key", metavar="FILE", help="PEM private key of --opcua-cert")
    o.add_argument("--opcua-server-cert", metavar="FILE",
                   help="the server's certificate to trust (default: the one its endpoint "
                        "announces)")
    o.add_argument("--opcua-username", metavar="NAME", help="user name at the OPC UA server")
    o.add_argument("--opcua-password-file", metavar="FILE",
                   help="file whose first line is the password (never on the command line)")
    o.add_argument("--opcua-password-env", metavar="VAR",
                   help="environment variable holding the password")


def _sharing_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Readers while serving: snapshots, the control interface "
                             "(docs/share.md, docs/service.md)")
    g.add_argument("--snapshot-every", metavar="DURATION",
                   help="renew the snapshot at --snapshot-path this often, e.g. 5m (atomic: "
                        "written beside it, then renamed)")
    g.add_argument("--snapshot-path", metavar="PATH",
                   help="DuckDB file that other programs open read-only while serve runs")
    g.add_argument("--snapshot-storage-version", metavar="VERSION", default=None,
                   help="storage version of the snapshot, e.g. v1.0.0 for DuckDB 1.x readers "
                        "(default this DuckDB's own)")
    g.add_argument("--control-port", type=_port, default=0, metavar="PORT",
                   help="port of the control interface on 127.0.0.1 through which the other "
                        "tsfleet commands reach the store (default 0: any free port, "
                        "advertised in <store>.serve.json)")
    g.add_argument("--no-control", action="store_true",
                   help="no control interface: other commands cannot use the store while "
                        "serve runs")


def _security_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("MQTT security, broker failures and monitoring (docs/live.md)")
    g.add_argument("--mqtt-username", metavar="NAME", help="user name at the broker")
    g.add_argument("--mqtt-password-file", metavar="FILE",
                   help="file whose first line is the password (never on the command line)")
    g.add_argument("--mqtt-password-env", metavar="VAR",
                   help="environment variable holding the password")
    g.add_argument("--mqtt-tls", action="store_true",
                   help="TLS (implied by mqtts:// and by the files below)")
    g.add_argument("--mqtt-ca", metavar="FILE",
                   help="PEM CA file that signs the broker's certificate (default: system CAs)")
    g.add_argument("--mqtt-cert", metavar="FILE", help="PEM client certificate")
    g.add_argument("--mqtt-key", metavar="FILE", help="PEM key of the client certificate")
    g.add_argument("--mqtt-no-hostname-check", action="store_true",
                   help="accept a broker certificate that does not name the host "
                        "(the CA chain is still checked)")
    g.add_argument("--coaps", metavar="HOST:PORT", type=_address(5684),
                   help="serve CoAP over DTLS with pre-shared keys (needs DTLSSocket)")
    g.add_argument("--coap-psk", metavar="FILE",
                   help="identity:key lines of the devices allowed on --coaps")
    g.add_argument("--metrics", metavar="HOST:PORT", type=_address(9108),
                   help="serve Prometheus metrics at http://HOST:PORT/metrics and a health "
                        "check at /healthz (docs/service.md)")
    g.add_argument("--alertmanager", metavar="URL", type=_url,
                   help="push firing and resolved alerts to Alertmanager's v2 API at URL "
                        "(http://host:9093), re-sent every minute while they fire")
    g.add_argument("--exit-on-broker-failure", metavar="SECONDS", type=float, nargs="?",
                   const=10.0, default=None,
                   help="exit with status 2 when the first MQTT connection has not succeeded "
                        "within SECONDS (default 10)")


def _security(args: argparse.Namespace):
    from tsfleet.live.security import MqttSecurity

    return MqttSecurity(
        username=args.mqtt_username, password_file=args.mqtt_password_file,
        password_env=args.mqtt_password_env, tls=args.mqtt_tls, ca_file=args.mqtt_ca,
        cert_file=args.mqtt_cert, key_file=args.mqtt_key,
        check_hostname=not args.mqtt_no_hostname_check)


def _opcua_security(args: argparse.Namespace):
    from tsfleet.live.opcua import OpcuaSecurity

    policy = args.opcua_security or ("Basic256Sha256" if args.opcua_cert else "none")
    return OpcuaSecurity(
        policy=policy, mode=args.opcua_mode, cert_file=args.opcua_cert, key_file=args.opcua_key,
        server_cert_file=args.opcua_server_cert, username=args.opcua_username,
        password_file=args.opcua_password_file, password_env=args.opcua_password_env)


def cmd_serve(args: argparse.Namespace) -> int:
    from tsfleet.cliutil import db_path
    from tsfleet.errors import InvalidParameter
    from tsfleet.live.netservers import NETWORK_SERVERS
    from tsfleet.live.server import ServeConfig, parse_size, serve
    from tsfleet.service.cadence import parse_duration, parse_every

    if not (args.mqtt or args.coap or args.coaps or args.chirpstack_mqtt or args.tts_mqtt
            or args.snmp_targets or args.opcua):
        raise InvalidParameter("give --mqtt HOST:PORT, --coap HOST:PORT, --coaps HOST:PORT "
                               "or several (or a network server: --chirpstack-mqtt, "
                               "--tts-mqtt; or --opcua URL)")
    layout_server = NETWORK_SERVERS.get(args.topic_layout)
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(message)s",
                        level=logging.INFO if args.verbose else logging.WARNING)
    if not args.verbose:
        logging.getLogger("tsfleet.live").setLevel(logging.WARNING)
        logging.getLogger("tsfleet.service").setLevel(logging.WARNING)
    topics = args.topics or (list(layout_server.topics) if layout_server else ["fleet/#"])
    logging.getLogger("tsfleet.live.broker").setLevel(logging.INFO)  # connection events
    if args.memory_log is not None:
        if not args.memory_log > 0:
            raise InvalidParameter(f"--memory-log: expected seconds > 0, got {args.memory_log:g}")
        logging.getLogger("tsfleet.live.memory").setLevel(logging.INFO)
    config = ServeConfig(
        db=db_path(args), mqtt=args.mqtt, coap=args.coap, topics=topics,
        topic_layout=args.topic_layout, device_from=args.device_from, client_id=args.client_id,
        receive_maximum=args.receive_maximum, max_payload=args.max_payload,
        max_packet=args.max_packet, memory_limit=args.memory_limit,
        cache_limit=None if args.cache_limit == "off" else parse_size(args.cache_limit),
        checkpoint_wal=None if args.checkpoint_wal == "off" else parse_size(args.checkpoint_wal),
        allocator_purge=args.allocator_purge, memory_log_s=args.memory_log,
        batch_rows=args.batch_rows, batch_delay_s=args.batch_delay, profile_dirs=args.profiles,
        analyze_every=parse_every(args.analyze_every),
        analyses_on_writer=args.analyses_on_writer, security=_security(args),
        exit_on_broker_failure_s=args.exit_on_broker_failure, metrics=args.metrics,
        alertmanager=args.alertmanager, coaps=args.coaps, coap_psk_file=args.coap_psk,
        chirpstack_mqtt=args.chirpstack_mqtt, tts_mqtt=args.tts_mqtt,
        snmp_targets=args.snmp_targets, snmp_every_s=parse_duration(args.snmp_every),
        snmp_concurrency=args.snmp_concurrency,
        sparkplug=args.sparkplug, sparkplug_map=args.sparkplug_map,
        snapshot_path=args.snapshot_path, snapshot_every=args.snapshot_every,
        snapshot_storage_version=args.snapshot_storage_version,
        control=not args.no_control, control_port=args.control_port,
        run_command=getattr(args, "run_command", None),
        opcua=args.opcua, opcua_map=args.opcua_map, opcua_security=_opcua_security(args),
        unknown_devices=args.unknown_devices,
        quarantine_keep=args.quarantine_keep)
    cadence = ", ".join(f"{k} {v:g}s" for k, v in config.analyze_every.items()) or "off"
    serve(config, checked=lambda: _start_up_line(config, cadence))
    return 0


def _start_up_line(config, cadence: str) -> None:
    """What serve receives and where it stores it, on stderr once every option is checked."""
    from tsfleet.cliutil import print_sentences

    line = (f"tsfleet serve: {config.db} (mqtt {config.mqtt or '-'}, coap {config.coap or '-'}"
            + (f", chirpstack {config.chirpstack_mqtt}" if config.chirpstack_mqtt else "")
            + (f", tts {config.tts_mqtt}" if config.tts_mqtt else "")
            + (f", snmp {config.snmp_targets} every {config.snmp_every_s:g}s"
               if config.snmp_targets else "")
            + (", sparkplug" if config.sparkplug else "")
            + (", unknown devices quarantined" if config.unknown_devices == "quarantine"
               else "")
            + (f", snapshot {config.snapshot_path} every {config.snapshot_every}"
               if config.snapshot_path else "")
            + (f", opcua {config.opcua} ({config.opcua_security.describe()})"
               if config.opcua else "") + "; "
            f"analysis {cadence})")
    print_sentences([line], file=sys.stderr)


def cmd_snmp_poll(args: argparse.Namespace) -> int:
    """Poll, then store the rows and the raw counters in one go. When ``tsfleet serve``
    holds the store, the poll runs here (it waits on the network, not on the store) and
    serve's writer stores the results (``--store-polled``), like a forwarded ingest."""
    import asyncio

    from tsfleet.cliutil import db_path
    from tsfleet.errors import StoreError
    from tsfleet.fleet import Fleet
    from tsfleet.live.snmp import Poller, load_agents

    if args.store_polled:
        return _store_polled(args)
    agents = load_agents(args.targets)
    poller = Poller(agents, timeout=args.timeout, retries=args.retries,
                    concurrency=args.concurrency)
    path = db_path(args)
    try:
        fleet = Fleet(path)
    except StoreError:
        from tsfleet.remote import find_server

        advert = find_server(path)
        if advert is None:
            raise
        return _poll_beside_serve(args, poller, path, advert)
    with fleet:
        poller.load_state(fleet)  # the previous poll's counters: this one's deltas
        rows = asyncio.run(poller.poll())
        report = fleet.ingest("gateway_stats", rows, label=f"snmp:{args.targets}")
        poller.save_state(fleet)
    _print_polled(rows, report.n_accepted)
    return 0


def _print_polled(rows: list[dict], n_stored: int) -> None:
    from tsfleet.cliutil import plural

    down = sorted(r["gateway_id"] for r in rows if not r["is_up"])
    print(f"polled {plural(len(rows), 'agent')}: {len(rows) - len(down)} up, {len(down)} down"
          + (f" ({', '.join(down[:10])}{', ...' if len(down) > 10 else ''})" if down else "")
          + f"; {plural(n_stored, 'row')} stored")


def _poll_beside_serve(args: argparse.Namespace, poller, path: str, advert: dict) -> int:
    """Read the previous counters through serve, poll from this process, and have serve's
    writer store the results (handed over in a file, removed afterwards)."""
    import asyncio
    import json
    import os
    import tempfile

    from tsfleet.errors import InvalidParameter
    from tsfleet.remote import ServedFleet, forward
    from tsfleet.service.control import snmp_scheduled

    if advert.get("snmp_targets"):
        raise InvalidParameter(snmp_scheduled(advert["snmp_targets"]))
    base = ServedFleet(path, advert).query(poller.STATE_SQL, [poller.gateway_ids()])
    poller.set_state([tuple(r.values()) for r in base])
    rows = asyncio.run(poller.poll())
    fd, handover = tempfile.mkstemp(prefix="tsfleet-snmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"targets": str(args.targets), "base": base, "rows": rows,
                       "state": [[gw, k, str(v), bits, up, at]
                                 for gw, cs in poller.state.items()
                                 for k, (v, bits, up, at) in cs.items()]}, f)
        return forward(advert, ["--db", path, "snmp-poll", "--targets", str(args.targets),
                                "--store-polled", handover])
    finally:
        os.unlink(handover)


def _store_polled(args: argparse.Namespace) -> int:
    """Inside serve (on its writer): store a poll made by ``tsfleet snmp-poll`` beside it,
    unless another such poll stored counters of the same agents after this one read them
    (both would count the same interval)."""
    import json

    from tsfleet.cliutil import open_fleet
    from tsfleet.errors import InvalidParameter
    from tsfleet.live.snmp import Poller

    try:
        with open(args.store_polled, encoding="utf-8") as f:
            polled = json.load(f)
        rows, state, base = polled["rows"], polled["state"], polled["base"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidParameter(f"cannot read the poll's results {args.store_polled}: "
                               f"{exc}") from None
    poller = Poller([{"gateway_id": gw} for gw in sorted({r["gateway_id"] for r in rows})])
    fleet = open_fleet(args)
    now = fleet.query(poller.STATE_SQL, [poller.gateway_ids()])
    if [list(r.values()) for r in now] != [list(r.values()) for r in base]:
        raise InvalidParameter("another snmp-poll stored some of these agents' counters "
                               "while this one ran (both would count the same interval); "
                               "nothing stored: run snmp-poll again")
    report = fleet.ingest("gateway_stats", rows, label=f"snmp:{polled['targets']}")
    poller.set_state(state)
    poller.save_state(fleet)
    _print_polled(rows, report.n_accepted)
    return 0
