"""Reading candle files: the real bundled files, every supported format, and every refused row reported."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.candle_files import parse_candle_filename, read_candle_file
from core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
ETH = REPO / "data" / "candles" / "ETH-BTC_5m.csv.gz"
HEADER = "ts,open,high,low,close,volume"
GOOD = ["1515560100000,0.0984,0.0994766,0.09828605,0.0994766,1820.544474",
        "1515560400000,0.09946999,0.0997238,0.099,0.09969,2527.921003"]


def write(path: Path, lines: list[str], header: str = HEADER) -> Path:
    text = "\n".join([header, *lines]) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_bundled_real_file():
    cf = read_candle_file(ETH)
    assert (cf.symbol, cf.timeframe) == ("ETH-BTC", "5m")
    assert len(cf.candles) == 5760 and cf.rejected == []
    first = cf.candles[0]
    assert (first.open_time, first.open, first.close, first.volume) == (1515560100000, 0.0984, 0.0994766, 1820.544474)
    assert first.quote_volume is None and first.trades is None  # OHLCV only, as many real feeds
    times = [c.open_time for c in cf.candles]
    assert times == sorted(set(times))


@pytest.mark.parametrize("name", ["ETH-BTC_5m.csv", "ETH-BTC_5m.csv.gz", "ETH-BTC_5m.parquet"])
def test_formats_give_the_same_candles(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".parquet"):
        pq.write_table(pa.table({"ts": [1515560100000, 1515560400000], "open": [0.0984, 0.09946999],
                                 "high": [0.0994766, 0.0997238], "low": [0.09828605, 0.099],
                                 "close": [0.0994766, 0.09969], "volume": [1820.544474, 2527.921003]}), path)
    else:
        write(path, GOOD)
    cf = read_candle_file(path)
    assert cf.rejected == []
    assert [(c.open_time, c.close) for c in cf.candles] == [(1515560100000, 0.0994766), (1515560400000, 0.09969)]


def test_parquet_timestamp_column_and_optional_fields(tmp_path):
    path = tmp_path / "LTC-BTC_1m.parquet"
    pq.write_table(pa.table({
        "ts": pa.array([1515560100000, 1515560160000], pa.timestamp("ms", tz="UTC")),
        "open": [1.0, 1.0], "high": [2.0, 2.0], "low": [0.5, 0.5], "close": [1.5, 1.5], "volume": [3.0, 0.0],
        "trades": [7, 0], "quote_volume": [4.5, None], "spread_bps": [1.2, 1.3],
    }), path)
    cf = read_candle_file(path)
    assert cf.rejected == []
    a, b = cf.candles
    assert (a.open_time, a.trades, a.quote_volume, a.spread_bps) == (1515560100000, 7, 4.5, 1.2)
    assert isinstance(a.trades, int) and b.quote_volume is None


def test_invalid_rows_are_reported_with_row_and_reason(tmp_path):
    lines = [
        GOOD[0],
        "1515560400000,0.0995,0.0990,0.0990,0.0997,1.0",  # 2: high below open
        "1515560400000,nan,0.1,0.09,0.095,1.0",           # 3: NaN price
        "1515560400000,0.0995,0.1,0.09,0.095,-1",         # 4: negative volume
        "1515560400001,0.0995,0.1,0.09,0.095,1",          # 5: not aligned to 5m
        "1515560400000,abc,0.1,0.09,0.095,1",             # 6: not a number
        GOOD[1],                                          # 7: fine
        GOOD[1],                                          # 8: duplicate
        GOOD[0],                                          # 9: goes back in time
    ]
    cf = read_candle_file(write(tmp_path / "ETH-BTC_5m.csv", lines))
    assert [c.open_time for c in cf.candles] == [1515560100000, 1515560400000]
    reasons = dict(cf.rejected)
    assert sorted(reasons) == [2, 3, 4, 5, 6, 8, 9]
    assert "high" in reasons[2] and "finite" in reasons[3] and "volume" in reasons[4]
    assert "aligned" in reasons[5] and "not a number" in reasons[6]
    assert "duplicate or out of order" in reasons[8] and "duplicate or out of order" in reasons[9]


def test_explicit_symbol_and_timeframe_win(tmp_path):
    cf = read_candle_file(write(tmp_path / "whatever.csv", GOOD), symbol="XRP-ETH", timeframe="5m")
    assert {(c.symbol, c.timeframe) for c in cf.candles} == {("XRP-ETH", "5m")}


@pytest.mark.parametrize("name, expected", [
    ("ETH-BTC_5m.csv.gz", ("ETH-BTC", "5m")),
    ("/x/y/UNITTEST-BTC_1m.csv", ("UNITTEST-BTC", "1m")),
    ("BTC-USDT_1h.PARQUET", ("BTC-USDT", "1h")),
])
def test_parse_candle_filename(name, expected):
    assert parse_candle_filename(name) == expected


@pytest.mark.parametrize("name", ["ETHBTC_5m.csv", "ETH-BTC_7m.csv", "ETH-BTC.csv", "-BTC_5m.csv", "ETH-BTC_5m.txt"])
def test_unparseable_filename_is_a_config_error(name):
    with pytest.raises(ConfigError):
        parse_candle_filename(name)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_candle_file(tmp_path / "ETH-BTC_5m.csv.gz")


def test_unknown_format(tmp_path):
    (tmp_path / "ETH-BTC_5m.json").write_text("{}")
    with pytest.raises(ConfigError, match="unknown candle file format"):
        read_candle_file(tmp_path / "ETH-BTC_5m.json")


def test_missing_columns(tmp_path):
    path = write(tmp_path / "ETH-BTC_5m.csv", ["1515560100000,0.1,0.1,0.1,0.1"], header="ts,open,high,low,close")
    with pytest.raises(ConfigError, match="missing column.*volume"):
        read_candle_file(path)


def test_unreadable_content(tmp_path):
    (tmp_path / "ETH-BTC_5m.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ConfigError, match="cannot read"):
        read_candle_file(tmp_path / "ETH-BTC_5m.parquet")


def test_a_compressed_bomb_is_refused_before_it_is_parsed(tmp_path):
    """A few kilobytes of gzip that expand past the limit: refused as the bytes come, never held whole."""
    bomb = tmp_path / "ETH-BTC_5m.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        f.write(b"ts,open,high,low,close,volume\n")
        for _ in range(8):
            f.write(b"0" * (1 << 20))
    assert bomb.stat().st_size < 64 * 1024
    with pytest.raises(ConfigError, match="decompresses to more than 4,194,304 bytes"):
        read_candle_file(bomb, max_bytes=4 << 20)
    assert len(read_candle_file(write(tmp_path / "LTC-BTC_5m.csv", GOOD), max_bytes=4 << 20).candles) == len(GOOD)


def test_a_cut_gzip_file_and_an_oversized_parquet_are_refused_in_one_line(tmp_path):
    whole = gzip.compress(("ts,open,high,low,close,volume\n" + "\n".join(GOOD) + "\n").encode())
    (tmp_path / "ETH-BTC_5m.csv.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ConfigError, match="cannot read"):
        read_candle_file(tmp_path / "ETH-BTC_5m.csv.gz")
    table = pa.table({"ts": [1515560100000 + 300_000 * i for i in range(10_000)], **{
        name: [0.1] * 10_000 for name in ("open", "high", "low", "close", "volume")}})
    pq.write_table(table, tmp_path / "ETH-BTC_5m.parquet")
    with pytest.raises(ConfigError, match="holds more than 1,000 bytes"):
        read_candle_file(tmp_path / "ETH-BTC_5m.parquet", max_bytes=1000)


def test_unknown_explicit_timeframe(tmp_path):
    with pytest.raises(ConfigError, match="unknown timeframe"):
        read_candle_file(write(tmp_path / "x.csv", GOOD), symbol="ETH-BTC", timeframe="7m")


_cell = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-5, 5),
                  st.sampled_from(["", "x", "1e400"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.integers(0, 5), _cell, _cell, _cell, _cell, _cell), min_size=1, max_size=12))
def test_every_row_is_either_a_candle_or_rejected(tmp_path, rows):
    """Whatever a file holds, no row disappears: accepted + rejected == rows, and rows are numbered 1..n."""
    lines = [",".join([str(1515560100000 + 300_000 * t), *map(str, cells)]) for t, *cells in rows]
    cf = read_candle_file(write(tmp_path / "ETH-BTC_5m.csv", lines))
    assert len(cf.candles) + len(cf.rejected) == len(rows)
    assert all(1 <= r <= len(rows) for r, _ in cf.rejected)
    assert all(reason for _, reason in cf.rejected)
