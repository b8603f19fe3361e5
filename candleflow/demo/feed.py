"""What the demo sends: the candles (the last of the bundled files, interleaved by time), a few invalid
messages, and live, the same candles again in a loop with later open times (:func:`loop_candles`)."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

from core.candle import Candle
from core.candle_files import read_candle_file
from core.settings import Settings
from streams.producer import CandleProducer, Pacer, merge_by_time

__all__ = ["demo_candles", "feed_live", "loop_candles", "publish_candles"]


def demo_candles(n: int, files: list[Path]) -> list[Candle]:
    """The last ``n`` candles across ``files`` (split evenly), interleaved by time like a live feed."""
    per_file = max(1, n // len(files))
    series = [read_candle_file(f).candles[-per_file:] for f in files]
    return list(merge_by_time(series))[:n]


async def publish_candles(settings: Settings, candles: list[Candle], bad: int, rate: float | None) -> None:
    async with CandleProducer(settings) as producer:
        pacer = Pacer(rate=rate)
        for candle in candles:
            await pacer.wait(candle)
            await producer.send(candle)
        for i in range(bad):  # what a broken producer might send: bytes that are no Avro, and an impossible candle
            if i % 2 == 0:
                await producer.send_raw(settings.candle_topic(candles[0].timeframe), b"broken", b"\x00not avro at all")
            else:
                c = candles[i % len(candles)]
                impossible = Candle(c.symbol, c.timeframe, c.open_time, c.open, c.low * 0.5, c.low, c.close, c.volume)
                await producer.send(impossible)


def loop_candles(candles: list[Candle], loop: int) -> list[Candle]:
    """``candles`` again for the ``loop``-th time (1, 2, ...), every open time moved on by the span they
    cover plus one candle, so each series continues where the last loop ended.

    >>> c = [Candle("ETH-BTC", "5m", 0, 1.0, 1.0, 1.0, 1.0, 1.0), Candle("ETH-BTC", "5m", 300_000, 1.0, 1.0, 1.0, 1.0, 1.0)]
    >>> [x.open_time for x in loop_candles(c, 2)]
    [1200000, 1500000]
    """
    step = min((b.open_time - a.open_time for a, b in zip(candles, candles[1:]) if b.open_time > a.open_time), default=0)
    span = max(c.open_time for c in candles) - min(c.open_time for c in candles) + (step or 300_000)
    return [dataclasses.replace(c, open_time=c.open_time + loop * span) for c in candles]


async def feed_live(settings: Settings, candles: list[Candle], rate: float) -> None:
    """The demo's candles in a loop at ``rate`` candles/s (later open times each loop), until cancelled."""
    async with CandleProducer(settings) as producer:
        pacer = Pacer(rate=rate)
        for loop in itertools.count(1):
            for candle in loop_candles(candles, loop):
                await pacer.wait(candle)
                await producer.send(candle)
