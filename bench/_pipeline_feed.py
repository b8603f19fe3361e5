"""Feeding a row of ``bench.pipeline``: the universe's candles to its source topic, one Candle per message
or one CandleBatch per partition, the steps of every symbol counted."""

from __future__ import annotations

from bench._pipeline_config import PARTITIONS
from bench._pipeline_data import FastCandleEncoder, Universe, partition_of
from bench._pipeline_io import Feeder
from bench._pipeline_rows import Row

__all__ = ["Feed"]


class Feed:
    """Produces the universe's candles to a row's source topic, single or batched, and tracks steps."""

    def __init__(self, feeder: Feeder, row: Row, universe: Universe, encoder: FastCandleEncoder):
        self.feeder, self.row, self.universe, self.enc = feeder, row, universe, encoder
        self.step = 0
        self.sent = 0

    def encode(self, pairs: list[tuple[int, int]]) -> list[tuple[bytes, bytes, int | None]]:
        """(symbol index, step) pairs -> messages (key, value, partition or None), in order."""
        u, enc = self.universe, self.enc
        if not self.row.batch_input:
            return [(u.keys[k], enc.candle(u.candle(k, s)), None) for k, s in pairs]
        groups: dict[int, list] = {}
        for k, s in pairs:
            groups.setdefault(partition_of(u.keys[k], PARTITIONS), []).append(k_s := (k, s))
        out = []
        for partition, items in groups.items():
            out.append((u.keys[items[0][0]], enc.batch([u.candle(k, s) for k, s in items]), partition))
        return out

    def produce(self, messages: list[tuple[bytes, bytes, int | None]], n_candles: int, mark_last: bool = True) -> None:
        topic, send = self.row.source, self.feeder.send
        for i, (key, value, partition) in enumerate(messages):
            send(topic, key, value, partition, last=mark_last and i == len(messages) - 1)
        self.feeder.poll()
        self.sent += n_candles

    def steps(self, symbols: int, n_steps: int) -> list[tuple[int, int]]:
        pairs = [(k, self.step + s) for s in range(n_steps) for k in range(symbols)]
        self.step += n_steps
        return pairs
