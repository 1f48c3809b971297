"""CoAP resource (aiocoap): POST SenML JSON (110) or CBOR (112) to ``/ingest[/<device>]``.

``application/json`` (50) and ``application/cbor`` (60) are accepted for
vendor objects matched by a profile. The answer waits for the commit, like an
MQTT acknowledgement, so a device that gets no answer retransmits and the
store absorbs the duplicate:

- 2.04 Changed: the payload is stored (rows the pipeline rejects, such as an
  impossible value, are in ``quarantine``; unmapped fields in ``unmapped``);
- 4.00 Bad Request: the payload cannot be decoded (diagnostic text);
- 4.13 Request Entity Too Large: over the payload limit (with Size1, the limit);
- 4.15 Unsupported Content-Format: any other content format;
- 5.03 Service Unavailable (Max-Age 1): ``max_in_flight`` requests already wait
  for a commit, or block-wise bodies in assembly fill their memory bound; retry;
  also when the store did not commit in time.

Rejected payloads are quarantined as well, whatever the answer.

Block-wise bodies (RFC 7959 Block1) are assembled here rather than by aiocoap,
whose assembly checks no size and copies the whole body at every block
(quadratic): a body is refused with 4.13 as soon as its announced size (Size1)
or the bytes received pass ``max_payload``, and the bodies in assembly hold at
most ``max_assembly_bytes`` together.
"""

from __future__ import annotations

import asyncio
import time

import aiocoap
import aiocoap.error as coap_error
import aiocoap.resource as resource
from aiocoap.blockwise import ContinueException, IncompleteException, _extract_block_key
from aiocoap.numbers.codes import Code

from tsfleet.live.decode import Decoder
from tsfleet.live.errors import Reject
from tsfleet.live.writer import MAX_KEPT_PAYLOAD, Envelope, Writer

#: CoAP content formats and the format name the decoder uses.
CONTENT_FORMATS = {110: "senml+json", 112: "senml+cbor", 50: None, 60: None}
TEXT_PLAIN = 0
#: Seconds an unfinished block-wise body is kept (CoAP's MAX_TRANSMIT_WAIT).
ASSEMBLY_TIMEOUT_S = 93.0


class Gate:
    """What the ``/ingest`` resources share: the writer, the decoder, the count of
    requests waiting for a commit, and one block-wise assembler."""

    def __init__(self, decoder: Decoder, writer: Writer, *, max_in_flight: int = 4000,
                 max_assembly_bytes: int = 64 * 1024 * 1024, commit_timeout: float = 30.0):
        self.decoder, self.writer = decoder, writer
        self.max_in_flight = max_in_flight
        self.commit_timeout = commit_timeout
        self.in_flight = 0
        self.n_busy = 0
        self.spool = Block1Assembler(self, decoder.max_payload, max_assembly_bytes)

    def busy(self) -> bool:
        return self.in_flight >= self.max_in_flight

    async def submit(self, env: Envelope) -> None:
        """Queue one envelope (the writer may block: not on the event loop)."""
        self.in_flight += 1
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.writer.submit, env)
        finally:
            self.in_flight -= 1


class IngestResource(resource.Resource):
    """``/ingest``: the device comes from the payload (SenML ``bn``, profile field)."""

    def __init__(self, gate: Gate):
        super().__init__()
        self.gate = gate
        self._block1 = gate.spool  # replaces aiocoap's unbounded assembler

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        gate = self.gate
        if gate.busy():
            gate.n_busy += 1
            return _busy("requests waiting for the store")
        gate.in_flight += 1
        try:
            return await self._ingest(request)
        finally:
            gate.in_flight -= 1

    async def _ingest(self, request: aiocoap.Message) -> aiocoap.Message:
        gate = self.gate
        path = "/ingest/" + "/".join(request.opt.uri_path)
        device = request.opt.uri_path[0] if request.opt.uri_path else None
        env = Envelope("coap", path.rstrip("/")[:1000], request.payload, time.time())
        cf = request.opt.content_format
        cf_num = None if cf is None else int(cf)
        if cf_num not in CONTENT_FORMATS:
            env.trim()
            env.reject = Reject("unsupported_content_format",
                                f"content format {cf_num} is not accepted; send SenML JSON "
                                f"(110), SenML CBOR (112), JSON (50) or CBOR (60)")
            await gate.submit(env)
            return _text(Code.UNSUPPORTED_CONTENT_FORMAT, env.reject.detail)
        hint = CONTENT_FORMATS[cf_num] or ("cbor" if cf_num == 60 else None)
        gate.decoder.decode_into(env, fmt=hint, topic_device=device)
        if env.reject is not None:
            await gate.submit(env)
            if env.reject.reason == "oversized_payload":
                return _too_large(gate.decoder.max_payload, env.reject.detail)
            return _text(Code.BAD_REQUEST, f"{env.reject.reason}: {env.reject.detail}")
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def ack() -> None:
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        env.ack = ack
        await gate.submit(env)
        try:
            await asyncio.wait_for(done, gate.commit_timeout)
        except TimeoutError:
            return _busy("the store did not commit in time")
        d = env.decoded
        return _text(Code.CHANGED, f"stored {d.n_readings} readings, "
                     f"{d.n_rows - d.n_readings - len(d.unmapped)} other rows, "
                     f"{len(d.unmapped)} unmapped fields")


class IngestDevices(IngestResource, resource.PathCapable):
    """``/ingest/<device>``: the device comes from the path."""


class _Assembly:
    __slots__ = ("first", "chunks", "n_bytes", "started")

    def __init__(self, first: aiocoap.Message, started: float):
        self.first, self.chunks, self.n_bytes, self.started = first, [], 0, started


class Block1Assembler:
    """RFC 7959 Block1 bodies assembled with their size bounded (the interface of
    aiocoap's ``Block1Spool``: ``feed_and_take`` returns the whole request, or raises
    the answer to give: 2.31 Continue, 4.08 Incomplete, 4.13, 5.03)."""

    def __init__(self, gate: Gate, max_payload: int, max_bytes: int,
                 timeout: float = ASSEMBLY_TIMEOUT_S):
        self.gate, self.max_payload, self.max_bytes, self.timeout = (gate, max_payload,
                                                                     max_bytes, timeout)
        self._open: dict[object, _Assembly] = {}
        self.n_bytes = 0
        self.n_refused = 0

    def feed_and_take(self, req: aiocoap.Message) -> aiocoap.Message:
        block1 = req.opt.block1
        if block1 is None:
            return req
        now = time.monotonic()
        self._expire(now)
        key = _extract_block_key(req)
        if block1.block_number == 0:
            self._drop(key)
            announced = req.opt.size1
            if announced is not None and announced > self.max_payload:
                self._refuse(req, req.payload, announced, "announced (Size1)")
            if self.n_bytes + len(req.payload) > self.max_bytes or self.gate.busy():
                self.gate.n_busy += 1
                raise _Busy("block-wise bodies in assembly")
            asm = self._open[key] = _Assembly(req, now)
        else:
            asm = self._open.get(key)
            if asm is None or block1.start != asm.n_bytes:
                raise IncompleteException  # 4.08: start again from block 0
        if block1.more and not block1.is_valid_for_payload_size(len(req.payload)):
            self._drop(key)
            raise coap_error.BadRequest("payload size does not match Block1")
        if asm.n_bytes + len(req.payload) > self.max_payload:
            self._drop(key)
            head = b"".join(asm.chunks)[:MAX_KEPT_PAYLOAD]
            self._refuse(asm.first, head + req.payload, asm.n_bytes + len(req.payload),
                         "received so far")
        asm.chunks.append(req.payload)
        asm.n_bytes += len(req.payload)
        self.n_bytes += len(req.payload)
        if block1.more:
            raise ContinueException(block1)
        self._drop(key)
        whole = asm.first
        whole.payload = b"".join(asm.chunks)
        whole.opt.block1 = block1
        whole.token, whole.mid = req.token, req.mid
        if req.opt.block2 is not None:
            whole.opt.block2 = req.opt.block2
        return whole

    def _refuse(self, first: aiocoap.Message, head: bytes, n_bytes: int, how: str):
        """Quarantine what was received of an oversized body and answer 4.13."""
        self.n_refused += 1
        path = "/ingest/" + "/".join(first.opt.uri_path)
        detail = (f"block-wise payload of {n_bytes} bytes {how} exceeds the limit of "
                  f"{self.max_payload} bytes")
        env = Envelope("coap", path.rstrip("/")[:1000], head[:MAX_KEPT_PAYLOAD], time.time(),
                       n_bytes=n_bytes, reject=Reject("oversized_payload", detail))
        task = asyncio.get_running_loop().create_task(self.gate.submit(env))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
        raise _TooLarge(self.max_payload, f"oversized_payload: {detail}")

    def _drop(self, key: object) -> None:
        asm = self._open.pop(key, None)
        if asm is not None:
            self.n_bytes -= asm.n_bytes

    def _expire(self, now: float) -> None:
        for key in [k for k, a in self._open.items() if now - a.started > self.timeout]:
            self._drop(key)


_tasks: set[asyncio.Task] = set()  # quarantine submissions still running


class _TooLarge(coap_error.RequestEntityTooLarge):
    def __init__(self, limit: int, message: str):
        super().__init__(message)
        self.limit = limit

    def to_message(self) -> aiocoap.Message:
        msg = super().to_message()
        msg.opt.size1 = self.limit
        return msg


class _Busy(coap_error.ServiceUnavailable):
    def __init__(self, what: str):
        super().__init__(f"busy: too many {what}; retry")

    def to_message(self) -> aiocoap.Message:
        msg = super().to_message()
        msg.opt.max_age = 1
        return msg


def site(decoder: Decoder, writer: Writer, **bounds) -> resource.Site:
    """The CoAP resource tree of ``tsfleet serve``."""
    gate = Gate(decoder, writer, **bounds)
    root = resource.Site()
    root.add_resource(["ingest"], IngestResource(gate))
    root.add_resource(["ingest"], IngestDevices(gate))
    root.add_resource([".well-known", "core"],
                      resource.WKCResource(root.get_resources_as_linkheader))
    return root


async def start_server(decoder: Decoder, writer: Writer, host: str, port: int,
                       **bounds) -> aiocoap.Context:
    """Bind the CoAP server on ``host:port`` (UDP); ``bounds``: see :class:`Gate`."""
    return await aiocoap.Context.create_server_context(site(decoder, writer, **bounds),
                                                      bind=(host, port))


def _text(code: Code, text: str) -> aiocoap.Message:
    return aiocoap.Message(code=code, payload=text.encode("utf-8", "backslashreplace"),
                           content_format=TEXT_PLAIN)


def _too_large(limit: int, detail: str) -> aiocoap.Message:
    msg = _text(Code.REQUEST_ENTITY_TOO_LARGE, f"oversized_payload: {detail}")
    msg.opt.size1 = limit
    return msg


def _busy(what: str) -> aiocoap.Message:
    msg = _text(Code.SERVICE_UNAVAILABLE, f"busy: {what}; retry")
    msg.opt.max_age = 1
    return msg
