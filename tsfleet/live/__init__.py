"""Live ingest: MQTT and CoAP payloads (SenML, LwM2M, vendor profiles) -> the store."""

from tsfleet.live.decode import Decoder, TopicLayout
from tsfleet.live.errors import PayloadError, ProfileError
from tsfleet.live.profiles import Profile, Profiles, load_profile
from tsfleet.live.server import ServeConfig, Server, serve
from tsfleet.live.writer import Envelope, Writer

__all__ = ["Decoder", "Envelope", "PayloadError", "Profile", "ProfileError", "Profiles",
           "ServeConfig", "Server", "TopicLayout", "Writer", "load_profile", "serve"]
