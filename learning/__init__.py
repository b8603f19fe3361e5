"""The outcome loop's learning logic: pure, broker-free, every piece of state serialisable to bytes.

- :mod:`learning.labelling`: predictions + later candles -> Outcome records (source LABEL).
- :mod:`learning.online`: the River online model (learn_one / predict_proba_one).
- :mod:`learning.accuracy`: rolling accuracy per (model version, horizon).
- :mod:`learning.drift`, :mod:`learning.features_drift`: ADWIN, Page-Hinkley, accuracy floor, KS drift.
- :mod:`learning.retrain`: the retrain trigger (cooldown, minimum samples).
- :mod:`learning.promotion`: A/B assignment and promotion / rollback decisions.

The Faust agents that run them live in ``agents/``; docs/learning.md has the choices and measurements.
"""

from learning.accuracy import AccuracyTracker
from learning.drift import AccuracyFloor, ErrorDrift, ReturnDrift
from learning.features_drift import DRIFT_FEATURES, FeatureDrift
from learning.labelling import Labelled, Labeller, outcome_id
from learning.online import OnlineModel
from learning.promotion import PromotionJudge, assign_version, two_proportion_z
from learning.retrain import RetrainTrigger, TriggerConfig

__all__ = [
    "DRIFT_FEATURES", "AccuracyFloor", "AccuracyTracker", "ErrorDrift", "FeatureDrift", "Labelled", "Labeller",
    "OnlineModel", "PromotionJudge", "ReturnDrift", "RetrainTrigger", "TriggerConfig", "assign_version",
    "outcome_id", "two_proportion_z",
]
