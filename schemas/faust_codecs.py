"""The codecs registered with Faust, so a topic can say ``value_serializer="avro-prediction"``."""

from __future__ import annotations

import re
from typing import Any

from faust.serializers import codecs

from schemas.codec import AvroCodec
from schemas.loader import SCHEMA_NAMES
from schemas.store import SchemaStore

__all__ = ["FaustAvroCodec", "codec_name", "register_faust_codecs"]


def codec_name(name: str) -> str:
    """The Faust codec name of record ``name``.

    >>> codec_name("CandleBatch")
    'avro-candle-batch'
    """
    return "avro-" + re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


class FaustAvroCodec(codecs.Codec):
    """A Faust codec around one :class:`AvroCodec`.

    The codec travels in ``kwargs`` because Faust rebuilds codecs from their kwargs when they are
    chained (``clone``).

    >>> from schemas.store import LocalSchemaStore
    >>> codec = FaustAvroCodec(codec=AvroCodec("CandleBatch", LocalSchemaStore()))
    >>> codec.loads(codec.dumps({"candles": []}))
    {'candles': []}
    """

    def __init__(self, children: Any = None, *, codec: AvroCodec, **kwargs: Any) -> None:
        super().__init__(children, codec=codec, **kwargs)
        self._codec = codec

    def _dumps(self, obj: Any) -> bytes:
        return self._codec.encode(obj)

    def _loads(self, s: bytes) -> Any:
        return self._codec.decode(s)


def register_faust_codecs(store: SchemaStore) -> dict[str, AvroCodec]:
    """Register ``avro-candle`` ... ``avro-dead-letter`` with Faust, all reading ids from ``store``.

    Calling it again replaces the codecs (e.g. with another store), so it is safe at every start-up.
    Returns the codecs by Faust name.

    >>> from schemas.store import LocalSchemaStore
    >>> sorted(register_faust_codecs(LocalSchemaStore()))[:2]
    ['avro-candle', 'avro-candle-batch']
    """
    registered = {}
    for name in SCHEMA_NAMES:
        codec = AvroCodec(name, store)
        codecs.register(codec_name(name), FaustAvroCodec(codec=codec))
        registered[codec_name(name)] = codec
    return registered
