"""JT/T 808 TCP gateway: terminals in, fix blocks on the Redis bus out, 0x8001 only once they are there.

Modules: `server` (Gateway, run_in_thread, serve), `connection` (per-terminal protocol and session),
`publisher` (cross-connection batching, Arrow blocks, one XADD pipeline per flush), `positions`
(vectorised location decoding), `replies` (fast 0x8001), `options` (the `[jt808]` configuration keys).
"""

from ingest.gateway.options import GatewayOptions
from ingest.gateway.server import Gateway, GatewayStats, GatewayThread, run_in_thread, serve

__all__ = ["Gateway", "GatewayOptions", "GatewayStats", "GatewayThread", "run_in_thread", "serve"]
