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
@click.option("--with-mamba/--no-mamba", default=True, show_default=True,
              help="Train the Mamba sequence member into the bundle too (minutes on a CPU) and choose its weight "
                   "on held-out rows; --no-mamba ships LightGBM alone (a single --horizons gives one model).")
@click.option("--mamba-epochs", type=click.IntRange(1, 200), default=None,
              help="At most this many epochs for the Mamba model (early stopping; default 8).")
def train(data: tuple[Path, ...], topic: str | None, out: Path, horizons: str, with_mamba: bool,
          mamba_epochs: int | None) -> None:
    """Train the default bundle on candle files (or a candle topic): LightGBM per horizon and the Mamba
    sequence member, exported as ONNX with metadata (bundle.json; model.json for one horizon without Mamba)."""
    from training.default_bundle import train_default_bundle
    from training.train import train_on_series

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
        info = train_default_bundle(series, out, chosen, with_sequence=with_mamba, mamba_epochs=mamba_epochs,
                                    progress=True)
    click.echo(json.dumps(info.to_dict(), default=str, indent=2))


@click.command()
@click.option("--teacher", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="The model or bundle to learn from (every member of it: the sequence member on its windows).")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Candle file(s) (repeat the option for several).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the student bundle (default: TEACHER/student/, where a worker serving the teacher "
                   "finds it; distil before registering the teacher, or the artifact's digest changes).")
@click.option("--leaves", type=click.IntRange(2, 255), default=None, help="Leaves per tree of each horizon's student.")
@click.option("--rounds", type=click.IntRange(1, 10_000), default=None, help="Boosting rounds of each horizon's student.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True)
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Weight of the hard labels.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object on the last line.")
def distill(teacher: Path, data: tuple[Path, ...], out: Path | None, leaves: int | None, rounds: int | None,
            temperature: float, alpha: float, as_json: bool) -> None:
    """Distil a model or bundle into a shallow, fast LightGBM student per horizon; report accuracy kept and speed-up."""
    from training.distill import distill as run_distill

    options = {k: v for k, v in (("num_leaves", leaves), ("num_boost_round", rounds)) if v is not None}
    report = run_distill(teacher, list(data), out, temperature=temperature, alpha=alpha, progress=True, **options)
    kept = ", ".join(f"{h} {report.student_accuracy[h]:.4f}/{report.teacher_accuracy[h]:.4f} ({k:.1%})"
                     for h, k in report.accuracy_kept.items())
    click.echo(f"student {report.version} of {report.teacher_version} in {report.out_dir}: accuracy student/teacher "
               f"{kept}; {report.speed_up['batch_1']:.1f}x faster per row at batch 1, "
               f"{report.speed_up['batch_1000']:.1f}x at batch 1,000 (goals met: {report.goals_met})")
    if as_json:
        click.echo(json.dumps(report.to_dict(), separators=(",", ":")))
