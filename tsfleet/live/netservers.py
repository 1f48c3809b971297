"""The LoRaWAN network servers ``tsfleet serve`` reads: name -> decoder class.

A decoder class takes ``(known_metrics, profiles, max_payload=...)``, names its
MQTT topic filters in ``topics`` and decodes an envelope in place with
``decode_into(env)`` (``env.source`` is the topic).
"""

from __future__ import annotations

from tsfleet.live.chirpstack import ChirpStack
from tsfleet.live.tts import TheThingsStack

NETWORK_SERVERS: dict[str, type] = {"chirpstack": ChirpStack, "tts": TheThingsStack}
