"""Codec micro-benchmark: ``python -m ingest.jt808.bench``.

Measures the pure decode path the gateway runs per frame (no sockets), best of several rounds, so a change
to the hot path can be checked in seconds. Numbers depend on the machine and its load; compare runs made
on the same machine.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from ingest.jt808.fixrow import location_to_fix_row
from ingest.jt808.framing import FrameDecoder, decode_wire
from ingest.jt808.messages import Location, LocationBatch, decode_frame, decode_location, encode_message
from ingest.jt808.profiles import DEFAULT_PROFILE, parse_profiles_toml

VENDOR = parse_profiles_toml(
    """
[jt808.profiles.bench]
cover_closed = {item = 0x2A, bit = 0}
lifting = {item = 0x25, bit = 0}
drum = {forward = {item = 0x2A, bit = 1}, reverse = {item = 0x2A, bit = 2}}
"""
)["bench"]


def sample_frames(n: int = 10_000) -> list[bytes]:
    """0x0200 frames with five common extras (mileage, rssi, satellites, IO, extended signals), ~65 bytes."""
    rng = random.Random(808)
    out = []
    for k in range(n):
        loc = Location(
            0, 0x000C0003, 22.5 + rng.random() / 10, 114.0 + rng.random() / 10, 20, 35.5, 180,
            1_700_000_000_000 + k * 1000,
            extras={0x01: (12345 + k).to_bytes(4, "big"), 0x30: b"\x1f", 0x31: b"\x0c", 0x2A: b"\x00\x05",
                    0x25: b"\x00\x00\x00\x01"},
        )
        out.append(encode_message(loc, phone="013812345678", serial=k & 0xFFFF))
    return out


def best(fn: Callable[[], int], rounds: int = 5) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(rounds):
        t = time.process_time()  # CPU time of this process: less disturbed by other load than wall time
        count = fn()
        times.append(time.process_time() - t)
    return min(times), count


def main() -> None:
    frames = sample_frames()
    stream = b"".join(frames)
    bodies = [decode_wire(f).body for f in frames]
    batch = encode_message(LocationBatch(1, [decode_location(b) for b in bodies[:18]]), phone="1", serial=1)

    def split() -> int:
        dec = FrameDecoder()
        return sum(len(dec.feed(f)) for f in frames)

    def body_only() -> int:
        for b in bodies:
            decode_location(b)
        return len(bodies)

    def per_frame() -> int:
        dec = FrameDecoder()
        n = 0
        for f in frames:
            for fr in dec.feed(f):
                decode_frame(fr)  # type: ignore[arg-type]
                n += 1
        return n

    def chunked() -> int:
        dec = FrameDecoder()
        n = 0
        for i in range(0, len(stream), 65536):
            for fr in dec.feed(stream[i : i + 65536]):
                decode_frame(fr)  # type: ignore[arg-type]
                n += 1
        return n

    def rows(profile=DEFAULT_PROFILE) -> Callable[[], int]:  # type: ignore[no-untyped-def]
        def run() -> int:
            dec = FrameDecoder()
            out: list[dict[str, object]] = []
            n = 0
            for f in frames:
                for fr in dec.feed(f):
                    m = decode_frame(fr)  # type: ignore[arg-type]
                    out.append(location_to_fix_row(fr.header.phone, m.body, profile, 0, False))  # type: ignore
                    if len(out) == 512:  # a gateway publishes rows in blocks and drops them
                        n += len(out)
                        out = []
            return n + len(out)

        return run

    def batches() -> int:
        dec = FrameDecoder()
        n = 0
        for _ in range(500):
            for fr in dec.feed(batch):
                for loc in decode_frame(fr).body.items:  # type: ignore[union-attr, arg-type]
                    location_to_fix_row("1", loc, DEFAULT_PROFILE, 0, True)
                    n += 1
        return n

    print(f"0x0200 frame: {len(frames[0])} bytes on the wire, 5 extras; 0x0704: 18 items, {len(batch)} bytes")
    for label, fn in (
        ("split + unescape + checksum + header (1 frame per read)", split),
        ("0x0200 body decode only", body_only),
        ("split + decode 0x0200 (1 frame per read)", per_frame),
        ("split + decode 0x0200 (64 KiB reads)", chunked),
        ("split + decode + fix row, default profile", rows()),
        ("split + decode + fix row, vendor profile (3 sensors)", rows(VENDOR)),
        ("0x0704 back-fill: split + decode + fix rows (per fix)", batches),
    ):
        secs, n = best(fn)
        print(f"  {label:56s} {n / secs:>10,.0f} /s   {secs / n * 1e6:6.2f} µs")


if __name__ == "__main__":
    main()
