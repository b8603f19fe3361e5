"""Kafka client helpers that streams/ and training/ both use, a layer below both so neither imports the other.

- :mod:`kafka_io.security`: SASL/TLS from the settings, in the form each client (aiokafka, confluent-kafka,
  Faust) takes.  :mod:`kafka_io.client_internals`: the private parts of aiokafka the code relies on.
- :mod:`kafka_io.consumer`: reading topics without a consumer group (``candleflow tail``, the demo, the
  promotion worker's rewind), and records as JSON can carry them.

Imports only ``core`` and ``schemas`` of ours (``tests/test_layers.py``).
"""

from core.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "aiokafka_security": "kafka_io.security", "confluent_security": "kafka_io.security",
    "faust_credentials": "kafka_io.security", "refresh_metadata": "kafka_io.client_internals",
    "read_topic": "kafka_io.consumer", "first_record": "kafka_io.consumer", "offsets_at_time": "kafka_io.consumer",
    "json_safe": "kafka_io.consumer",
}, globals())
