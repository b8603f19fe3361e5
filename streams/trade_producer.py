"""Publishing trade results: how a trading engine tells Candleflow what its signals made.

Each closed trade is one Outcome record (source TRADE, ``learning.trades.trade_outcome`` checks it and
gives it its deterministic id) on the ``outcomes`` topic, keyed by symbol: it lands in the partition of
the symbol's candles, whose worker counts it per model version (P&L, hit rate: ``GET /models`` ->
``trades``). ``candleflow produce-outcomes FILE.jsonl`` sends a file of them, one JSON object per line.

>>> async def report(signal):                      # doctest: +SKIP
...     async with TradeProducer(Settings.from_env()) as producer:
...         await producer.send({"signal_id": signal["id"], "symbol": signal["symbol"], "timeframe": "5m",
...                              "open_time": signal["open_time"], "horizon": 1,
...                              "model_version": signal["model_version"], "entry_price": 0.0921,
...                              "exit_price": 0.0925, "pnl": 0.43, "status": "closed"})
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from learning.trades import trade_outcome
from schemas import AvroCodec, schema_store
from core.errors import InvalidInput
from kafka_io.security import aiokafka_security
from streams.producer import QueuedProducer
from core.settings import Settings

__all__ = ["TradeProducer", "read_trade_results"]

MAX_LINE_BYTES = 64 * 1024


class TradeProducer(QueuedProducer):
    """Publishes trade results as Outcome records (Avro, Confluent wire format) keyed by symbol."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.codec = AvroCodec("Outcome", schema_store(settings))
        self._producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap, acks="all", **aiokafka_security(settings))
        self._pending: list[Any] = []

    async def send(self, result: Mapping[str, Any]) -> dict[str, Any]:
        """Queue one trade result; returns the Outcome record sent. InvalidInput (nothing sent) if it is not one."""
        outcome = trade_outcome(result)
        self._pending.append(await self._producer.send(self.settings.topic("outcomes"), self.codec.encode(outcome),
                                                       key=outcome["symbol"].encode()))
        return outcome


def read_trade_results(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | InvalidInput]]:
    """(line number, the parsed object or why it is not one) for each non-empty line of a JSONL file."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            if len(line) > MAX_LINE_BYTES:
                yield number, InvalidInput(f"line of {len(line)} bytes exceeds {MAX_LINE_BYTES}")
                continue
            try:
                item = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                yield number, InvalidInput(f"not JSON: {exc}")
                continue
            yield number, item if isinstance(item, dict) else InvalidInput("not a JSON object")
