"""The `fraudstream` command: one subcommand per component. Thin: parsing and printing only."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from fraudstream.config import Settings

if TYPE_CHECKING:
    from fraudstream.ml.registry import Registry

T = TypeVar("T")

app = typer.Typer(
    help="Real-time card-fraud detection on Kafka, CatBoost and PostgreSQL.", no_args_is_help=True
)
console = Console(stderr=True, soft_wrap=True)


def _settings(**overrides: object) -> Settings:
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=1)


@app.command()
def up() -> None:
    """Start PostgreSQL and Kafka (idempotent), apply migrations, create topics; wait until healthy."""
    from fraudstream.infra.process import InfraError
    from fraudstream.infra.stack import LocalStack

    logging.basicConfig(level=logging.WARNING)
    stack = LocalStack.from_settings(Settings())
    try:
        with console.status("starting") as status:
            stack.up(step=lambda message: status.update(message))
    except InfraError as error:
        raise _fail(str(error)) from error
    console.print(f"[green]up[/]: Kafka {stack.kafka.bootstrap_servers}, PostgreSQL {stack.postgres.dsn}")


@app.command()
def down() -> None:
    """Stop the local Kafka and PostgreSQL (their data stays under the data dir)."""
    from fraudstream.infra.stack import LocalStack

    LocalStack.from_settings(Settings()).down()
    console.print("down")


@app.command()
def migrate() -> None:
    """Apply the PostgreSQL schema migrations not yet applied (docker-compose runs this once)."""
    import asyncio

    from fraudstream.infra.migrations import migrate as apply_migrations

    settings = Settings()
    applied = asyncio.run(apply_migrations(settings.pg_dsn, reader=settings.pg_reader))
    console.print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none needed'}")


@app.command()
def topics() -> None:
    """Create the Kafka topics that are missing (docker-compose runs this once)."""
    from fraudstream.infra.topics import ensure_topics

    created = ensure_topics(Settings())
    console.print(f"created {len(created)} topic(s): {', '.join(created) or 'all existed'}")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Health of every component; exits 0 only when all are healthy."""
    from fraudstream.ops.status import collect

    report = collect(Settings())
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_status(report)
    raise typer.Exit(code=0 if report["healthy"] else 1)


def _print_status(report: dict) -> None:
    table = Table("component", "health", "detail")
    kafka, postgres = report["kafka"], report["postgres"]
    table.add_row(
        "kafka", _mark(kafka["healthy"]), kafka.get("error", f"{kafka.get('brokers', 0)} broker(s)")
    )
    for name, topic in kafka.get("topics", {}).items():
        table.add_row(f"  topic {name}", _mark(topic["ok"]), f"{topic['partitions']} partitions")
    for group, lag in kafka.get("consumer_lag", {}).items():
        table.add_row(f"  group {group}", "", lag.get("error", f"lag {lag.get('lag')} on {lag['topic']}"))
    detail = postgres.get("error", f"{postgres.get('fraud_scores_rows')} rows in fraud_scores")
    table.add_row("postgres", _mark(postgres["healthy"]), detail)
    mlflow = report["mlflow"]
    table.add_row("mlflow", _mark(mlflow["healthy"]), f"{mlflow['tracking_uri']}: {mlflow['detail']}")
    for name, service in report["services"].items():
        state = "[green]ready[/]" if service["ready"] else "[yellow]not ready[/]"
        partitions = service.get("assigned_partitions")
        age = service.get("last_batch_age_s")
        detail = (
            service["detail"] if partitions is None else f"partitions {partitions}, last batch {age} s ago"
        )
        if service.get("champion"):
            detail += f"; champion {service['champion']}, challenger {service.get('challenger') or 'none'}"
        table.add_row(name, state, detail)
    Console().print(table)
    for warning in report["warnings"]:
        Console().print(f"[yellow]warning:[/] {warning}")


def _mark(ok: bool) -> str:
    return "[green]healthy[/]" if ok else "[red]unhealthy[/]"


@app.command()
def send(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV in the input format")],
    rate: Annotated[
        float | None, typer.Option(help="messages per second (default: as fast as possible)")
    ] = None,
) -> None:
    """Send each row of FILE to the transactions topic with a fresh transaction_id."""
    from fraudstream.contracts.schema import InputFormatError, read_csv
    from fraudstream.pipeline.producer import TransactionProducer

    try:
        frame = read_csv(file)
    except InputFormatError as error:
        raise _fail(f"{error}; nothing was sent") from error
    with _progress() as progress:
        task = progress.add_task("sending", total=len(frame))
        report = TransactionProducer(Settings()).send(
            frame, rate=rate, progress=lambda done, total: progress.update(task, completed=done)
        )
    console.print(f"sent {report.sent} transactions in {report.seconds:.2f} s ({report.rate:,.0f}/s)")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


@app.command()
def detector(
    model: Annotated[
        Path | None, typer.Option(help="CatBoost .cbm or model dir [env FRAUDSTREAM_MODEL_PATH]")
    ] = None,
    threshold: Annotated[float | None, typer.Option(help="fraud_flag = score > threshold")] = None,
    instance: Annotated[
        str | None, typer.Option(help="unique per running detector (default: hostname)")
    ] = None,
    metrics_port: Annotated[int | None, typer.Option(help="port of /metrics and /healthz (0 = any)")] = None,
) -> None:
    """Score the transactions topic into the scoring topic (exactly once)."""
    from fraudstream.ops.entrypoints import run_detector

    run_detector(
        _settings(model_path=model, threshold=threshold), instance=instance, metrics_port=metrics_port
    )


@app.command()
def sink(
    metrics_port: Annotated[int | None, typer.Option(help="port of /metrics and /healthz (0 = any)")] = None,
) -> None:
    """Write the scoring topic into PostgreSQL fraud_scores (idempotent)."""
    from fraudstream.ops.entrypoints import run_sink

    run_sink(Settings(), metrics_port=metrics_port)


@app.command()
def ui() -> None:
    """Serve the Streamlit interface."""
    from fraudstream.ops.entrypoints import ui_command

    command = ui_command(Settings())
    os.execv(command[0], command)


@app.command()
def run(
    keep_infra: Annotated[bool, typer.Option(help="leave Kafka and PostgreSQL running on exit")] = False,
) -> None:
    """Start everything (infrastructure, detector, sink, UI) and stop it all on Ctrl-C."""
    from fraudstream.infra.process import InfraError
    from fraudstream.ops.supervisor import run_system

    try:
        run_system(Settings(), console, keep_infra=keep_infra)
    except InfraError as error:
        raise _fail(str(error)) from error


@app.command()
def train(
    data: Annotated[
        Path | None, typer.Argument(exists=True, dir_okay=False, help="labelled CSV(.gz) with `target`")
    ] = None,
    out: Annotated[Path, typer.Option(help="model directory to write")] = Path("artifacts/model"),
    from_db: Annotated[
        bool, typer.Option("--from-db", help="train on fraud_scores' stored transactions and their labels")
    ] = False,
    since: Annotated[datetime | None, typer.Option(help="--from-db: first scored_at (UTC)")] = None,
    until: Annotated[datetime | None, typer.Option(help="--from-db: end of the period (default now)")] = None,
    register: Annotated[
        bool, typer.Option("--register", help="log the run to MLflow and register a new version")
    ] = False,
) -> None:
    """Train the CatBoost model on time-ordered data, validating on the latest part of the period."""
    from fraudstream.logs import setup_logging
    from fraudstream.ml.registry import RegistryError
    from fraudstream.ml.training import train_model
    from fraudstream.pipeline.lifecycle import Window, registry_of, train_from_db

    setup_logging("train")
    settings = Settings()
    if (data is None) == (not from_db):
        raise _fail("give a DATA file or --from-db (one of them)")
    if from_db and since is None:
        raise _fail("--from-db needs --since")
    try:
        registry = registry_of(settings) if register else None
        if from_db:
            window = Window(_utc(since), _utc(until) if until else datetime.now(UTC))
            report = train_from_db(settings, window, out)
        else:
            report = train_model(data, out)
        if registry is not None:
            from fraudstream.ml.tracking import log_and_register

            report["registered"] = log_and_register(registry, out, report).label
    except (RegistryError, OSError) as error:  # OSError: PostgreSQL unreachable for --from-db
        raise _fail(str(error)) from error
    console.print_json(data=report)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


models_app = typer.Typer(help="The model registry: versions and the aliases that decide what serves.")
app.add_typer(models_app, name="models")


@models_app.command("register")
def models_register(
    path: Annotated[Path, typer.Argument(exists=True, help="a model directory or a CatBoost .cbm")],
) -> None:
    """Register a model as a new version (it serves only once promoted)."""
    from fraudstream.pipeline.lifecycle import register_path

    version = _registry_call(lambda registry: register_path(registry, path))
    console.print(f"registered {version.label}")


@models_app.command("init")
def models_init() -> None:
    """With no champion yet: register FRAUDSTREAM_MODEL_PATH and make it the champion."""
    from fraudstream.pipeline.lifecycle import ensure_champion

    settings = Settings()
    console.print(f"champion: {_registry_call(lambda _: ensure_champion(settings))}")


@models_app.command("list")
def models_list() -> None:
    """Every version with its aliases, training period and validation PR-AUC."""
    versions = _registry_call(lambda registry: registry.versions())
    table = Table("version", "aliases", "created", "training period", "PR-AUC (validation)", "model id")
    for version in versions:
        tags = version.tags
        table.add_row(
            version.label,
            ", ".join(version.aliases),
            f"{version.created_at:%Y-%m-%d %H:%M}",
            tags.get("training_period", ""),
            tags.get("validation_pr_auc", ""),
            tags.get("model_id", ""),
        )
    Console().print(table)


@models_app.command("promote")
def models_promote(
    version: Annotated[int, typer.Argument(help="version number to make the champion")],
    force: Annotated[bool, typer.Option("--force", help="promote even if worse than the champion")] = False,
    days: Annotated[float, typer.Option(help="comparison window: the last DAYS days")] = 30.0,
) -> None:
    """Make VERSION the champion: refused when worse than the champion on the shadow comparison."""
    from fraudstream.pipeline.lifecycle import Window, promote

    settings = Settings()
    message = _registry_call(lambda registry: promote(settings, registry, version, force, Window.last(days)))
    console.print(message)


@models_app.command("shadow")
def models_shadow(
    version: Annotated[int | None, typer.Argument(help="version to score in shadow")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="stop shadow scoring")] = False,
) -> None:
    """Make VERSION the challenger: scored on every transaction, never deciding."""
    if (version is None) == (not clear):
        raise _fail("give a VERSION or --clear")
    _registry_call(lambda registry: registry.set_challenger(version))
    console.print("no challenger" if clear else f"challenger: version {version}")


@models_app.command("rollback")
def models_rollback() -> None:
    """Make the previous champion the champion again."""
    from fraudstream.pipeline.lifecycle import rollback

    console.print(_registry_call(rollback))


def _registry_call(action: Callable[[Registry], T]) -> T:
    """``action`` on the configured registry; its refusals and outages as one-line errors."""
    from fraudstream.ml.registry import RegistryError
    from fraudstream.pipeline.lifecycle import registry_of

    try:
        return action(registry_of(Settings()))
    except (RegistryError, OSError) as error:  # OSError: PostgreSQL unreachable for a comparison
        raise _fail(str(error)) from error


@app.command()
def score(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV in the input format")],
    out: Annotated[Path, typer.Option(help="CSV to write: score,fraud_flag per input row")],
    model: Annotated[Path | None, typer.Option(help="CatBoost .cbm or model dir")] = None,
    threshold: Annotated[float | None, typer.Option(help="fraud_flag = score > threshold")] = None,
) -> None:
    """Score FILE offline with the serving code path (same features, same scores as the stream)."""
    from fraudstream.contracts.schema import InputFormatError
    from fraudstream.ml.offline import score_file

    settings = _settings(model_path=model, threshold=threshold)
    try:
        report = score_file(file, out, settings.model_path, settings.threshold)
    except InputFormatError as error:
        raise _fail(str(error)) from error
    console.print_json(data=report)


@app.command()
def bench(
    rows: Annotated[int, typer.Option(help="transactions for the throughput stages")] = 200_000,
    rate: Annotated[float, typer.Option(help="offered rate of the latency stage, tx/s")] = 1000.0,
    seconds: Annotated[float, typer.Option(help="duration of the latency stage")] = 30.0,
    warm_up: Annotated[float, typer.Option(help="seconds at that rate before the latency is measured")] = 5.0,
    baseline_rows: Annotated[int, typer.Option(help="messages for the per-message baseline")] = 2000,
    detectors: Annotated[int, typer.Option(help="detector processes in the consumer group")] = 1,
    repeat: Annotated[int, typer.Option(help="runs; figures are the medians")] = 1,
    json_path: Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")] = None,
) -> None:
    """Measure throughput (end to end and per stage), latency, and the ratio to a per-message baseline."""
    from fraudstream.ops.bench import BenchPlan, medians, run

    logging.basicConfig(level=logging.WARNING)
    plan = BenchPlan(rows, rate, seconds, warm_up, baseline_rows, detectors)
    runs = []
    for number in range(1, repeat + 1):
        with console.status(f"run {number}/{repeat}") as status:
            runs.append(
                run(Settings(), plan, say=lambda message, n=number: status.update(f"run {n}: {message}"))
            )
    result = medians(runs) if repeat > 1 else runs[0]
    _print_bench(result)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2))


def _print_bench(result: dict) -> None:
    table = Table("figure", "value")
    for key in ("e2e_tps", "detector_tps", "sink_tps", "baseline_tps", "ratio_vs_baseline"):
        table.add_row(key, f"{result[key]:,.1f}")
    for key, value in result["latency_ms"].items():
        table.add_row(f"latency {key} (ms)", f"{value:,.1f}")
    table.add_row("rows", f"{result['rows']:,}")
    table.add_row("detectors", str(result["detectors"]))
    Console().print(table)
