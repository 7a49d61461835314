"""Pure JT/T 808 codec (2011 / 2013 / 2019): no sockets, no asyncio, no Redis.

What a gateway needs, in the order it needs it::

    dec = FrameDecoder()                                  # one per connection
    for item in dec.feed(chunk):
        if isinstance(item, FrameFault): ...         # bad escape / checksum / oversize: count, maybe reply
        elif item.header.subpackage: done = reassembler.add(item.header, item.body, now_ms)
        else: msg = decode_frame(item)               # Message(header, body: Location | LocationBatch | ...)
    row = location_to_fix_row(phone, location, profile, received_ts_ms, backfill)
    reply = encode_reply(h, PlatformGeneralReply(h.serial, h.msg_id, GeneralResult.OK), serial=my_serial)

Every decoding problem raises a subclass of `JT808Error` (or is reported as a `FrameFault`), never anything
else. Modules: `framing` (delimiters, escapes, checksum, `FrameDecoder`), `header`, `messages` (bodies,
encoders), `reassembly` (subpackages), `profiles` (per-vendor sensor mapping), `fixrow`.
"""

from ingest.jt808.errors import (
    BodyError,
    EncodeError,
    FrameError,
    HeaderError,
    JT808Error,
    ReassemblyError,
)
from ingest.jt808.fixrow import FIX_ROW_KEYS, location_to_fix_row
from ingest.jt808.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    Frame,
    FrameDecoder,
    FrameFault,
    build_frame,
    checksum,
    decode_wire,
    escape,
    parse_frame,
    unescape,
)
from ingest.jt808.header import (
    VERSION_2013,
    VERSION_2019,
    Header,
    encode_header,
    encode_phone,
    make_header,
    normalize_phone,
    parse_header,
)
from ingest.jt808.messages import (
    SUPPORTED_MSG_IDS,
    Authenticate,
    Body,
    GeneralResult,
    Heartbeat,
    Location,
    LocationBatch,
    LocationQueryReply,
    Logout,
    Message,
    PlatformGeneralReply,
    RawBody,
    Register,
    RegisterReply,
    RegisterResult,
    RetransmitRequest,
    TerminalGeneralReply,
    bcd_time_to_ms,
    decode_body,
    decode_extra,
    decode_frame,
    decode_location,
    encode_body,
    encode_message,
    encode_reply,
    encode_subpackages,
    ms_to_bcd_time,
)
from ingest.jt808.profiles import (
    BUILTIN_PROFILES,
    DEFAULT_PROFILE,
    NONE_PROFILE,
    SensorProfile,
    Sensors,
    apply_profile,
    load_profiles,
    parse_profiles_toml,
)
from ingest.jt808.reassembly import Incomplete, Reassembled, Reassembler

__all__ = [
    "BUILTIN_PROFILES",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_PROFILE",
    "FIX_ROW_KEYS",
    "NONE_PROFILE",
    "SUPPORTED_MSG_IDS",
    "VERSION_2013",
    "VERSION_2019",
    "Authenticate",
    "Body",
    "BodyError",
    "EncodeError",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "FrameFault",
    "GeneralResult",
    "Header",
    "HeaderError",
    "Heartbeat",
    "Incomplete",
    "JT808Error",
    "Location",
    "LocationBatch",
    "LocationQueryReply",
    "Logout",
    "Message",
    "PlatformGeneralReply",
    "RawBody",
    "Reassembled",
    "Reassembler",
    "ReassemblyError",
    "Register",
    "RegisterReply",
    "RegisterResult",
    "RetransmitRequest",
    "SensorProfile",
    "Sensors",
    "TerminalGeneralReply",
    "apply_profile",
    "bcd_time_to_ms",
    "build_frame",
    "checksum",
    "decode_body",
    "decode_extra",
    "decode_frame",
    "decode_location",
    "decode_wire",
    "encode_body",
    "encode_header",
    "encode_message",
    "encode_phone",
    "encode_reply",
    "encode_subpackages",
    "escape",
    "load_profiles",
    "location_to_fix_row",
    "make_header",
    "ms_to_bcd_time",
    "normalize_phone",
    "parse_frame",
    "parse_header",
    "parse_profiles_toml",
    "unescape",
]
