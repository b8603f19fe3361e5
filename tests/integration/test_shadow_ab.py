"""Champion/challenger in shadow on the real broker: the candidate scores every candle beside the active
model and is never traded; each candle yields an outcome of both, and the paired judge decides on them."""

from __future__ import annotations

import asyncio

import pytest

from learning.promotion import PairedJudge
from models.loading import load_model
from tests.integration.test_candle_pipeline import collect, publish
from tests.integration.test_hot_reload import deploy_candidate, many_symbols
from tests.integration.test_outcome_loop import _read_outcomes, expected_outcomes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def challenger(tmp_path_factory):
    """A real horizon-1 model like the active one (trained on the first 2,500 candles), on all of them."""
    from tests.conftest import CANDLES
    from training.train import train_model

    out = tmp_path_factory.mktemp("challenger")
    train_model(sorted(CANDLES.glob("*.csv.gz")), out, horizon=1, progress=False)
    return out


def test_a_shadow_candidate_is_judged_on_the_same_candles(app_settings, worker_factory, challenger):
    settings = app_settings()  # ab_mode "shadow", the default
    worker = worker_factory(settings)
    active = worker.get("/models")["active"]["version"]
    candidate = load_model(challenger).version
    deploy_candidate(settings, worker, candidate, challenger, 0.1)

    candles = many_symbols(6, 50)
    asyncio.run(publish(settings, candles))
    got = asyncio.run(collect(settings, lambda r: len(r["predictions"]) >= len(candles)))
    assert {p["model_version"] for p in got["predictions"]} == {active}  # every symbol: the active model serves
    assert {s["model_version"] for s in got["signals"]} <= {active}  # the shadow is never traded

    labelled = expected_outcomes(candles)  # horizon 1: each candle whose next one exists
    outcomes = asyncio.run(_read_outcomes(settings, 2 * labelled))
    candles_of = {}
    for o in outcomes:
        candles_of.setdefault(o["model_version"], set()).add((o["symbol"], o["open_time"], o["horizon"]))
    assert set(candles_of) == {active, candidate} and candles_of[active] == candles_of[candidate]
    assert len(candles_of[active]) == labelled, (len(outcomes), sorted({o["horizon"] for o in outcomes}),
                                                 len({o["id"] for o in outcomes}))

    judge = PairedJudge(active, candidate, min_outcomes=10**9, check_every=50)  # count every pair, decide after
    decisions = [d for d in (judge.update(o) for o in outcomes) if d]
    with_verdict = {(o["symbol"], o["open_time"]) for o in outcomes if o["direction_correct"] is not None}
    assert judge.n[active] == judge.n[candidate] == len(with_verdict) and decisions  # flat candles: no verdict
    judge.min_outcomes = 100
    verdict = judge.decide()
    assert verdict["paired"] and verdict["decision"] in ("promote", "rollback", "continue")
    assert verdict["only_active_right"] + verdict["only_candidate_right"] <= len(with_verdict)
