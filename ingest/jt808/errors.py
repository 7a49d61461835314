"""The only exceptions the JT/T 808 codec raises.

Everything that can go wrong with bytes from a terminal is a `JT808Error` (a `ValueError`), so a gateway
can wrap one `except JT808Error` around a decode and be sure that a hostile or broken terminal never raises
anything else (the fuzz test holds the codec to that). Subclasses say *where* decoding failed, which decides
the reply: a frame whose header parsed can still be answered with 0x8001 "bad message".
"""

from __future__ import annotations

__all__ = [
    "BodyError",
    "EncodeError",
    "FrameError",
    "HeaderError",
    "JT808Error",
    "ReassemblyError",
]


class JT808Error(ValueError):
    """Base of every codec error."""


class FrameError(JT808Error):
    """The frame itself is unusable: bad escape, too short, oversize, missing delimiters."""


class HeaderError(FrameError):
    """The message header cannot be parsed (too short for its declared layout)."""


class BodyError(JT808Error):
    """The header is fine but the body does not fit the message's layout (too short, bad counts)."""


class EncodeError(JT808Error):
    """A value cannot be represented on the wire (out of range, not GBK-encodable, body > 1023 bytes)."""


class ReassemblyError(JT808Error):
    """A subpackage header is inconsistent (index 0 or beyond the total, total 0)."""
