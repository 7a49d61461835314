"""Per-vendor sensor profiles: where a terminal reports cover, lifting, load, device-on and drum.

JT/T 808 has a standard field only for load (status bits 8-9). Cover (密闭), body lifting (举升), device on
(brush/pump) and mixer drum rotation have none: each vendor or city wires them to a bit of the 0x2A IO word,
a bit of the 0x25 extended-signal word, a threshold on an 0x2B analog channel, or a vendor TLV item. So the
mapping is configuration, one profile per vendor/terminal model, and `apply_profile` turns a `Location` into
`Sensors`. A sensor is None when the profile has no mapping for it or the item is absent from this report:
a missing sensor is never guessed (rules treat "not reported" differently from "off").

TOML format (the `[jt808.profiles.<name>]` tables of the FleetWatch configuration)::

    [jt808.profiles.acme]
    # boolean sensors: a bit ...
    cover_closed = {item = 0x2A, bit = 0, invert = false}   # bit 0 of the 0x2A IO word (big-endian u16)
    lifting      = {item = 0x25, bit = 3}                     # bit 3 of the 0x25 extended-signal word
    device_on    = {item = 0xE3, byte = 1, bit = 2}           # vendor item 0xE3: bit 2 of its byte 1
    # ... or an analog threshold: true when the channel value >= threshold (invert flips it)
    # device_on  = {item = 0x2B, channel = 0, threshold = 1200}      # channel 0 = AD0 (low 16 bits)

    # load: the standard status bits, a vendor field mapped value by value, or analog levels
    load = "status"                                           # status bits 8-9: 00 empty, 01 half, 11 full
    # load = {item = 0xE5, byte = 0, values = {0 = "empty", 1 = "half", 2 = "full"}}
    # load = {item = 0x2B, channel = 1, half = 800, full = 2000}     # < half empty, < full half, else full
    # load = "none"                                           # this vendor does not report load

    # drum: a pair of bits (forward/reverse; both off = stopped, both on = unknown) or a vendor field
    drum = {forward = {item = 0x2A, bit = 4}, reverse = {item = 0x2A, bit = 5}}
    # drum = {item = 0xE6, byte = 0, width = 2, values = {0 = "stopped", 1 = "forward", 2 = "reverse"}}

Bits count from the least significant bit of the item read as a big-endian unsigned integer, or of the byte
at `byte` (0 = first byte of the value) when `byte` is given. A field source reads `width` bits starting at
`bit`; raw values not listed in `values` give None. Load states are "empty"/"half"/"full" (0/1/3), drum
states "stopped"/"forward"/"reverse" (0/1/2); the integers are accepted too. Unset keys mean "not mapped".

Built-in profiles: ``default`` maps only load, to the standard status bits; ``none`` maps nothing (for
terminals that leave bits 8-9 at 00 without a load sensor, where "empty" would be a lie).

Profiles are compiled once into small closures (cached per profile object), so `apply_profile` costs a
few dictionary look-ups per fix.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ingest.jt808.messages import Location

__all__ = [
    "BUILTIN_PROFILES",
    "DEFAULT_PROFILE",
    "NONE_PROFILE",
    "AnalogLevels",
    "AnalogThreshold",
    "BitSource",
    "DrumBits",
    "FieldSource",
    "SensorProfile",
    "Sensors",
    "apply_profile",
    "compile_profile",
    "load_profiles",
    "parse_profiles_toml",
]

LOAD_STATES: dict[str, int] = {"empty": 0, "half": 1, "full": 3}
DRUM_STATES: dict[str, int] = {"stopped": 0, "forward": 1, "reverse": 2}

_Item = Annotated[int, Field(ge=0, le=255)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BitSource(_Model):
    """One bit of an item: 0x2A IO status, 0x25 extended signals, or a vendor item (optionally one byte)."""

    item: _Item
    bit: Annotated[int, Field(ge=0, le=31)]
    byte: Annotated[int, Field(ge=0, le=254)] | None = None
    invert: bool = False


class AnalogThreshold(_Model):
    """True when an 0x2B analog channel (0 = AD0, low 16 bits; 1 = AD1, high 16 bits) is >= `threshold`."""

    item: _Item = 0x2B
    channel: Literal[0, 1]
    threshold: Annotated[int, Field(ge=0, le=0xFFFF)]
    invert: bool = False


class AnalogLevels(_Model):
    """Load from an analog channel (weighing sensor): < `half` empty, < `full` half, else full."""

    item: _Item = 0x2B
    channel: Literal[0, 1]
    half: Annotated[int, Field(ge=0, le=0xFFFF)]
    full: Annotated[int, Field(ge=0, le=0xFFFF)]


class FieldSource(_Model):
    """A multi-valued field of an item: `width` bits from `bit` (of `byte`, or of the whole item), mapped
    through `values` (raw value → state name or number). Unlisted raw values → None."""

    item: _Item
    byte: Annotated[int, Field(ge=0, le=254)] | None = None
    bit: Annotated[int, Field(ge=0, le=31)] = 0
    width: Annotated[int, Field(ge=1, le=32)] = 8
    values: dict[int, int | str]


class DrumBits(_Model):
    """Drum rotation from two bits: forward only → forward, reverse only → reverse, neither → stopped,
    both → None (contradiction, not guessed)."""

    forward: BitSource
    reverse: BitSource


def _none_literal(v: Any) -> Any:
    return None if v == "none" else v


BoolSource = Annotated[BitSource | AnalogThreshold | None, BeforeValidator(_none_literal)]
LoadSource = Annotated[Literal["status"] | FieldSource | AnalogLevels | None, BeforeValidator(_none_literal)]
DrumSource = Annotated[DrumBits | FieldSource | None, BeforeValidator(_none_literal)]


class SensorProfile(_Model):
    """Where one vendor's terminals report each sensor. See the module docstring for the TOML format."""

    name: str = "default"
    cover_closed: BoolSource = None
    lifting: BoolSource = None
    device_on: BoolSource = None
    load: LoadSource = None
    drum: DrumSource = None

    @field_validator("load")
    @classmethod
    def _load_values(cls, v: Any) -> Any:
        if isinstance(v, FieldSource):
            _states(v.values, LOAD_STATES, "load")
        if isinstance(v, AnalogLevels) and v.half > v.full:
            raise ValueError("load levels: half must be <= full")
        return v

    @field_validator("drum")
    @classmethod
    def _drum_values(cls, v: Any) -> Any:
        if isinstance(v, FieldSource):
            _states(v.values, DRUM_STATES, "drum")
        return v


def _states(values: Mapping[int, int | str], names: dict[str, int], what: str) -> dict[int, int]:
    out = {}
    allowed = set(names.values())
    for raw, state in values.items():
        code = names.get(state) if isinstance(state, str) else state
        if code is None or code not in allowed:
            raise ValueError(f"{what}: unknown state {state!r} (use {sorted(names)} or {sorted(allowed)})")
        out[raw] = code
    return out


class Sensors(msgspec.Struct, frozen=True, gc=False):
    """Sensor values of one fix; None = not mapped or not in this report."""

    cover_closed: bool | None = None
    lifting: bool | None = None
    load: int | None = None  # 0 empty, 1 half, 3 full
    device_on: bool | None = None
    drum: int | None = None  # 0 stopped, 1 forward, 2 reverse


DEFAULT_PROFILE = SensorProfile(name="default", load="status")
NONE_PROFILE = SensorProfile(name="none")
#: The simulator's terminals (`fleetwatch simulate --live jt808://…`): one data item per sensor, so "not
#: reported" survives for every sensor set. Built in so that a demo or test gateway decodes them unconfigured.
SIM_PROFILE = SensorProfile.model_validate({
    "name": "fleetwatch_sim",
    "cover_closed": {"item": 0x2A, "bit": 0},                          # IO status word: cover switch
    "lifting": {"item": 0x25, "bit": 3},                               # extended signals: body lifted
    "device_on": {"item": 0x2B, "channel": 0, "threshold": 1200},      # AD0: brush / pump motor current
    "load": {"item": 0xE5, "byte": 0, "values": {0: "empty", 1: "half", 3: "full"}},
    "drum": {"item": 0xE6, "byte": 0, "width": 2, "values": {0: "stopped", 1: "forward", 2: "reverse"}},
})
BUILTIN_PROFILES: dict[str, SensorProfile] = {"default": DEFAULT_PROFILE, "none": NONE_PROFILE,
                                              "fleetwatch_sim": SIM_PROFILE}


# -- compilation ---------------------------------------------------------------------------------------------

_Getter = Callable[[Location], Any]


def _none(_: Location) -> None:
    return None


def _raw_bits(item: int, byte: int | None) -> Callable[[Location], int | None]:
    if byte is None:

        def get(loc: Location) -> int | None:
            v = loc.extras.get(item)
            return None if not v else int.from_bytes(v, "big")

    else:

        def get(loc: Location) -> int | None:
            v = loc.extras.get(item)
            return None if v is None or len(v) <= byte else v[byte]

    return get


def _bit_getter(src: BitSource) -> Callable[[Location], bool | None]:
    item, bit, byte, flip = src.item, src.bit, src.byte, int(src.invert)
    # one closure per shape (no nested reader call): this runs for every fix
    if byte is None:

        def get(loc: Location) -> bool | None:
            v = loc.extras.get(item)
            return None if not v else (int.from_bytes(v, "big") >> bit & 1) != flip

    else:

        def get(loc: Location) -> bool | None:
            v = loc.extras.get(item)
            return None if v is None or len(v) <= byte else (v[byte] >> bit & 1) != flip

    return get


def _analog_value(item: int, channel: int) -> Callable[[Location], int | None]:
    shift = 16 * channel

    def get(loc: Location) -> int | None:
        v = loc.extras.get(item)
        if v is None or len(v) != 4:
            return None
        return int.from_bytes(v, "big") >> shift & 0xFFFF

    return get


def _bool_getter(src: BitSource | AnalogThreshold | None) -> _Getter:
    if src is None:
        return _none
    if isinstance(src, BitSource):
        return _bit_getter(src)
    read = _analog_value(src.item, src.channel)
    threshold, invert = src.threshold, src.invert

    def get(loc: Location) -> bool | None:
        v = read(loc)
        return None if v is None else (v >= threshold) is not invert

    return get


def _field_getter(src: FieldSource, names: dict[str, int]) -> _Getter:
    read = _raw_bits(src.item, src.byte)
    shift, mask = src.bit, (1 << src.width) - 1
    table = _states(src.values, names, "field")

    def get(loc: Location) -> int | None:
        v = read(loc)
        return None if v is None else table.get(v >> shift & mask)

    return get


def _status_load(loc: Location) -> int | None:
    v = (loc.status >> 8) & 3
    return None if v == 2 else v


def _load_getter(src: Any) -> _Getter:
    if src is None:
        return _none
    if src == "status":
        return _status_load
    if isinstance(src, FieldSource):
        return _field_getter(src, LOAD_STATES)
    read = _analog_value(src.item, src.channel)
    half, full = src.half, src.full

    def get(loc: Location) -> int | None:
        v = read(loc)
        if v is None:
            return None
        return 0 if v < half else 1 if v < full else 3

    return get


def _drum_getter(src: DrumBits | FieldSource | None) -> _Getter:
    if src is None:
        return _none
    if isinstance(src, FieldSource):
        return _field_getter(src, DRUM_STATES)
    fwd, rev = _bit_getter(src.forward), _bit_getter(src.reverse)

    def get(loc: Location) -> int | None:
        f, r = fwd(loc), rev(loc)
        if f is None or r is None or (f and r):
            return None
        return 1 if f else 2 if r else 0

    return get


SensorTuple = tuple[bool | None, bool | None, int | None, bool | None, int | None]
_Compiled = Callable[[Location], SensorTuple]
_CACHE: dict[int, tuple[SensorProfile, _Compiled]] = {}


def _build(profile: SensorProfile) -> _Compiled:
    c, li, lo, d, dr = (
        _bool_getter(profile.cover_closed),
        _bool_getter(profile.lifting),
        _load_getter(profile.load),
        _bool_getter(profile.device_on),
        _drum_getter(profile.drum),
    )
    if (c, li, d, dr) == (_none,) * 4:  # the built-in profiles: only load, or nothing
        if lo is _none:
            return lambda loc: (None, None, None, None, None)
        return lambda loc: (None, None, lo(loc), None, None)
    c_, li_, lo_, d_, dr_ = (g is not _none for g in (c, li, lo, d, dr))

    def sensors(loc: Location) -> SensorTuple:  # unmapped sensors cost a branch, not a call
        return (
            c(loc) if c_ else None,
            li(loc) if li_ else None,
            lo(loc) if lo_ else None,
            d(loc) if d_ else None,
            dr(loc) if dr_ else None,
        )

    return sensors


def compile_profile(profile: SensorProfile) -> _Compiled:
    """`profile` as one function ``location -> (cover_closed, lifting, load, device_on, drum)``, cached per
    profile object (profiles are immutable)."""
    hit = _CACHE.get(id(profile))
    if hit is not None and hit[0] is profile:
        return hit[1]
    comp = _build(profile)
    if len(_CACHE) >= 1024:  # profiles are few; this only guards against callers building one per fix
        _CACHE.clear()
    _CACHE[id(profile)] = (profile, comp)  # keeping the profile alive keeps its id from being reused
    return comp


def apply_profile(location: Location, profile: SensorProfile) -> Sensors:
    """Read the sensors of one location report through a vendor profile."""
    return Sensors(*compile_profile(profile)(location))


# -- loading -------------------------------------------------------------------------------------------------


def load_profiles(source: Mapping[str, Any] | Path) -> dict[str, SensorProfile]:
    """Profiles from parsed configuration or a TOML file, plus the built-ins (which a table may override).

    Accepts the whole configuration (``{"jt808": {"profiles": {...}}}``), the ``profiles`` table, or
    ``{"profiles": {...}}``. Raises pydantic's `ValidationError` naming the bad key."""
    if isinstance(source, Path):
        with source.open("rb") as fh:
            data: Mapping[str, Any] = tomllib.load(fh)
    else:
        data = source
    if "jt808" in data:
        table = data["jt808"].get("profiles", {})
    elif "profiles" in data and isinstance(data["profiles"], Mapping):
        table = data["profiles"]
    else:
        table = data
    out = dict(BUILTIN_PROFILES)
    for name, spec in table.items():
        out[name] = SensorProfile.model_validate({"name": name, **spec})
    return out


def parse_profiles_toml(text: str) -> dict[str, SensorProfile]:
    """`load_profiles` for TOML text."""
    return load_profiles(tomllib.loads(text))
