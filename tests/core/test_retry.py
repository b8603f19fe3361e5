"""A schema registry that is down while a candle message waits to be decoded: waited out, then decoded.

The registry is a real HTTP server (the Confluent read API of ``schemas.registry_api``) that starts only
after the worker's decode has failed twice; the client is the worker's own ``RegistrySchemaStore``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from schemas import LocalSchemaStore, MultiCodec
from schemas.registry import RegistrySchemaStore
from schemas.registry_api import RegistryAnswers
from streams.broker import free_port
from core.candle_messages import decode_candle_message
from core.retry import until_available

ANSWERS = RegistryAnswers(LocalSchemaStore(), {})


class _Registry(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        path = self.path.split("?")[0]
        status, body = ANSWERS.schema_by_id(int(path.rsplit("/", 1)[1])) if path.startswith("/schemas/ids/") else (404, {})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_a_registry_outage_is_waited_out_and_the_message_decoded_once_it_is_back():
    port = free_port()
    message = MultiCodec(["Candle", "CandleBatch"], LocalSchemaStore()).encode("Candle", {
        "symbol": "ETH-BTC", "timeframe": "5m", "open_time": 1_515_560_100_000, "open": 0.0984, "high": 0.0995,
        "low": 0.0982, "close": 0.0994, "volume": 1820.5})
    # The worker's codec knows no ids of its own here: every id is the registry's (a foreign producer's).
    codec = MultiCodec(["Candle", "CandleBatch"], RegistrySchemaStore(f"http://127.0.0.1:{port}"))
    servers, waits = [], []

    async def wait_then_start_the_registry(seconds):
        waits.append(seconds)
        if len(waits) == 2:
            server = ThreadingHTTPServer(("127.0.0.1", port), _Registry)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)

    try:
        decoded = asyncio.run(until_available(lambda: decode_candle_message(codec, message, "5m"), "decoding",
                                              sleep=wait_then_start_the_registry))
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    [candle] = decoded
    assert candle.symbol == "ETH-BTC" and candle.close == 0.0994
    assert waits == [0.5, 1.0]  # refused twice (nothing listening), decoded on the third try


def test_other_errors_are_not_retried():
    def broken():
        raise ValueError("a bug, not an outage")

    async def never(seconds):
        raise AssertionError("waited for an error that is no outage")

    with pytest.raises(ValueError, match="a bug"):
        asyncio.run(until_available(broken, "decoding", sleep=never))
