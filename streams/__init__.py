"""Candles in, signals out: the foundation (errors, candles, settings, series), the feature engine, the
batch step, the Faust runtime and the entry points. ``docs/architecture.md`` maps them file by file.

Names are imported on first use (the runtime pulls in Faust).
"""

from streams.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "Candle": "streams.candle", "candle_from_record": "streams.candle", "Settings": "streams.settings",
    "CandleflowError": "streams.errors", "InvalidInput": "streams.errors", "DecodeError": "streams.errors",
    "OutOfOrder": "streams.errors", "Retryable": "streams.errors", "ConfigError": "streams.errors",
    "FeatureState": "streams.features", "FeatureBank": "streams.features", "SeriesBook": "streams.series_book",
    "process_batch": "streams.step", "CandleProducer": "streams.producer", "read_candle_file": "streams.candle_files",
}, globals())
