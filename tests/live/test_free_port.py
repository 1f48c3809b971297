"""free_port hands out ports below the kernel's ephemeral range, free when asked."""

from __future__ import annotations

import socket

from tsfleet.live.broker import FIRST_PORT, _ephemeral_low, free_port


def test_free_ports_lie_below_the_ephemeral_range_and_can_be_bound(tmp_path):
    low = _ephemeral_low()
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM) * 10:
        port = free_port(kind)
        assert FIRST_PORT <= port < low
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", port))
    (tmp_path / "range").write_text("40000\t60999\n")
    assert _ephemeral_low(str(tmp_path / "range")) == 40_000
    assert _ephemeral_low(str(tmp_path / "missing")) == 32_768
    (tmp_path / "bad").write_text("")
    assert _ephemeral_low(str(tmp_path / "bad")) == 32_768
