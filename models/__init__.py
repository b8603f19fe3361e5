"""Inference: the model contract the step scores with, and signal decisions.

- :mod:`models.base`: :class:`ServableModel`, the one contract every served model implements
  (``version``, ``horizon(s)``, ``reads_windows``, ``profile``, ``members``, ``score``), and
  :class:`SingleHorizonModel`, a one-horizon ``predict_proba`` model served as a one-member ensemble.
- :mod:`models.bundle`: :class:`ModelBundle`, a trained bundle (LightGBM per horizon, optionally Mamba),
  loaded and scored as one ensemble.
- :mod:`models.ensemble`: :class:`Ensemble` of members combined per horizon.
- :mod:`models.direction`: LightGBM direction models through ONNX Runtime.
- :mod:`models.mamba`: the sequence model (PyTorch, or mamba-ssm on CUDA).
- :mod:`models.deployment`: which version serves (active, candidate, A/B share) from model events.
- :mod:`models.loading`: ``load_model``, whatever a model directory holds.

Names are imported on first use (``models.bundle`` loads ONNX Runtime).
"""

from core.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "ServableModel": "models.base", "SingleHorizonModel": "models.base", "ScoreOutput": "models.base",
    "ModelBundle": "models.bundle", "Ensemble": "models.ensemble", "Member": "models.ensemble",
    "DirectionModel": "models.direction", "DirectionHorizons": "models.direction", "load_model": "models.loading",
    "Deployment": "models.deployment",
}, globals())
