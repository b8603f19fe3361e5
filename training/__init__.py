"""Offline work: datasets, training, evaluation, the model registry and the retrain worker.

- :mod:`training.train`: LightGBM per horizon on candle files (``make demo`` trains the default bundle).
- :mod:`training.mamba`: the sequence member.  :mod:`training.evaluate` (with :mod:`training.scorer`,
  :mod:`training.holdout`, :mod:`training.horizon_report`), :mod:`training.walk_forward`,
  :mod:`training.backtest`: how good a model is, and what trading it would have done.
- :mod:`training.registry`: versions and artifacts; :mod:`training.model_events`: the events that tell the
  workers.  :mod:`training.retrain_worker`: retrain requests -> a validated, registered candidate
  (:mod:`training.retrain_window`: the candles; :mod:`training.retrain_trial`: train and compare).

Names are imported on first use (training pulls in LightGBM and PyTorch).
"""

from core.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "train_horizons": "training.train", "train_on_series": "training.train", "walk_forward": "training.walk_forward",
    "ModelRegistry": "training.registry", "RetrainConfig": "training.retrain_worker", "RetrainWorker": "training.retrain_worker",
}, globals())
