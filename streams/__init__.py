"""The runtime and the entry points below the agents: the batch step, the Faust app, the web views, replay
and the demo. The ``candleflow`` command and the worker, which attach ``agents/`` to the app, live above
both in ``candleflow/``. The foundation is ``core/``, the feature engine ``features/``;
``docs/architecture.md`` maps them file by file.

Names are imported on first use (the runtime pulls in Faust).
"""

from core.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "SeriesBook": "streams.series_book", "process_batch": "streams.step", "CandleProducer": "streams.producer",
    "read_candle_file": "core.candle_files", "faust_app": "streams.app", "replay": "streams.replay",
}, globals())
