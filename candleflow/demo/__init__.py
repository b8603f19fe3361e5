"""``candleflow demo``: one command that starts an embedded broker, trains the default model if there is none,
runs a worker and feeds it real candles (:mod:`candleflow.demo.run`), with its parts beside it: the feed
(:mod:`~candleflow.demo.feed`), what it collects from the output topics (:mod:`~candleflow.demo.collect`), the
regime-change loop of ``--regime-change`` (:mod:`~candleflow.demo.loop`) and the summary it prints
(:mod:`~candleflow.demo.summary`).

Names are imported on first use (the demo pulls in the broker and the worker's client).
"""

from core.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "run_demo": "candleflow.demo.run", "BUNDLED_CANDLES": "candleflow.demo.run", "ensure_model": "candleflow.demo.run",
    "LIVE_RATE": "candleflow.demo.run",
}, globals())
