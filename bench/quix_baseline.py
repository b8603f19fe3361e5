"""The peer baseline of ``bench.pipeline``: Quix Streams doing Candleflow's per-candle work.

Run in a child process: ``python -m bench.quix_baseline '<json config>'``. Kept in the bench code,
not in the product. Per input message (one Avro Candle, keyed by symbol):

1. decode and validate it exactly as Candleflow does (``streams.ingest.decode_candle_message``);
2. update the symbol's ``FeatureState`` and score the row with the same ONNX ``DirectionModel``
   and the same record building (``streams.scoring.score_candles`` with one candle);
3. persist the state in Quix's per-key RocksDB state (with its changelog topic), as bytes
   (``FeatureState.to_bytes``) after every candle; live states are also kept in a dict, so a state
   is decoded from the store only on its first use in this process (a Quix user who cares about
   speed would do the same; the bytes written per candle are what recovery needs);
4. produce the Prediction (Avro, with ``candle_produced_at`` = the input's Kafka timestamp) to the
   predictions topic, and the Signal, when there is one, to the signals topic.

Client settings are the Candleflow rows' (``bench._pipeline_rows`` passes them): their fetch wait and producer
linger (25 ms and 50 ms by default; a 2 ms linger here, as before, buried the embedded broker under small
batches: BENCHMARKS.md, 2026-12-07 19:33), and a commit every 1 s.
Quix's stateful mode needs ``retention.ms`` in the source topic's config (docs/platform.md): the bench
creates the source topic with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["build_app", "main"]


def _store_codec():
    """State (de)serialisers that pass bytes through (Quix's default is JSON, which cannot hold bytes)."""
    from quixstreams.utils.json import dumps as json_dumps, loads as json_loads

    def dumps(value: Any) -> bytes:
        return b"\x00" + value if type(value) is bytes else b"\x01" + json_dumps(value)

    def loads(blob: bytes) -> Any:
        return blob[1:] if blob[:1] == b"\x00" else json_loads(blob[1:])

    return dumps, loads


def build_app(cfg: dict[str, Any]):
    from quixstreams import Application
    from quixstreams.state.rocksdb import RocksDBOptions

    from models.direction import DirectionModel
    from schemas import AvroCodec, MultiCodec, store_from_url
    from core.errors import DecodeError, InvalidInput
    from features import FeatureState
    from core.candle_messages import decode_candle_message
    from streams.scoring import score_candles, state_key

    store = store_from_url(None)
    candle_codec = MultiCodec(["Candle", "CandleBatch"], store)
    prediction_codec, signal_codec = AvroCodec("Prediction", store), AvroCodec("Signal", store)
    try:  # the worker's loader (a bundle or a one-horizon model), when this checkout has it
        from models.loading import load_model
    except ImportError:
        load_model = DirectionModel.load
    model = load_model(cfg["model_dir"])
    threshold = float(cfg["threshold"])
    dumps, loads = _store_codec()

    app = Application(
        broker_address=cfg["broker"], consumer_group=cfg["group"], auto_offset_reset="earliest",
        commit_interval=1.0, state_dir=str(Path(cfg["state_dir"])), loglevel="WARNING",
        consumer_extra_config={"fetch.wait.max.ms": cfg["fetch_max_wait_ms"]}, producer_extra_config={"linger.ms": cfg["linger_ms"]},
        rocksdb_options=RocksDBOptions(dumps=dumps, loads=loads),
    )
    source = app.topic(cfg["source"], key_deserializer="bytes", value_deserializer="bytes")
    predictions = app.topic(cfg["predictions"], key_serializer="bytes", value_serializer="bytes")
    signals = app.topic(cfg["signals"], key_serializer="bytes", value_serializer="bytes")
    live: dict[str, FeatureState] = {}

    def score(value: bytes, key: bytes, timestamp: int, headers: Any, state: Any):
        try:
            decoded = decode_candle_message(candle_codec, value)
        except DecodeError:
            return None
        candles = [c for c in decoded if not isinstance(c, InvalidInput)]
        if len(candles) != 1:
            return None
        candle = candles[0]
        skey = state_key(candle.symbol, candle.timeframe)
        fs = live.get(skey)
        if fs is None:
            blob = state.get("features")
            fs = live[skey] = FeatureState.from_bytes(blob) if blob else FeatureState()
        scored = score_candles([(candle, timestamp)], {skey: fs}, model, threshold)
        if not scored.predictions:
            return None
        state.set("features", fs.to_bytes())
        signal = signal_codec.encode(scored.signals[0]) if scored.signals else None
        return prediction_codec.encode(scored.predictions[0]), signal

    sdf = app.dataframe(source)
    scored = sdf.apply(score, stateful=True, metadata=True).filter(lambda v: v is not None)
    scored.apply(lambda v: v[0]).to_topic(predictions)
    scored.filter(lambda v: v[1] is not None).apply(lambda v: v[1]).to_topic(signals)
    return app


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    app = build_app(json.loads(argv[0]))
    print("READY", flush=True)
    app.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
