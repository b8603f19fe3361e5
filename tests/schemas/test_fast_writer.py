"""schemas/fast_writer.py against fastavro: the same bytes for every plain record, the general way for the rest."""

from io import BytesIO

import numpy as np
import pytest
from fastavro import schemaless_writer
from hypothesis import HealthCheck, given, settings, strategies as st

from schemas import SCHEMA_NAMES, AvroCodec, LocalSchemaStore, load_schema
from schemas.fast_writer import NotPlain, compile_writer
from schemas.store import parse
from core.errors import InvalidInput
from tests.schemas.avro_records import completed, records

STORE = LocalSchemaStore()
PARSED = {name: parse(load_schema(name)) for name in SCHEMA_NAMES}
WRITERS = {name: compile_writer(schema) for name, schema in PARSED.items()}


def fastavro_bytes(name: str, record: dict) -> bytes:
    out = BytesIO()
    schemaless_writer(out, PARSED[name], record, strict_allow_default=True)
    return out.getvalue()


def test_every_output_record_of_the_worker_has_a_fast_writer() -> None:
    assert {"PredictionBatch", "OutcomeBatch", "Signal", "Prediction", "Outcome"} <= {n for n, w in WRITERS.items() if w}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from([n for n, w in WRITERS.items() if w]))
def test_a_plain_record_gives_fastavro_s_bytes(data, name: str) -> None:
    record = completed(load_schema(name), data.draw(records(name)))  # every field present: the plain case
    out = bytearray()
    try:
        WRITERS[name](record, out)
    except NotPlain:  # a bool where a number goes, say: fine, as long as the codec then agrees with fastavro
        out = None
    expected = fastavro_bytes(name, record)
    if out is not None:
        assert bytes(out) == expected
    assert AvroCodec(name, STORE).encode(record)[5:] == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from([n for n, w in WRITERS.items() if w]))
def test_fields_left_out_for_their_null_default_give_fastavro_s_bytes(data, name: str) -> None:
    record = completed(load_schema(name), data.draw(records(name)))
    optional = [f["name"] for f in PARSED[name]["fields"]
                if "default" in f and f["default"] is None and isinstance(f["type"], list) and f["type"][0] == "null"]
    left_out = data.draw(st.sets(st.sampled_from(optional))) if optional else set()
    record = {k: v for k, v in record.items() if k not in left_out}
    out = bytearray()
    try:
        WRITERS[name](record, out)
    except NotPlain:
        return  # not plain for another reason (the test above holds the codec to fastavro then)
    assert bytes(out) == fastavro_bytes(name, record)


def test_a_left_out_required_field_or_an_extra_key_is_not_plain() -> None:
    signal = {"id": "s", "prediction_id": "p", "symbol": "ETH-BTC", "timeframe": "5m", "open_time": 1, "direction": "UP",
              "confidence": 0.2, "entry_price": 0.1, "horizon": 1, "model_version": "v1"}
    WRITERS["Signal"](signal, bytearray())  # the pattern_* fields and candle_produced_at left out: plain
    for record in ({k: v for k, v in signal.items() if k != "confidence"}, {**signal, "extra": 1},
                   {**{k: v for k, v in signal.items() if k != "confidence"}, "extra": 1}):
        with pytest.raises(NotPlain):
            WRITERS["Signal"](record, bytearray())


@given(st.integers(-(2**63), 2**63 - 1))
def test_longs_as_zigzag_varints(n: int) -> None:
    record = {"symbol": "A", "timeframe": "5m", "open_time": n, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0,
              "volume": 1.0, "quote_volume": None, "trades": None, "taker_buy_base_volume": None,
              "taker_buy_quote_volume": None, "spread_bps": None}
    out = bytearray()
    WRITERS["Candle"](record, out)
    assert bytes(out) == fastavro_bytes("Candle", record)


PREDICTION = {"id": "p", "symbol": "ETH-BTC", "timeframe": "5m", "open_time": 1, "close": 0.1, "horizon": 1,
              "prob_up": 0.6, "direction": "UP", "confidence": 0.2, "ready": True, "model_version": "v1",
              "features": [0.5, float("nan")], "candle_produced_at": None,
              "horizons": [{"horizon": 1, "prob_up": 0.6, "direction": "UP", "confidence": 0.2}],
              "model_versions": {"lgbm": "v1"}}


@pytest.mark.parametrize("change", [
    {"open_time": 1.5}, {"horizon": 2**31}, {"ready": 1}, {"direction": "SIDEWAYS"}, {"features": [0.5, "0.1"]},
    {"features": [True]}, {"features": "ab"}, {"model_versions": {"lgbm": 3}}, {"extra": 1},
])
def test_a_record_that_does_not_fit_is_refused_as_before(change: dict) -> None:
    with pytest.raises(NotPlain):
        WRITERS["Prediction"]({**PREDICTION, **change}, bytearray())
    with pytest.raises(InvalidInput):
        AvroCodec("Prediction", STORE).encode({**PREDICTION, **change})


@pytest.mark.parametrize("change", [{"close": np.float64(0.1)}, {"horizon": np.int64(1)}, {"ready": np.bool_(True)}])
def test_numpy_scalars_take_the_general_way_and_left_out_defaults_give_the_same_bytes(change: dict) -> None:
    codec = AvroCodec("Prediction", STORE)
    plain = codec.encode(PREDICTION)
    assert codec.encode({**PREDICTION, **change}) == plain
    without_default = {k: v for k, v in PREDICTION.items() if k != "candle_produced_at"}
    assert codec.encode(without_default) == plain
