"""1m candles in; the aggregation agent publishes closed 5m candles, which the candle agent scores."""

from __future__ import annotations

import asyncio

import pytest

from streams.aggregation import CandleAggregator
from core.candle_files import read_candle_file
from tests.integration.test_candle_pipeline import collect, publish
from tests.streams.test_aggregation import ONE_MINUTE

pytestmark = pytest.mark.integration


def test_closed_5m_candles_are_built_from_1m_and_predicted(app_settings, worker_factory):
    settings = app_settings(timeframes=("1m", "5m"), aggregate_to=("5m",))
    worker_factory(settings)
    minutes = read_candle_file(ONE_MINUTE).candles[:400]
    aggregator = CandleAggregator("5m")
    expected_5m = [c for m in minutes for c in aggregator.add(m)]

    asyncio.run(publish(settings, minutes))

    def done(r) -> bool:
        return sum(p["timeframe"] == "5m" for p in r["predictions"]) >= len(expected_5m) and \
            sum(p["timeframe"] == "1m" for p in r["predictions"]) >= len(minutes)

    got = asyncio.run(collect(settings, done))
    five = sorted((p for p in got["predictions"] if p["timeframe"] == "5m"), key=lambda p: p["open_time"])
    assert [p["open_time"] for p in five] == [c.open_time for c in expected_5m]
    assert [p["close"] for p in five] == [c.close for c in expected_5m]
    assert sum(p["timeframe"] == "1m" for p in got["predictions"]) == len(minutes)
    assert not got["dead-letters"]
