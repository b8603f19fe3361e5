"""The Avro wire contract (the ``.avsc`` files here) and the codec that reads and writes it.

Messages use the Confluent wire format (magic byte 0, 4-byte big-endian schema id, Avro body).
Ids come from a :class:`LocalSchemaStore` by default (derived from the schemas, no server) or from
a Schema Registry (:class:`RegistrySchemaStore`) when a URL is configured.

>>> store = store_from_url(None)
>>> codec = AvroCodec("Signal", store)
>>> record = {"id": "s1", "prediction_id": "p1", "symbol": "BTCUSDT", "timeframe": "1m",
...           "open_time": 1700000000000, "direction": "UP", "confidence": 0.4,
...           "entry_price": 37000.5, "horizon": 5, "model_version": "lgbm-1"}
>>> decoded = codec.decode(codec.encode(record))      # optional fields left out come back as null
>>> decoded == {**record, **{k: None for k in decoded if k not in record}}, decoded["candle_produced_at"]
(True, None)
"""

from schemas.codec import AvroCodec, MultiCodec
from schemas.faust_codecs import register_faust_codecs
from schemas.loader import BATCHES, SCHEMA_NAMES, load_schema, unbatch
from schemas.registry import RegistrySchemaStore
from schemas.store import LocalSchemaStore, SchemaStore, schema_store, store_from_url

__all__ = [
    "BATCHES",
    "SCHEMA_NAMES",
    "AvroCodec",
    "LocalSchemaStore",
    "MultiCodec",
    "RegistrySchemaStore",
    "SchemaStore",
    "load_schema",
    "register_faust_codecs",
    "schema_store",
    "store_from_url",
    "unbatch",
]
