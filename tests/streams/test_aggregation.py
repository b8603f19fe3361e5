from collections import defaultdict
from pathlib import Path

import pytest

from streams.aggregation import CandleAggregator
from core.candle import Candle, timeframe_ms
from core.candle_files import read_candle_file
from core.errors import InvalidInput, OutOfOrder

ONE_MINUTE = Path(__file__).resolve().parents[1] / "data" / "XRP-ETH_1m.csv.gz"


def oracle(minutes: list[Candle], timeframe: str) -> list[Candle]:
    """Group whole windows the obvious way; the last window counts only if its last minute is present."""
    size = timeframe_ms(timeframe)
    groups: dict[int, list[Candle]] = defaultdict(list)
    for m in minutes:
        groups[m.open_time - m.open_time % size].append(m)
    out = []
    for start in sorted(groups):
        g = groups[start]
        out.append(Candle(g[0].symbol, timeframe, start, g[0].open, max(c.high for c in g), min(c.low for c in g),
                          g[-1].close, sum(c.volume for c in g)))
    if minutes and minutes[-1].open_time + 60_000 != out[-1].open_time + size:
        out.pop()  # still open
    return out


@pytest.mark.parametrize("timeframe", ["5m", "15m", "1h"])
def test_real_minutes_aggregate_like_the_oracle(timeframe):
    minutes = read_candle_file(ONE_MINUTE).candles
    agg = CandleAggregator(timeframe)
    streamed = [c for m in minutes for c in agg.add(m)]
    expected = oracle(minutes, timeframe)
    assert len(streamed) == len(expected) > 10
    for got, want in zip(streamed, expected):
        assert (got.open_time, got.open, got.high, got.low, got.close) == (want.open_time, want.open, want.high, want.low, want.close)
        assert got.volume == pytest.approx(want.volume, rel=1e-12)


def test_state_round_trip_mid_window_continues_identically():
    minutes = read_candle_file(ONE_MINUTE).candles[:500]
    whole = CandleAggregator("15m")
    expected = [c for m in minutes for c in whole.add(m)]
    first = CandleAggregator("15m")
    got = [c for m in minutes[:233] for c in first.add(m)]
    resumed = CandleAggregator.from_bytes(first.to_bytes())
    got += [c for m in minutes[233:] for c in resumed.add(m)]
    assert got == expected


def test_optional_totals_only_when_every_minute_has_them():
    agg = CandleAggregator("5m")
    mins = [Candle("A", "1m", 60_000 * i, 1.0, 1.0, 1.0, 1.0, 1.0, trades=2, quote_volume=None if i == 3 else 1.0) for i in range(5)]
    closed = [c for m in mins for c in agg.add(m)][0]
    assert closed.trades == 10 and closed.quote_volume is None


def test_out_of_order_and_wrong_input_are_refused():
    agg = CandleAggregator("5m")
    agg.add(Candle("A", "1m", 120_000, 1.0, 1.0, 1.0, 1.0, 1.0))
    with pytest.raises(OutOfOrder):
        agg.add(Candle("A", "1m", 60_000, 1.0, 1.0, 1.0, 1.0, 1.0))
    with pytest.raises(InvalidInput):
        agg.add(Candle("A", "5m", 300_000, 1.0, 1.0, 1.0, 1.0, 1.0))
    with pytest.raises(InvalidInput):
        CandleAggregator("1m")
