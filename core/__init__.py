"""The bottom layer: what every other package builds on, importing nothing of Candleflow's own.

- :mod:`core.errors`: the exception classes and the policy each carries; :mod:`core.retry` (Retryable:
  back off) and :mod:`core.best_effort` (optional dependencies: a timeout and a cool-down).
- :mod:`core.candle`: the Candle and every rule a valid one meets; :mod:`core.candle_messages` (Candle and
  CandleBatch messages) and :mod:`core.candle_files` (CSV, Parquet) read into it.  :mod:`core.series_keys`: series keys.
- :mod:`core.signals`: signal decisions, confidence and the deterministic prediction and signal ids.
- :mod:`core.settings`: the worker's settings, with their sections (:mod:`core.settings_sections`: storage,
  retrain), read by the one environment parser (:mod:`core.env_parser`).  :mod:`core.topics`: every
  topic, declared once.  :mod:`core.timestamps`: ISO-8601 and epoch ms.  :mod:`core.latency`: latency windows.
  :mod:`core.lazy_exports`.
"""

from core.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "Candle": "core.candle", "candle_from_record": "core.candle", "valid_symbol": "core.candle",
    "CandleflowError": "core.errors", "InvalidInput": "core.errors", "DecodeError": "core.errors",
    "OutOfOrder": "core.errors", "Retryable": "core.errors", "ConfigError": "core.errors",
    "Settings": "core.settings", "Secret": "core.settings", "series_key": "core.series_keys",
    "decide": "core.signals", "confidence_of": "core.signals", "prediction_id": "core.signals", "signal_id": "core.signals",
    "LatencyWindow": "core.latency", "OUTPUT_TOPICS": "core.topics", "read_candle_file": "core.candle_files",
    "decode_candle_message": "core.candle_messages", "parse_time": "core.timestamps", "format_time": "core.timestamps",
}, globals())
