"""Done-when of issue 6: on the real candles, an induced regime change raises a retrain request within a
bounded number of outcomes, and the unchanged run raises none. Both counts are printed (run with -s)."""

from __future__ import annotations

import math

from learning.labelling import Labelled
from learning.retrain import RetrainTrigger

CHANGE_AT = 2000      # outcomes into the replay when the relation between features and outcomes reverses
MAX_DELAY = 1500      # the bound asserted on the detection delay, in outcomes


def _reversed(item: Labelled) -> tuple[dict, tuple]:
    """The same outcome in a world where the features now mean the opposite: the realised move flips."""
    o = dict(item.outcome)
    o["realized_log_return"] = -o["realized_log_return"]
    if o["direction_correct"] is not None:
        o["direction_correct"] = not o["direction_correct"]
    return o, item.features


def _run(replay, change_at: int | None) -> list[tuple[int, dict]]:
    trigger = RetrainTrigger(replay.model.version, replay.training_accuracy, replay.return_std, replay.reference)
    requests = []
    for i, item in enumerate(replay.labelled):
        outcome, features = _reversed(item) if change_at is not None and i >= change_at else item[:2]
        request = trigger.update(outcome, features)
        if request:
            requests.append((i, request))
    return requests


def test_unchanged_real_data_raises_no_retrain_request(replays):
    total = 0
    for replay in replays:
        requests = _run(replay, change_at=None)
        print(f"\n[unchanged] {replay.symbol}: {len(requests)} retrain requests over {len(replay.labelled)} "
              f"outcomes (training accuracy {replay.training_accuracy:.3f})")
        total += len(requests)
        assert requests == [], [r["reasons"] for _, r in requests]
    print(f"[unchanged] total retrain requests: {total}")


def test_induced_regime_change_raises_a_retrain_request_within_bound(replays):
    for replay in replays:
        requests = _run(replay, change_at=CHANGE_AT)
        assert requests, f"{replay.symbol}: no retrain request after the change"
        first_at, first = requests[0]
        delay = first_at - CHANGE_AT
        print(f"\n[induced] {replay.symbol}: {len(requests)} retrain requests; first {delay} outcomes after the "
              f"change, reasons {first['reasons']}, evidence {_short(first['evidence'])}")
        assert 0 <= delay <= MAX_DELAY
        assert first["model_version"] == replay.model.version and first["outcomes_since_last"] >= 500


def _short(evidence: dict) -> dict:
    return {k: {n: round(v, 4) if isinstance(v, float) and math.isfinite(v) else v
                for n, v in e.items() if not isinstance(v, dict)} for k, e in evidence.items()}
