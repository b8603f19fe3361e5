import socket

import pytest

from streams.broker import EmbeddedBroker, wait_for_broker
from core.errors import ConfigError


def test_broker_starts_answers_and_stops():
    broker = EmbeddedBroker().start()
    try:
        assert broker.running
        wait_for_broker(broker.bootstrap, timeout_s=5)
    finally:
        broker.stop()
    assert not broker.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", broker.port), timeout=1).close()


def test_taken_port_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises((ConfigError, TimeoutError)):
            EmbeddedBroker(port=port).start(timeout_s=5)
