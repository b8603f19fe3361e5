"""Feature names, their fixed order, and how many candles each needs before it is defined.

The order is part of the contract with the model layer: a model trained on vectors in this
order reads them by position. Append new features at the end; never reorder.

>>> FEATURE_NAMES[:4], len(LAYER1_NAMES), FEATURE_NAMES.index("rsi_14")
(('open', 'high', 'low', 'close'), 27, 23)
>>> WARMUP["macd"], READY_AFTER
(34, 34)
"""

from __future__ import annotations

__all__ = ["CLASSIC_NAMES", "FEATURE_NAMES", "INDEX", "LAYER1_NAMES", "N_FEATURES", "READY_AFTER", "WARMUP"]

# The 27 features of the ML Layer 1 design (issue 3), in its order.
LAYER1_NAMES: tuple[str, ...] = (
    "open", "high", "low", "close", "volume",
    "quote_asset_volume", "taker_buy_base_asset_volume", "taker_buy_quote_asset_volume",
    "number_of_trades", "spread_bps", "taker_buy_ratio",
    "log_return_1", "log_return_5", "log_return_15",
    "volatility_5", "volatility_15", "volatility_30",
    "sma_5_norm", "sma_15_norm", "sma_30_norm",
    "ema_5_norm", "ema_15_norm", "ema_30_norm",
    "rsi_14", "volume_sma_ratio", "vwap_deviation", "price_position",
)

# Classic indicators with TA-Lib's definitions and units (e.g. stoch in 0..100).
CLASSIC_NAMES: tuple[str, ...] = (
    "macd", "macd_signal", "macd_hist",
    "bb_percent_b", "bb_width",
    "atr_14",
    "stoch_k", "stoch_d",
    "adx_14",
    "obv",
    "mfi_14",
    "cci_20",
    "willr_14",
    "roc_10",
)

FEATURE_NAMES: tuple[str, ...] = LAYER1_NAMES + CLASSIC_NAMES
N_FEATURES = len(FEATURE_NAMES)
INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}

# Candles of history a feature needs before it stops being NaN (its first value is at
# index WARMUP - 1 of a series). Classic indicators use TA-Lib's lookback + 1 exactly, so
# their NaN prefix is the same as TA-Lib's.
WARMUP: dict[str, int] = {name: 1 for name in LAYER1_NAMES[:11]}
WARMUP.update({
    "log_return_1": 2, "log_return_5": 6, "log_return_15": 16,
    # n one-candle returns need n + 1 closes
    "volatility_5": 6, "volatility_15": 16, "volatility_30": 31,
    "sma_5_norm": 5, "sma_15_norm": 15, "sma_30_norm": 30,
    "ema_5_norm": 5, "ema_15_norm": 15, "ema_30_norm": 30,
    "rsi_14": 15, "volume_sma_ratio": 20, "vwap_deviation": 20, "price_position": 1,
    # TA-Lib MACD: slow EMA lookback 25 + signal lookback 8
    "macd": 34, "macd_signal": 34, "macd_hist": 34,
    "bb_percent_b": 20, "bb_width": 20,
    "atr_14": 15,
    # TA-Lib STOCH emits %K and %D together after 13 + 2 + 2 candles of lookback
    "stoch_k": 18, "stoch_d": 18,
    "adx_14": 28,
    "obv": 1,
    "mfi_14": 15,
    "cci_20": 20,
    "willr_14": 14,
    "roc_10": 11,
})
assert tuple(WARMUP) == FEATURE_NAMES, "WARMUP must list every feature, in order"

# The state is "ready" once every feature has its full window.
READY_AFTER = max(WARMUP.values())
