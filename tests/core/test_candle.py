import math

import pytest

from core.candle import Candle, candle_from_record
from core.errors import InvalidInput

GOOD = {"symbol": "ETH-BTC", "timeframe": "5m", "open_time": 1515560100000, "open": 0.0984,
        "high": 0.0995, "low": 0.0982, "close": 0.0994, "volume": 1820.5}


def test_valid_record_round_trips():
    candle = candle_from_record(GOOD)
    assert candle == Candle(**{**GOOD})
    assert candle_from_record(candle.to_record()) == candle


@pytest.mark.parametrize("change, reason", [
    ({"open": math.nan}, "not finite"),
    ({"close": math.inf}, "not finite"),
    ({"low": -1.0, "open": -0.5}, "positive"),
    ({"high": 0.09}, "high"),
    ({"low": 0.0999}, "low"),
    ({"volume": -1.0}, "volume"),
    ({"symbol": ""}, "symbol"),
    ({"symbol": "X" * 65}, "symbol"),
    ({"symbol": "ETH BTC"}, "symbol must be 1 to 64 of letters"),
    ({"symbol": "ETH\x00BTC"}, "symbol"),
    ({"symbol": "ETH|5m"}, "symbol"),
    ({"symbol": "ÉTH-BTC"}, "symbol"),
    ({"timeframe": "7m"}, "timeframe"),
    ({"open_time": 1515560100001}, "aligned"),
    ({"open_time": -300000}, "non-negative"),
    ({"open": "0.1"}, "number"),
    ({"trades": -3}, "trades"),
    ({"spread_bps": math.nan}, "not finite"),
])
def test_invalid_records_are_refused_with_a_reason(change, reason):
    with pytest.raises(InvalidInput, match=reason):
        candle_from_record({**GOOD, **change})


def test_optional_fields_are_kept_when_present():
    candle = candle_from_record({**GOOD, "trades": 12, "quote_volume": 5.0, "spread_bps": 1.5})
    assert (candle.trades, candle.quote_volume, candle.spread_bps, candle.taker_buy_base_volume) == (12, 5.0, 1.5, None)
