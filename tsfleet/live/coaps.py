"""CoAP over DTLS with pre-shared keys (``tsfleet serve --coaps HOST:PORT --coap-psk FILE``).

The same resources as plain CoAP (``POST /ingest``, ``/ingest/<device>``), served by
aiocoap's ``tinydtls_server`` transport, which needs the ``DTLSSocket`` package
(a Cython wrapper of tinydtls; building it needs autoconf, automake and libtool).
A device proves itself with its PSK identity and key; a client with a wrong key
never completes the handshake, so its request times out on its side.

aiocoap's DTLS server binds one address (not 0.0.0.0 or ::) and adds 1 to the
port it is given (5683 -> 5684): :func:`start_dtls_server` corrects for that, so
the port given is the port served.

The key file has one ``identity:key`` line per device (``#`` starts a comment); a
key written ``hex:...`` is hex, otherwise its UTF-8 bytes are the key.

>>> parse_psk_lines(["# plant A", "th-17:hex:00ff10", "th-18:s3cret"])
{'th-17': b'\\x00\\xff\\x10', 'th-18': b's3cret'}
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tsfleet.errors import InvalidParameter

#: What aiocoap's DTLS server adds to the port it is given (COAPS_PORT - COAP_PORT).
_AIOCOAP_PORT_OFFSET = 1


def dtls_available() -> str | None:
    """None when DTLS can be served here, else why not (one line)."""
    try:
        from DTLSSocket import dtls  # noqa: F401
    except ImportError as exc:
        return (f"CoAP over DTLS needs the DTLSSocket package (pip install DTLSSocket; it "
                f"builds tinydtls with autoconf, automake and libtool): {exc}")
    return None


def parse_psk_lines(lines: Iterable[str], source: str = "the PSK file") -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        identity, sep, key = line.partition(":")
        if not sep or not identity or not key:
            raise InvalidParameter(f"{source} line {n}: expected identity:key, got {line!r}")
        if key.startswith("hex:"):
            try:
                secret = bytes.fromhex(key[4:])
            except ValueError:
                raise InvalidParameter(f"{source} line {n}: the key after hex: is not "
                                       f"hexadecimal") from None
        else:
            secret = key.encode()
        if identity in keys:
            raise InvalidParameter(f"{source} line {n}: identity {identity!r} given twice")
        keys[identity] = secret
    if not keys:
        raise InvalidParameter(f"{source} holds no identity:key line")
    return keys


def read_psk_file(path: str) -> dict[str, bytes]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidParameter(f"cannot read the CoAP PSK file {path}: {exc.strerror}") from None
    return parse_psk_lines(text.splitlines(), f"PSK file {path}")


def credentials(keys: dict[str, bytes]):
    """aiocoap server credentials: one DTLS PSK entry per identity."""
    from aiocoap.credentials import CredentialsMap

    creds = CredentialsMap()
    creds.load_from_dict({f":{identity}": {"dtls": {"psk": key, "client-identity":
                                                    identity.encode()}}
                          for identity, key in keys.items()})
    return creds


async def start_dtls_server(decoder, writer, host: str, port: int, keys: dict[str, bytes]):
    """Serve ``coaps://host:port`` with the plain CoAP server's resources."""
    import aiocoap

    from tsfleet.live.coap import site

    why = dtls_available()
    if why:
        raise InvalidParameter(why)
    if host in ("", "0.0.0.0", "::"):
        raise InvalidParameter("aiocoap's DTLS server binds one address, not "
                               f"{host or 'any'}: give --coaps IP:PORT")
    return await aiocoap.Context.create_server_context(
        site(decoder, writer), bind=(host, port - _AIOCOAP_PORT_OFFSET),
        transports=["tinydtls_server"], server_credentials=credentials(keys))
