import pytest

from schemas import LocalSchemaStore, MultiCodec
from core.candle import Candle
from core.errors import DecodeError, InvalidInput
from core.candle_messages import decode_candle_message

CODEC = MultiCodec(["Candle", "CandleBatch"], LocalSchemaStore())
GOOD = Candle("ETH-BTC", "5m", 1515560100000, 0.0984, 0.0995, 0.0982, 0.0994, 1820.5)


def test_single_candle_and_batch_decode_alike():
    single = decode_candle_message(CODEC, CODEC.encode("Candle", GOOD.to_record()), "5m")
    batch = decode_candle_message(CODEC, CODEC.encode("CandleBatch", {"candles": [GOOD.to_record()] * 3}), "5m")
    assert single == [GOOD] and batch == [GOOD] * 3


def test_one_bad_candle_in_a_batch_does_not_cost_the_others():
    bad = {**GOOD.to_record(), "high": 0.01}
    out = decode_candle_message(CODEC, CODEC.encode("CandleBatch", {"candles": [GOOD.to_record(), bad, GOOD.to_record()]}))
    assert out[0] == GOOD and out[2] == GOOD and isinstance(out[1], InvalidInput) and "high" in str(out[1])


@pytest.mark.parametrize("payload", [None, b"", b"\x00", b"\x00\x00\x00\x00\x01xyz", b"{\"symbol\": \"ETH\"}"])
def test_undecodable_messages_raise_decode_error(payload):
    with pytest.raises(DecodeError):
        decode_candle_message(CODEC, payload)


def test_wrong_timeframe_for_the_topic_is_invalid():
    out = decode_candle_message(CODEC, CODEC.encode("Candle", GOOD.to_record()), "1m")
    assert isinstance(out[0], InvalidInput) and "5m candle on the 1m" in str(out[0])


def test_a_message_over_the_size_limit_is_refused_before_decoding_even_if_valid():
    batch = CODEC.encode("CandleBatch", {"candles": [GOOD.to_record()] * 100})
    assert decode_candle_message(CODEC, batch, "5m", max_bytes=len(batch)) == [GOOD] * 100
    with pytest.raises(DecodeError, match=f"{len(batch)} bytes exceeds the {len(batch) - 1}-byte limit"):
        decode_candle_message(CODEC, batch, "5m", max_bytes=len(batch) - 1)


def test_a_candle_from_the_future_is_refused_with_the_reason():
    import time

    from core.settings import Settings

    settings = Settings(max_clock_skew_s=300)
    now = time.time()
    future = GOOD.to_record() | {"open_time": 4_102_444_800_000}  # 2100-01-01
    soon = GOOD.to_record() | {"open_time": (int(now) // 300 + 1) * 300_000}  # the candle opening next: within the skew
    out = decode_candle_message(CODEC, CODEC.encode("CandleBatch", {"candles": [GOOD.to_record(), future, soon]}), "5m",
                                latest_open_time=settings.latest_open_time(now))
    assert out[0] == GOOD and isinstance(out[2], type(GOOD))
    assert isinstance(out[1], InvalidInput) and "in the future" in str(out[1]) and "MAX_CLOCK_SKEW_S" in str(out[1])
