"""``candleflow train`` and ``distill``: models from candle files or a candle topic (``evaluate``, ``models ...``
and ``retrain-worker`` are ``training/commands.py``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from candleflow.cli.common import full_topic, settings_from

__all__ = ["distill", "train"]


@click.command()
@click.option("--data", "data", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Candle file(s) to train on (repeat the option for several).")
@click.option("--topic", default=None, help="Train on every candle of this candle topic instead (e.g. candles.5m).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Model directory to write.")
@click.option("--horizons", default="1,2,3,4,5", show_default=True,
              help="Candles ahead to predict: one (a single LightGBM model) or several (a bundle with an ensemble).")
@click.option("--with-mamba", is_flag=True, help="Also train the Mamba sequence model into the bundle (minutes on a CPU).")
@click.option("--mamba-epochs", type=click.IntRange(1, 200), default=None, help="Epochs for the Mamba model.")
def train(data: tuple[Path, ...], topic: str | None, out: Path, horizons: str, with_mamba: bool,
          mamba_epochs: int | None) -> None:
    """Train on candle files (or a candle topic) and export ONNX with metadata (model.json or bundle.json)."""
    from training.train import train_horizons_on_series, train_on_series

    try:
        chosen = sorted({int(h) for h in horizons.split(",") if h.strip()})
    except ValueError:
        raise click.UsageError(f"--horizons must be integers like 1,2,3, got {horizons!r}") from None
    if not chosen or not all(1 <= h <= 5 for h in chosen):
        raise click.UsageError("--horizons must be within 1..5")
    if bool(data) == bool(topic):
        raise click.UsageError("give candle files with --data, or --topic, not both")
    if topic:
        from training.topic_data import series_from_topic

        settings = settings_from()
        full = full_topic(settings, topic)
        series, invalid = asyncio.run(series_from_topic(settings, full))
        click.echo(f"{sum(map(len, series))} candles of {len(series)} series from {full} ({invalid} invalid left out)", err=True)
    else:
        from training.train import read_series

        series = read_series(list(data))
    if len(chosen) == 1 and not with_mamba:
        info = train_on_series(series, out, horizon=chosen[0], progress=True)
    else:
        info = train_horizons_on_series(series, out, horizons=chosen, progress=True)
        if with_mamba:
            from training.mamba import train_mamba_on_series

            options = {"epochs": mamba_epochs} if mamba_epochs else {}
            train_mamba_on_series(series, out / "mamba", progress=True, **options)
    click.echo(json.dumps(info.to_dict() if hasattr(info, "to_dict") else info, default=str, indent=2))


@click.command()
@click.option("--teacher", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="The model or bundle to learn from.")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Candle file(s) (repeat the option for several).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Directory for the student.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True)
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Weight of the hard labels.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object on the last line.")
def distill(teacher: Path, data: tuple[Path, ...], out: Path, temperature: float, alpha: float, as_json: bool) -> None:
    """Distil a model or bundle into a shallow, fast LightGBM student; report accuracy kept and speed-up."""
    from training.distill import distill as run_distill

    report = run_distill(teacher, list(data), out, temperature=temperature, alpha=alpha, progress=True)
    click.echo(f"student {report.version}: accuracy {report.student_accuracy:.4f} vs teacher {report.teacher_accuracy:.4f} "
               f"({report.accuracy_preservation:.1%} kept); {report.speed_up['batch_1']:.1f}x faster for one row, "
               f"{report.speed_up['batch_64']:.1f}x at batch 64")
    if as_json:
        click.echo(json.dumps(report.to_dict(), separators=(",", ":")))
