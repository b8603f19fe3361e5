"""Candle files on disk (CSV, CSV.gz, Parquet) read into validated :class:`~core.candle.Candle` lists (in ``core/``:
it imports nothing but core, and training, models' tests, the CLI and the demo all read candle files).

The format is the one of the bundled real candles (``data/candles/``): columns ``ts`` (open time, epoch
ms, UTC), ``open``, ``high``, ``low``, ``close``, ``volume``, optionally ``quote_volume``, ``trades``,
``taker_buy_base_volume``, ``taker_buy_quote_volume``, ``spread_bps``. Symbol and timeframe come from
the file name ``<BASE>-<QUOTE>_<tf>.<ext>`` unless given.

Every row goes through :func:`~core.candle.candle_from_record`, the same check the stream applies;
a row that fails (or repeats / goes back in time) is reported in ``rejected``, never silently dropped.

>>> parse_candle_filename("data/candles/ETH-BTC_5m.csv.gz")
('ETH-BTC', '5m')
>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "ETH-BTC_5m.csv"
>>> _ = path.write_text("ts,open,high,low,close,volume\\n"
...     "1515560100000,0.0984,0.0995,0.0982,0.0994,1820.5\\n"
...     "1515560400000,0.0994,0.0990,0.0990,0.0997,2527.9\\n")
>>> cf = read_candle_file(path)
>>> [c.close for c in cf.candles], cf.rejected
([0.0994], [(2, "high 0.099 is below the candle's open, close or low")])
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from core.candle import TIMEFRAME_MS, Candle, candle_from_record
from core.errors import ConfigError, InvalidInput

__all__ = ["MAX_FILE_BYTES", "OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "CandleFile", "parse_candle_filename", "read_candle_file"]

REQUIRED_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
OPTIONAL_COLUMNS = ("quote_volume", "trades", "taker_buy_base_volume", "taker_buy_quote_volume", "spread_bps")
_FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
# Content of one file, decompressed: ~5 million candles, years of 1m candles of one pair; the candles
# of a file are held in memory whole, so a compressed bomb must stop here rather than in the allocator.
MAX_FILE_BYTES = 512 << 20


@dataclass(frozen=True)
class CandleFile:
    """The valid candles of one file, in file order, and the rows refused with their reasons.

    ``rejected`` holds ``(row, reason)`` with ``row`` the 1-based data row (the CSV header not counted).
    """

    path: Path
    symbol: str
    timeframe: str
    candles: list[Candle] = field(repr=False)
    rejected: list[tuple[int, str]] = field(repr=False)


def _split_suffix(path: Path) -> tuple[str, str]:
    """(stem, format) of a candle file name; ConfigError for an extension we cannot read."""
    name = path.name
    for suffix in sorted(_FORMATS, key=len, reverse=True):  # ".csv.gz" before ".csv"
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], _FORMATS[suffix]
    raise ConfigError(f"{path}: unknown candle file format (expected one of {', '.join(_FORMATS)})")


def parse_candle_filename(path: str | Path) -> tuple[str, str]:
    """``(symbol, timeframe)`` from a file named ``<BASE>-<QUOTE>_<tf>.<ext>``.

    >>> parse_candle_filename("LTC-BTC_1h.parquet")
    ('LTC-BTC', '1h')
    >>> parse_candle_filename("candles.csv")
    Traceback (most recent call last):
    ...
    core.errors.ConfigError: candles.csv: file name is not <BASE>-<QUOTE>_<timeframe> (e.g. ETH-BTC_5m.csv.gz); pass symbol and timeframe explicitly
    """
    path = Path(path)
    stem, _ = _split_suffix(path)
    symbol, sep, timeframe = stem.rpartition("_")
    base, dash, quote = symbol.partition("-")
    if not sep or not dash or not base or not quote or timeframe not in TIMEFRAME_MS:
        raise ConfigError(
            f"{path.name}: file name is not <BASE>-<QUOTE>_<timeframe> (e.g. ETH-BTC_5m.csv.gz); "
            "pass symbol and timeframe explicitly"
        )
    return symbol, timeframe


def _too_big(path: Path, size: str, max_bytes: int) -> ConfigError:
    return ConfigError(f"{path}: {size} more than {max_bytes:,} bytes (the limit of one candle file): split it")


def _gunzip(path: Path, max_bytes: int) -> bytes:
    """The content of a gzip file, refused past ``max_bytes``: a few kilobytes can expand to gigabytes."""
    chunks, total = [], 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            total += len(chunk)
            if total > max_bytes:
                raise _too_big(path, "decompresses to", max_bytes)
            chunks.append(chunk)
    return b"".join(chunks)


def _read_table(path: Path, fmt: str, max_bytes: int) -> pa.Table:
    try:
        if fmt == "parquet":
            meta = pq.ParquetFile(path).metadata  # the row groups' uncompressed sizes, before reading any
            if sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) > max_bytes:
                raise _too_big(path, "holds", max_bytes)
            return pq.read_table(path)
        if path.name.lower().endswith(".gz"):
            return pa_csv.read_csv(pa.BufferReader(_gunzip(path, max_bytes)))
        if path.stat().st_size > max_bytes:
            raise _too_big(path, "holds", max_bytes)
        return pa_csv.read_csv(path)
    except (pa.ArrowException, OSError, EOFError, zlib.error) as exc:
        raise ConfigError(f"{path}: cannot read as {fmt}: {exc}") from exc


def _column(table: pa.Table, name: str) -> list[Any]:
    """A column as Python values; timestamps become epoch ms, so Parquet written by pandas also works."""
    col = table.column(name)
    if pa.types.is_timestamp(col.type):
        col = pc.cast(pc.cast(col, pa.timestamp("ms", tz=col.type.tz)), pa.int64())
    return col.to_pylist()


def _number(name: str, value: Any) -> Any:
    """Coerce what a CSV may hold (text, integral floats for ints); leave the rest to candle_from_record."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InvalidInput(f"{name} is not a number ({value!r:.40})") from None
    if name in ("ts", "trades") and isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    return value


def read_candle_file(path: str | Path, symbol: str | None = None, timeframe: str | None = None,
                     max_bytes: int = MAX_FILE_BYTES) -> CandleFile:
    """Read and validate one candle file; see the module docstring for the format. A file whose content
    (decompressed) passes ``max_bytes`` is refused with a ConfigError before it is parsed."""
    path = Path(path)
    _, fmt = _split_suffix(path)
    if not path.is_file():
        raise ConfigError(f"{path}: candle file not found")
    if symbol is None or timeframe is None:
        parsed_symbol, parsed_tf = parse_candle_filename(path)
        symbol, timeframe = symbol or parsed_symbol, timeframe or parsed_tf
    if timeframe not in TIMEFRAME_MS:
        raise ConfigError(f"unknown timeframe {timeframe!r} (known: {', '.join(TIMEFRAME_MS)})")
    table = _read_table(path, fmt, max_bytes)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(table.column_names)})")
    names = REQUIRED_COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if c in table.column_names)
    columns = {name: _column(table, name) for name in names}
    candles: list[Candle] = []
    rejected: list[tuple[int, str]] = []
    for i in range(table.num_rows):
        try:
            record = {name: _number(name, columns[name][i]) for name in names}
            record["open_time"] = record.pop("ts")
            candle = candle_from_record({"symbol": symbol, "timeframe": timeframe, **record})
            # The stream refuses a candle not newer than its state; a file must not slip one past training.
            if candles and candle.open_time <= candles[-1].open_time:
                raise InvalidInput(
                    f"open_time {candle.open_time} is not after the previous candle's {candles[-1].open_time} "
                    "(duplicate or out of order)"
                )
        except InvalidInput as exc:
            rejected.append((i + 1, str(exc)))
            continue
        candles.append(candle)
    return CandleFile(path, symbol, timeframe, candles, rejected)
