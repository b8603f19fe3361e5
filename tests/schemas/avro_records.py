"""Hypothesis strategies for records of the Candleflow schemas, built from the schemas themselves.

Optional fields (those with a default) are sometimes left out, so every test that uses these
covers records with and without them.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from schemas import load_schema

_PRIMITIVES = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(),  # NaN and inf included: Avro carries them; compare with same()
    "bytes": st.binary(max_size=40),
    "string": st.text(max_size=20),
}


def _strategy(schema: Any, named: dict[str, Any]) -> st.SearchStrategy:
    if isinstance(schema, list):
        return st.one_of([_strategy(branch, named) for branch in schema])
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        return st.deferred(lambda: named[schema.rpartition(".")[2]])
    kind = schema["type"]
    if kind == "record":
        required, optional = {}, {}
        for field in schema["fields"]:
            target = optional if "default" in field else required
            target[field["name"]] = _strategy(field["type"], named)
        strategy = st.fixed_dictionaries(required, optional=optional)
    elif kind == "enum":
        strategy = st.sampled_from(schema["symbols"])
    elif kind == "array":
        return st.lists(_strategy(schema["items"], named), max_size=4)
    elif kind == "map":
        return st.dictionaries(st.text(max_size=8), _strategy(schema["values"], named), max_size=3)
    else:
        return _strategy(kind, named)
    named[schema["name"]] = strategy
    return strategy


def records(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Valid records of schema ``name``; optional fields present or absent."""
    return _strategy(load_schema(name), {})


def completed(schema: Any, value: Any) -> Any:
    """``value`` as a decoder returns it: every absent optional field filled with its default."""
    if isinstance(schema, dict) and schema.get("type") == "record":
        return {f["name"]: completed(f["type"], value[f["name"]]) if f["name"] in value else f["default"]
                for f in schema["fields"]}
    if isinstance(schema, dict) and schema.get("type") == "array":
        return [completed(schema["items"], item) for item in value]
    if isinstance(schema, list) and isinstance(value, dict):
        branch = next(b for b in schema if isinstance(b, dict) and b.get("type") == "record")
        return completed(branch, value)
    return value


def same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN and bytes-likes as bytes."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def candle(**overrides: Any) -> dict[str, Any]:
    """A plain, valid candle for example-based tests."""
    return {"symbol": "BTCUSDT", "timeframe": "1m", "open_time": 1_700_000_000_000, "open": 37000.0,
            "high": 37100.5, "low": 36950.25, "close": 37050.0, "volume": 12.5, **overrides}


EXAMPLES: dict[str, dict[str, Any]] = {
    "Candle": candle(),
    "CandleBatch": {"candles": [candle(), candle(open_time=1_700_000_060_000, trades=42, spread_bps=1.5)]},
    "Prediction": {"id": "p1", "symbol": "BTCUSDT", "timeframe": "1m", "open_time": 1_700_000_000_000,
                   "close": 37050.0, "horizon": 5, "prob_up": 0.7, "direction": "UP", "confidence": 0.4,
                   "ready": True, "model_version": "lgbm-1", "features": [0.1, -0.2, 3.0]},
    "Signal": {"id": "s1", "prediction_id": "p1", "symbol": "BTCUSDT", "timeframe": "1m",
               "open_time": 1_700_000_000_000, "direction": "DOWN", "confidence": 0.4, "entry_price": 37050.0,
               "horizon": 5, "model_version": "lgbm-1"},
    "Outcome": {"id": "o1", "source": "LABEL", "symbol": "BTCUSDT", "timeframe": "1m",
                "open_time": 1_700_000_000_000, "horizon": 5},
    "PredictionBatch": {"predictions": [{"id": "p1", "symbol": "BTCUSDT", "timeframe": "1m", "open_time": 1_700_000_000_000,
                                         "close": 37050.0, "horizon": 1, "prob_up": 0.7, "direction": "UP",
                                         "confidence": 0.4, "ready": True, "model_version": "lgbm-1",
                                         "features": [0.1, -2.5]}]},
    "OutcomeBatch": {"outcomes": [{"id": "o1", "source": "LABEL", "symbol": "BTCUSDT", "timeframe": "1m",
                                   "open_time": 1_700_000_000_000, "horizon": 1},
                                  {"id": "o2", "source": "LABEL", "symbol": "ETHUSDT", "timeframe": "1m",
                                   "open_time": 1_700_000_000_000, "horizon": 2}]},
    "DeadLetter": {"reason": "high < low", "error_type": "validation", "source_topic": "candles.1m",
                   "partition": 0, "offset": 17, "payload": b"\x00\x01", "failed_at": 1_700_000_000_500},
}
