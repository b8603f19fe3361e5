"""batch_features: a DataFrame in, the streaming engine's features out, row for row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.candle import Candle
from core.errors import InvalidInput, OutOfOrder
from features import FEATURE_NAMES, FeatureState, batch_features
from features.frame import infer_timeframe

COLUMNS = ["ts", "open", "high", "low", "close", "volume"]


def test_real_files_equal_the_streamed_features(series):
    df = pd.DataFrame(series.rows, columns=COLUMNS).astype({"ts": np.int64})
    df.index = df.index * 10 + 3  # any index is kept as is
    out = batch_features(df, symbol=series.name.split("_")[0])
    assert list(out.columns) == list(FEATURE_NAMES) and out.index.equals(df.index)
    np.testing.assert_array_equal(out.to_numpy(), series.streamed)  # the same engine: bit-identical


def test_timeframe_inferred_or_given():
    assert infer_timeframe(np.array([0, 300_000, 1_200_000])) == "5m"  # a gap does not fool it
    assert infer_timeframe(np.array([5])) == "1m"
    with pytest.raises(InvalidInput, match="pass timeframe"):
        infer_timeframe(np.array([0, 7_000]))
    df = pd.DataFrame({"ts": [0, 900_000], "open": 1.0, "high": 1.0, "low": 1.0, "close": [1.0, 2.0], "volume": 1.0})
    # inferred as 15m the two rows are consecutive; given as 5m, two filled candles sit between them
    assert batch_features(df)["log_return_1"].iloc[1] == np.log(2.0)
    assert batch_features(df, timeframe="5m")["log_return_1"].iloc[1] == np.log(2.0)
    assert batch_features(df)["obv"].iloc[1] == 2.0 and batch_features(df, timeframe="5m")["obv"].iloc[1] == 2.0


def test_optional_columns_and_nan_mean_missing():
    rows = []
    for i in range(50):
        c = 1.0 + 0.01 * (i % 9)
        rows.append({"ts": 60_000 * i, "open": c, "high": c * 1.01, "low": c * 0.99, "close": c,
                     "volume": 2.0 + i % 3, "quote_volume": 3.0, "trades": float(i % 4) if i % 10 else np.nan,
                     "taker_buy_base_volume": 1.0, "taker_buy_quote_volume": 1.5, "spread_bps": 0.7})
    df = pd.DataFrame(rows)
    state = FeatureState()
    want = [state.update(Candle("?", "1m", r["ts"], r["open"], r["high"], r["low"], r["close"], r["volume"],
                                3.0, None if np.isnan(r["trades"]) else int(r["trades"]), 1.0, 1.5, 0.7))
            for r in rows]
    np.testing.assert_array_equal(batch_features(df).to_numpy(), np.array(want))
    bare = batch_features(df[COLUMNS])
    assert bare["quote_asset_volume"].isna().all() and bare["taker_buy_ratio"].isna().all()


def test_bad_rows_are_named_not_skipped():
    df = pd.DataFrame({"ts": [0, 60_000, 60_000, 120_000], "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0,
                       "volume": 1.0}, index=["a", "b", "c", "d"])
    with pytest.raises(OutOfOrder, match=r"row 'c' \(position 2\)"):
        batch_features(df)
    df.loc["b", "close"] = np.nan
    with pytest.raises(InvalidInput, match="row 'b'"):
        batch_features(df)
    with pytest.raises(InvalidInput, match="volume"):
        batch_features(df.drop(columns="volume"))
    with pytest.raises(InvalidInput, match="timeframe"):
        batch_features(df.drop(index="b"), timeframe="7m")


def test_empty_frame():
    out = batch_features(pd.DataFrame(columns=COLUMNS))
    assert out.shape == (0, len(FEATURE_NAMES))
