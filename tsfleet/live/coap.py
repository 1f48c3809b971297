"""CoAP resource (aiocoap): POST SenML JSON (110) or CBOR (112) to ``/ingest[/<device>]``.

``application/json`` (50) and ``application/cbor`` (60) are accepted for
vendor objects matched by a profile. The answer waits for the commit, like an
MQTT acknowledgement, so a device that gets no answer retransmits and the
store absorbs the duplicate:

- 2.04 Changed: the payload is stored (rows the pipeline rejects, such as an
  impossible value, are in ``quarantine``; unmapped fields in ``unmapped``);
- 4.00 Bad Request: the payload cannot be decoded (diagnostic text);
- 4.13 Request Entity Too Large: over the payload limit;
- 4.15 Unsupported Content-Format: any other content format;
- 5.03 Service Unavailable: the store did not commit in time; retry.

Rejected payloads are quarantined as well, whatever the answer.
"""

from __future__ import annotations

import asyncio
import time

import aiocoap
import aiocoap.resource as resource
from aiocoap.numbers.codes import Code

from tsfleet.live.decode import Decoder
from tsfleet.live.errors import PayloadError
from tsfleet.live.writer import Envelope, Writer

#: CoAP content formats and the format name the decoder uses.
CONTENT_FORMATS = {110: "senml+json", 112: "senml+cbor", 50: None, 60: None}
TEXT_PLAIN = 0


class IngestResource(resource.Resource):
    """``/ingest``: the device comes from the payload (SenML ``bn``, profile field)."""

    def __init__(self, decoder: Decoder, writer: Writer, *, commit_timeout: float = 30.0):
        super().__init__()
        self.decoder = decoder
        self.writer = writer
        self.commit_timeout = commit_timeout

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        path = "/ingest/" + "/".join(request.opt.uri_path)
        device = request.opt.uri_path[0] if request.opt.uri_path else None
        env = Envelope("coap", path.rstrip("/"), bytes(request.payload), time.time())
        cf = request.opt.content_format
        cf_num = None if cf is None else int(cf)
        loop = asyncio.get_running_loop()
        if cf_num not in CONTENT_FORMATS:
            env.reject = PayloadError("unsupported_content_format",
                                      f"content format {cf_num} is not accepted; send SenML JSON "
                                      f"(110), SenML CBOR (112), JSON (50) or CBOR (60)")
            await loop.run_in_executor(None, self.writer.submit, env)
            return _text(Code.UNSUPPORTED_CONTENT_FORMAT, env.reject.detail)
        hint = CONTENT_FORMATS[cf_num] or ("cbor" if cf_num == 60 else None)
        self.decoder.decode_into(env, fmt=hint, topic_device=device)
        if env.reject is not None:
            await loop.run_in_executor(None, self.writer.submit, env)
            code = (Code.REQUEST_ENTITY_TOO_LARGE if env.reject.reason == "oversized_payload"
                    else Code.BAD_REQUEST)
            return _text(code, f"{env.reject.reason}: {env.reject.detail}")
        done = loop.create_future()

        def ack() -> None:
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        env.ack = ack
        await loop.run_in_executor(None, self.writer.submit, env)
        try:
            await asyncio.wait_for(done, self.commit_timeout)
        except TimeoutError:
            return _text(Code.SERVICE_UNAVAILABLE, "the store did not commit in time; retry")
        d = env.decoded
        return _text(Code.CHANGED, f"stored {d.n_readings} readings, "
                     f"{d.n_rows - d.n_readings - len(d.unmapped)} other rows, "
                     f"{len(d.unmapped)} unmapped fields")


class IngestDevices(IngestResource, resource.PathCapable):
    """``/ingest/<device>``: the device comes from the path."""


def site(decoder: Decoder, writer: Writer) -> resource.Site:
    """The CoAP resource tree of ``tsfleet serve``."""
    root = resource.Site()
    root.add_resource(["ingest"], IngestResource(decoder, writer))
    root.add_resource(["ingest"], IngestDevices(decoder, writer))
    root.add_resource([".well-known", "core"],
                      resource.WKCResource(root.get_resources_as_linkheader))
    return root


async def start_server(decoder: Decoder, writer: Writer, host: str, port: int
                       ) -> aiocoap.Context:
    """Bind the CoAP server on ``host:port`` (UDP)."""
    return await aiocoap.Context.create_server_context(site(decoder, writer), bind=(host, port))


def _text(code: Code, text: str) -> aiocoap.Message:
    return aiocoap.Message(code=code, payload=text.encode(), content_format=TEXT_PLAIN)
