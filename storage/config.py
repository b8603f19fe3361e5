"""Storage settings: ``settings.storage`` of :class:`core.settings.Settings` (the class lives in
:mod:`core.settings_sections`, read with the root by the one parser); re-exported here for the storage layer.

>>> from core.settings import Settings
>>> Settings.from_env({"CANDLEFLOW_SINK_BATCH_SIZE": "250"}).storage.sink_batch_size
250
"""

from __future__ import annotations

from core.settings_sections import StorageSettings, masked_url

__all__ = ["StorageSettings", "masked_url"]
