"""ingest: everything that brings fixes into FleetWatch.

`ingest.jt808` is the pure JT/T 808 codec (framing, headers, messages, subpackage reassembly, sensor
profiles); the TCP gateway, HTTP batch ingest and file import build on it and on the bus.
"""
