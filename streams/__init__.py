"""The runtime below the agents: the batch step and the Faust app. The entry points (the ``candleflow``
command, the worker, which attaches ``agents/`` to the app, its web views, replay and the demo) live above
both in ``candleflow/``. The foundation is ``core/``, the feature engine ``features/``;
``docs/architecture.md`` maps them file by file.

Names are imported on first use (the runtime pulls in Faust).
"""

from core.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "SeriesBook": "streams.series_book", "process_batch": "streams.step", "CandleProducer": "streams.producer",
    "read_candle_file": "core.candle_files", "faust_app": "streams.app",
}, globals())
