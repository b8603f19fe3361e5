"""The pipeline bench's verdicts on Quix (judged by its max rate only; an unfinished warm-up's rate is shown,
not judged), and the 10-90 % rate of a regime's outputs."""

from bench._pipeline_measure import sustained_rate
from bench._pipeline_report import goals, report


def _figures(rows):
    return {"quick": True, "elapsed_s": 1.0, "load_average_start": [0.0], "load_average_end": [0.0],
            "inputs": "test", "live_symbols": 1, "burst_symbols": 1, "partitions": 1, "worker_env": {},
            "floor": {"p50_ms": 2.0, "p99_ms": 5.0}, "rows": rows, "goals": goals(rows, {"p50_ms": 2.0, "p99_ms": 5.0})}


def test_quix_is_judged_by_its_max_rate():
    rows = {"candleflow-batch": {"label": "(e)", "max": {"overall_per_s": 6000}},
            "quix": {"label": "(c)", "max": {"overall_per_s": 1500}, "warmup": {"sustained_per_s": 100}}}
    g = goals(rows)
    assert (g["batch_vs_quix"], g["batch_vs_quix_ok"], g["quix_unfinished_warmup_per_s"]) == (4.0, True, None)
    assert "did not finish its warm-up" not in report(_figures(rows))


def test_a_quix_row_that_did_not_finish_its_warm_up_shows_that_rate_and_is_not_judged():
    rows = {"candleflow-batch": {"label": "(e)", "max": {"overall_per_s": 6000}},
            "quix": {"label": "(c)", "error": "warm-up outputs did not all arrive",
                     "warmup": {"candles": 80000, "outputs": 9806, "complete": False, "sustained_per_s": 74}}}
    g = goals(rows)
    assert (g["batch_vs_quix"], g["batch_vs_quix_ok"], g["quix_unfinished_warmup_per_s"]) == (None, None, 74)
    assert "Quix did not finish its warm-up: 74 candles/s there, not judged" in report(_figures(rows))


def test_a_quix_row_that_failed_after_its_warm_up_says_so_with_both_warm_up_rates():
    rows = {"candleflow-batch": {"label": "(e)", "max": {"overall_per_s": 4000}, "warmup": {"sustained_per_s": 3242}},
            "quix": {"label": "(c)", "error": "quix: steady outputs incomplete",
                     "warmup": {"candles": 80000, "outputs": 80000, "complete": True, "sustained_per_s": 241}}}
    g = goals(rows)
    assert (g["batch_vs_quix"], g["batch_vs_quix_ok"], g["quix_unfinished_warmup_per_s"]) == (None, None, None)
    text = report(_figures(rows))
    assert "did not finish its warm-up" not in text
    assert ("Quix's row failed after its warm-up: quix: steady outputs incomplete; warm-up rates: Quix 241, "
            "(e) 3,242 candles/s (13.5x); not judged") in text


def test_sustained_rate_leaves_out_the_start_and_the_tail():
    # 100 outputs one every 10 ms, after a slow start and before a straggler
    records = [(0.0, 0, None)] + [(1.0 + i * 0.01, 0, None) for i in range(100)] + [(9.0, 0, None)]
    assert abs(sustained_rate(records) - 100.0) < 1.0
    assert sustained_rate([]) is None and sustained_rate([(1.0, 0, None)]) is None
