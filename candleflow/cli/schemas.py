"""``candleflow schemas list``, ``show`` and ``export``: the Avro contract (docs/schemas.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from core.errors import ConfigError
from candleflow.cli.common import settings_from

__all__ = ["schemas"]


@click.group()
def schemas() -> None:
    """The Avro contract: ids, subjects and self-contained schema files (docs/schemas.md)."""


def _schema_rows() -> list[dict]:
    from schemas.export import schema_rows
    from schemas.registry_api import topic_subjects
    from schemas.store import LocalSchemaStore

    return schema_rows(LocalSchemaStore(), topic_subjects(settings_from()))


@schemas.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def schemas_list(as_json: bool) -> None:
    """Every record with its schema id and the subjects a worker serves it under."""
    rows = _schema_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['id']:>10}  {', '.join(r['subjects'])}")


@schemas.command("show")
@click.argument("name")
def schemas_show(name: str) -> None:
    """The self-contained schema of record NAME (e.g. Candle), as a registry serves it."""
    from schemas.loader import SCHEMA_NAMES, load_schema

    if name not in SCHEMA_NAMES:
        raise click.BadParameter(f"unknown record {name!r}; one of {', '.join(SCHEMA_NAMES)}", param_hint="NAME")
    row = next(r for r in _schema_rows() if r["name"] == name)
    click.echo(f"// id {row['id']}; subjects: {', '.join(row['subjects'])}", err=True)
    click.echo(json.dumps(load_schema(name), indent=2))


@schemas.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def schemas_export(folder: Path) -> None:
    """Write every record as a self-contained .avsc file, and registry-import.json, into FOLDER."""
    from schemas.export import export_schemas
    from schemas.registry_api import topic_subjects
    from schemas.store import LocalSchemaStore

    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"{folder} is not empty: export writes into a new or empty folder")
    for path in export_schemas(folder, LocalSchemaStore(), topic_subjects(settings_from())):
        click.echo(path)
