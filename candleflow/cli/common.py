"""What the ``candleflow`` commands share: settings from the environment with the options given on top, and
topic names as a user types them.

>>> full_topic(Settings(), "signals"), full_topic(Settings(), "candleflow.signals")
('candleflow.signals', 'candleflow.signals')
>>> settings_from(broker={"bootstrap": "kafka:9092"}, model_dir=None).broker.bootstrap
'kafka:9092'
"""

from __future__ import annotations

from typing import Mapping

from core.settings import Settings

__all__ = ["full_topic", "settings_from"]


def settings_from(**overrides: object) -> Settings:
    """The settings of the environment (``CANDLEFLOW_*``), with every option given (not None) on top; a
    section's options as a mapping (``broker={"bootstrap": broker_}``), its None entries left out too."""
    given = {k: {n: x for n, x in v.items() if x is not None} if isinstance(v, Mapping) else v for k, v in overrides.items()}
    return Settings.from_env(**{k: v for k, v in given.items() if v is not None})


def full_topic(settings: Settings, topic: str) -> str:
    """A full topic name, or a name under the configured prefix (``signals``) made full."""
    return topic if topic.startswith(settings.topic_prefix + ".") else settings.topic(topic)
