"""Record factories shaped like the Avro records (schemas/*.avsc), with the pipeline's deterministic ids."""

from __future__ import annotations

import math

from core.signals import prediction_id, signal_id

T0 = 1_515_560_100_000  # 2018-01-10 04:55 UTC, the first bundled candle
STEP = 300_000  # 5m


def prediction(i: int, symbol: str = "ETH-BTC", version: str = "v1") -> dict:
    t = T0 + i * STEP
    p = 0.5 + 0.4 * math.sin(i)
    return {"id": prediction_id(symbol, "5m", t, version), "symbol": symbol, "timeframe": "5m", "open_time": t,
            "close": 0.09 + i * 1e-6, "horizon": 1, "prob_up": p, "direction": "UP" if p >= 0.5 else "DOWN",
            "confidence": abs(2 * p - 1), "ready": i > 40, "model_version": version,
            "features": [math.nan if (i < 40 and k % 7 == 0) else i * 0.01 + k for k in range(41)],
            "candle_produced_at": t + STEP + 5}


def signal(i: int, symbol: str = "ETH-BTC", version: str = "v1") -> dict:
    p = prediction(i, symbol, version)
    return {"id": signal_id(symbol, "5m", p["open_time"], version), "prediction_id": p["id"], "symbol": symbol,
            "timeframe": "5m", "open_time": p["open_time"], "direction": p["direction"], "confidence": p["confidence"],
            "entry_price": p["close"], "horizon": 1, "model_version": version, "candle_produced_at": None}


def outcome(i: int, version: str = "v1", correct: bool = True, symbol: str = "ETH-BTC") -> dict:
    p = prediction(i, symbol, version)
    return {"id": "o-" + p["id"], "source": "LABEL", "prediction_id": p["id"], "signal_id": None, "symbol": symbol,
            "timeframe": "5m", "open_time": p["open_time"], "horizon": 1, "model_version": version,
            "realized_log_return": 0.001 if correct else -0.001, "direction_correct": correct}
