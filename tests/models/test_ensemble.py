"""Ensemble strategies on hand-made probabilities: values, agreement confidence, missing members, errors."""

from __future__ import annotations

import numpy as np
import pytest

from models.ensemble import Ensemble, Member, join
from core.errors import ConfigError


class Fixed:
    """P(up) given per row (rows, horizons), or the same for every row; ``(n,)`` output when 1-D."""

    def __init__(self, version, p, horizons=None):
        self.version = version
        self.p = np.asarray(p, dtype=float)
        if horizons is not None:
            self.horizons = horizons

    def predict_proba(self, x):
        if self.p.ndim == 2:
            return self.p[: len(x)]
        return np.tile(self.p, (len(x), 1)) if self.p.size > 1 else np.full(len(x), self.p[0])


F = np.zeros((1, 41))
W = np.zeros((1, 60, 41))


def ens(strategy, *members, **kw):
    return Ensemble(list(members), strategy, **kw)


def m(name, p, weight=1.0, horizons=(1,), reads="features"):
    return Member(name, Fixed(f"{name}-v", p), reads=reads, horizons=horizons, weight=weight)


def test_single_member_is_the_member_itself():
    for strategy in ("weighted_average", "majority", "unanimous"):
        out = ens(strategy, m("a", [0.8, 0.3], horizons=(1, 2))).score(F)
        np.testing.assert_allclose(out.prob_up, [[0.8, 0.3]])
        np.testing.assert_allclose(out.confidence, [[0.6, 0.4]])  # |2p - 1|: what core.signals.decide gives
        assert out.direction.tolist() == [["UP", "DOWN"]] and out.agreement.tolist() == [[1.0, 1.0]]


def test_weighted_average_with_weights():
    out = ens("weighted_average", m("a", [0.9], weight=3.0), m("b", [0.3], weight=1.0)).score(F)
    p = (3 * 0.9 + 0.3) / 4
    np.testing.assert_allclose(out.prob_up, [[p]])
    np.testing.assert_allclose(out.agreement, [[0.75]])  # a (weight 3 of 4) agrees with UP
    np.testing.assert_allclose(out.confidence, [[abs(2 * p - 1) * 0.75]])


def test_majority_vote():
    members = [m("a", [0.6]), m("b", [0.7]), m("c", [0.1])]
    out = ens("majority", *members).score(F)
    np.testing.assert_allclose(out.prob_up, [[0.65]])  # the winners' mean, not dragged down by c
    np.testing.assert_allclose(out.agreement, [[2 / 3]])
    np.testing.assert_allclose(out.confidence, [[0.3 * 2 / 3]])
    # weight turns the vote: c alone outweighs a + b
    heavy = ens("majority", m("a", [0.6]), m("b", [0.7]), m("c", [0.1], weight=3.0)).score(F)
    np.testing.assert_allclose(heavy.prob_up, [[0.1]])
    assert heavy.direction.tolist() == [["DOWN"]]


def test_majority_tie_has_no_confidence():
    out = ens("majority", m("a", [0.9]), m("b", [0.2])).score(F)
    assert out.prob_up.tolist() == [[0.5]] and out.confidence.tolist() == [[0.0]]


def test_unanimous():
    agree = ens("unanimous", m("a", [0.6]), m("b", [0.8])).score(F)
    np.testing.assert_allclose(agree.prob_up, [[0.7]])
    np.testing.assert_allclose(agree.confidence, [[0.4]])
    split = ens("unanimous", m("a", [0.6]), m("b", [0.8]), m("c", [0.45])).score(F)
    assert split.prob_up.tolist() == [[0.5]] and split.confidence.tolist() == [[0.0]]
    np.testing.assert_allclose(split.agreement, [[2 / 3]])


def test_per_row_and_per_horizon_outputs():
    a = Member("a", Fixed("a1", [[0.9, 0.2], [0.4, 0.6]]), horizons=(1, 2))
    b = Member("b", Fixed("b1", [[0.7, 0.4], [0.2, 0.8]]), horizons=(1, 2))
    out = ens("weighted_average", a, b).score(np.zeros((2, 41)))
    np.testing.assert_allclose(out.prob_up, [[0.8, 0.3], [0.3, 0.7]])
    assert out.direction.tolist() == [["UP", "DOWN"], ["DOWN", "UP"]]
    assert out.horizons == (1, 2) and out.column(2) == 1 and len(out) == 2


def test_a_horizon_one_only_member_joins_only_horizon_one():
    """The River model's shape: (n,) P(up) for horizon 1."""
    lgbm = m("lgbm", [0.8, 0.6], horizons=(1, 2))
    river = m("river", [0.2], horizons=(1,))
    out = ens("weighted_average", lgbm, river).score(F)
    np.testing.assert_allclose(out.prob_up, [[0.5, 0.6]])
    np.testing.assert_allclose(out.agreement, [[0.5, 1.0]])


def test_missing_members_are_reported_not_fatal(caplog):
    lgbm = m("lgbm", [0.8, 0.6], horizons=(1, 2))
    seq = m("mamba", [0.2, 0.2], horizons=(1, 2), reads="windows")
    e = ens("weighted_average", lgbm, seq, expected=["lgbm", "mamba", "river"])
    assert "river" in caplog.text  # said once, at construction
    with_windows = e.score(F, W)
    assert with_windows.versions == {"lgbm": "lgbm-v", "mamba": "mamba-v"} and with_windows.missing == ("river",)
    np.testing.assert_allclose(with_windows.prob_up, [[0.5, 0.4]])
    without = e.score(F)  # no windows in this batch: the sequence model sits it out
    assert without.versions == {"lgbm": "lgbm-v"} and without.missing == ("river", "mamba")
    np.testing.assert_allclose(without.prob_up, [[0.8, 0.6]])


def test_nan_from_a_member_leaves_it_out_of_that_row():
    a = Member("a", Fixed("a1", [[0.9], [0.9]]))
    b = Member("b", Fixed("b1", [[np.nan], [0.5]]))
    out = ens("weighted_average", a, b).score(np.zeros((2, 41)))
    np.testing.assert_allclose(out.prob_up, [[0.9], [0.7]])
    assert np.isfinite(out.confidence).all()


def test_zero_weight_member_does_not_count():
    out = ens("weighted_average", m("a", [0.9]), m("b", [0.1], weight=0.0)).score(F)
    np.testing.assert_allclose(out.prob_up, [[0.9]])


def test_predict_proba_verbs():
    e = ens("weighted_average", m("a", [0.8, 0.6], horizons=(1, 2)), m("b", [0.6, 0.2], horizons=(1, 2)))
    assert e.predict_proba(np.zeros((3, 41))).shape == (3, 2)
    one = e.predict_proba_one(np.zeros(41))
    assert one.keys() == {1, 2} and one[1] == pytest.approx(0.7) and one[2] == pytest.approx(0.4)


def test_horizons_default_from_model_attributes():
    assert Member("a", Fixed("v", [0.5, 0.5, 0.5], horizons=(1, 2, 3))).horizons == (1, 2, 3)
    single = Fixed("v", [0.5])
    single.horizon = 4
    assert Member("b", single).horizons == (4,)


@pytest.mark.parametrize("make, match", [
    (lambda: ens("loudest", m("a", [0.5])), "unknown ensemble strategy"),
    (lambda: ens("majority", m("a", [0.5]), m("a", [0.5])), "unique"),
    (lambda: ens("majority", m("a", [0.5]), horizons=(1, 2)), "horizon"),
    (lambda: ens("majority", m("a", [0.5], weight=0.0)), "horizon"),
    (lambda: m("a", [0.5], weight=-1.0), "weight"),
    (lambda: m("a", [0.5], reads="pixels"), "reads"),
])
def test_configuration_errors(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_wrong_member_output_shape():
    e = ens("majority", Member("a", Fixed("v", [0.5, 0.5]), horizons=(1,)))
    with pytest.raises(ValueError, match="shape"):
        e.score(F)


# -- a member joining after the score (the online model: models.ensemble.join) ---------------------------------------

def _bundle_output(strategy="weighted_average"):
    rows = np.array([[0.8, 0.6], [0.7, 0.2], [0.3, 0.4]])  # P(up) at horizons 1 and 2, three rows
    members = [m("trees", rows, horizons=(1, 2)), m("seq", rows[:, ::-1], weight=0.5, horizons=(1, 2))]
    return ens(strategy, *members).score(np.zeros((3, 41))), {"trees": 1.0, "seq": 0.5}


def test_a_joining_member_with_no_share_changes_nothing():
    for strategy in ("weighted_average", "majority", "unanimous"):
        out, weights = _bundle_output(strategy)
        for column in (0, 1):
            p, agreement, confidence = join(out, np.arange(3), column, weights, np.array([0.1, 0.9, 0.5]), np.zeros(3))
            np.testing.assert_array_equal(p, out.prob_up[:, column])
            np.testing.assert_array_equal(agreement, out.agreement[:, column])
            np.testing.assert_array_equal(confidence, out.confidence[:, column])


def test_a_joining_member_holds_its_share_of_the_weight_and_votes():
    out, weights = _bundle_output()
    share, online = np.array([0.25, 0.5, 1.0]), np.array([0.2, 0.9, 0.6])
    p, agreement, confidence = join(out, np.arange(3), 0, weights, online, share)
    np.testing.assert_allclose(p, (1 - share) * out.prob_up[:, 0] + share * online)
    # Row 0: trees 0.8 and seq 0.6 vote up (0.75 of the weight between them), the online member down.
    # Row 2: the online member alone (share 1).
    np.testing.assert_allclose(agreement, [0.75, 1 - 0.5 * (0.5 / 1.5), 1.0])
    np.testing.assert_allclose(confidence, np.abs(2 * p - 1) * agreement)


def test_a_joining_member_without_a_probability_has_no_say():
    out, weights = _bundle_output()
    p, agreement, confidence = join(out, np.array([2, 0]), 1, weights, np.array([np.nan, 0.9]), np.array([0.5, 0.0]))
    np.testing.assert_array_equal(p, out.prob_up[[2, 0], 1])
    np.testing.assert_array_equal(confidence, out.confidence[[2, 0], 1])


def test_a_joining_member_speaks_alone_where_no_member_has_a_probability():
    out = ens("weighted_average", m("trees", [[np.nan], [0.8]])).score(np.zeros((2, 41)))
    p, agreement, confidence = join(out, np.arange(2), 0, {"trees": 1.0}, np.array([0.9, 0.9]), np.array([0.2, 0.0]))
    np.testing.assert_allclose(p, [0.9, 0.8])
    np.testing.assert_allclose(confidence, [0.8, 0.6])
