"""Inputs of ``bench.pipeline``: many symbols made from the real candle files, and fast Avro framing.

Symbol k replays real series k mod (number of files) from candle (37 * k) mod its length (wrapping
round), prices scaled by 1 + k/1000, under the name ``<SERIES>.<k>`` (e.g. ``ETH-BTC.0007``), with
its open times moved onto one common 5-minute grid: step t of every symbol has the same open time,
so "2,000 symbols close the same candle" is a real, aligned burst.

The bench encodes millions of candles; ``schemas.MultiCodec.encode`` (validating, ~50 us) would make
the producer the bottleneck, so :class:`FastCandleEncoder` writes the same bytes directly (~3 us),
checked against the codec at start-up (:meth:`FastCandleEncoder.verify`).
"""

from __future__ import annotations

import struct
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner

from schemas import MultiCodec, store_from_url
from core.candle import Candle
from core.candle_files import read_candle_file

__all__ = ["Universe", "FastCandleEncoder", "partition_of", "CANDLE_DIR"]

CANDLE_DIR = Path(__file__).resolve().parents[1] / "data" / "candles"
STEP_MS = 300_000
BASE_OPEN_TIME = 1_700_000_100_000 - 1_700_000_100_000 % STEP_MS  # 2023-11-14, on the 5m grid

_partitioner = DefaultPartitioner()


def partition_of(key: bytes, partitions: int) -> int:
    """The partition aiokafka's (and Kafka's Java client's) default partitioner picks: murmur2 of the key."""
    ids = list(range(partitions))
    return _partitioner(key, ids, ids)


class Universe:
    """``n_symbols`` symbols replaying the real series; ``candle(k, step)`` is symbol k's candle at ``step``."""

    def __init__(self, n_symbols: int, files: list[Path] | None = None):
        files = files or sorted(CANDLE_DIR.glob("*.csv.gz"))
        if not files:
            raise SystemExit(f"no candle files in {CANDLE_DIR}")
        self.files = files
        self.series: list[tuple[str, list[tuple[float, ...]]]] = []
        for f in files:
            loaded = read_candle_file(f)
            rows = [(c.open, c.high, c.low, c.close, float(c.volume)) for c in loaded.candles]
            self.series.append((loaded.candles[0].symbol, rows))
        self.n_symbols = n_symbols
        self.names = [f"{self.series[k % len(self.series)][0]}.{k:04d}" for k in range(n_symbols)]
        self.keys = [n.encode() for n in self.names]

    def describe(self) -> str:
        lens = ", ".join(f"{name} ({len(rows)} candles)" for name, rows in self.series)
        return (f"{self.n_symbols} symbols from {len(self.series)} real series [{lens}]: symbol k replays series k mod "
                f"{len(self.series)} from candle 37k mod its length, prices x (1 + k/1000), re-timed onto one 5m grid")

    def candle(self, k: int, step: int) -> Candle:
        _, rows = self.series[k % len(self.series)]
        o, h, l, c, v = rows[(37 * k + step) % len(rows)]
        s = 1.0 + k / 1000.0
        return Candle(self.names[k], "5m", BASE_OPEN_TIME + step * STEP_MS, o * s, h * s, l * s, c * s, v)


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_FIVE_DOUBLES = struct.Struct("<5d")
_NO_OPTIONALS = b"\x00" * 5  # quote_volume, trades, taker_buy_base_volume, taker_buy_quote_volume, spread_bps: null


class FastCandleEncoder:
    """Confluent-framed Avro Candle / CandleBatch bytes, identical to ``MultiCodec``'s, without its checks."""

    def __init__(self) -> None:
        self.codec = MultiCodec(["Candle", "CandleBatch"], store_from_url(None))
        store = self.codec_store = store_from_url(None)
        self._candle_header = struct.pack(">bI", 0, store.schema_id("Candle"))
        self._batch_header = struct.pack(">bI", 0, store.schema_id("CandleBatch"))
        self._names: dict[str, bytes] = {}

    def _body(self, c: Candle) -> bytes:
        name = self._names.get(c.symbol)
        if name is None:
            raw = c.symbol.encode()
            name = self._names[c.symbol] = _zigzag(len(raw)) + raw + _zigzag(len(c.timeframe)) + c.timeframe.encode()
        return name + _zigzag(c.open_time) + _FIVE_DOUBLES.pack(c.open, c.high, c.low, c.close, c.volume) + _NO_OPTIONALS

    def candle(self, c: Candle) -> bytes:
        return self._candle_header + self._body(c)

    def batch(self, candles: list[Candle]) -> bytes:
        return self._batch_header + _zigzag(len(candles)) + b"".join(self._body(c) for c in candles) + b"\x00"

    def verify(self, sample: list[Candle]) -> None:
        """Raise if any byte differs from the product's codec (run once before benchmarking)."""
        for c in sample:
            if self.candle(c) != self.codec.encode("Candle", c.to_record()):
                raise AssertionError(f"fast Candle encoding differs from MultiCodec for {c}")
        if self.batch(sample) != self.codec.encode("CandleBatch", {"candles": [c.to_record() for c in sample]}):
            raise AssertionError("fast CandleBatch encoding differs from MultiCodec")
