"""The `fraudstream` command: one subcommand per component. Thin: parsing and printing only."""

from __future__ import annotations

import getpass
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from fraudstream.config import Settings

app = typer.Typer(
    help="Real-time card-fraud detection on Kafka, CatBoost and PostgreSQL.", no_args_is_help=True
)
console = Console(stderr=True, soft_wrap=True)
THRESHOLD_HELP = "fraud_flag = score > threshold (default: the model's own) [env FRAUDSTREAM_THRESHOLD]"


def _settings(**overrides: object) -> Settings:
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(message)}")
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
    console.print(f"[green]up[/]: Kafka {stack.kafka.bootstrap_servers}, PostgreSQL {stack.postgres.address}")


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
    for name, service in report["services"].items():
        state = "[green]ready[/]" if service["ready"] else "[yellow]not ready[/]"
        partitions = service.get("assigned_partitions")
        age = service.get("last_batch_age_s")
        table.add_row(
            name,
            state,
            service["detail"] if partitions is None else f"partitions {partitions}, last batch {age} s ago",
        )
    Console().print(table)


def _mark(ok: bool) -> str:
    return "[green]healthy[/]" if ok else "[red]unhealthy[/]"


@app.command()
def send(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV in the input format")],
    rate: Annotated[
        float | None, typer.Option(help="messages per second (default: as fast as possible)")
    ] = None,
) -> None:
    """Send each row of FILE to the transactions topic with a fresh transaction_id.

    FILE is checked whole first, as an upload in the UI is: a bad file is refused, nothing is sent.
    """
    from fraudstream.contracts.schema import InputFormatError
    from fraudstream.contracts.upload import read_transactions
    from fraudstream.pipeline.producer import TransactionProducer

    try:
        frame = read_transactions(file)
    except InputFormatError as error:
        raise _fail(f"{file}: {error}; nothing was sent") from error
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
    threshold: Annotated[float | None, typer.Option(help=THRESHOLD_HELP)] = None,
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
    """Write the scoring topic into fraud_scores and the labels topic into fraud_labels (idempotent)."""
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
        Path, typer.Argument(exists=True, dir_okay=False, help="labelled CSV(.gz) with `target`")
    ],
    out: Annotated[Path, typer.Option(help="model directory to write")] = Path("artifacts/model"),
    compare_with: Annotated[
        Path | None,
        typer.Option(exists=True, help="another model (.cbm or dir) whose validation the report adds"),
    ] = None,
) -> None:
    """Train the CatBoost model on time-ordered data, validating on the latest part of the period."""
    from fraudstream.logs import setup_logging
    from fraudstream.ml.training import train_model

    setup_logging("train")
    report = train_model(data, out, compare_with=compare_with)
    console.print_json(data=report)


@app.command()
def score(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV in the input format")],
    out: Annotated[Path, typer.Option(help="CSV to write: score,fraud_flag per input row")],
    model: Annotated[Path | None, typer.Option(help="CatBoost .cbm or model dir")] = None,
    threshold: Annotated[float | None, typer.Option(help=THRESHOLD_HELP)] = None,
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


labels_app = typer.Typer(help="Decisions on transactions: import late labels, export training data.")
app.add_typer(labels_app, name="labels")


@labels_app.command("import")
def labels_import(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV: transaction_id,label[,at,source,note]")
    ],
    author: Annotated[str, typer.Option(help="who imports the labels (default: the OS user)")] = "",
    source: Annotated[str, typer.Option(help="source of rows without one")] = "chargeback",
) -> None:
    """Publish every row of FILE to the labels topic; a file with a bad row is refused whole."""
    from confluent_kafka import KafkaException

    from fraudstream.contracts.labels import Defaults, LabelFileError, read_label_file
    from fraudstream.pipeline.labels import publish_labels

    try:
        defaults = Defaults(source, author or _os_user(), datetime.now(UTC))
        labels = read_label_file(file.read_text(), defaults)
    except (LabelFileError, UnicodeDecodeError) as error:
        raise _fail(f"{file}: {error}") from error
    settings = Settings()
    with _progress() as progress:
        task = progress.add_task("sending", total=len(labels))
        try:
            sent = publish_labels(settings, labels, lambda done, _: progress.update(task, completed=done))
        except KafkaException as error:
            raise _fail(
                f"Kafka did not acknowledge the labels: {error}; importing again is harmless"
            ) from error
    console.print(f"sent {sent} label(s) to {settings.topic_labels}")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return f"uid-{os.getuid()}"


@labels_app.command("export")
def labels_export(
    out: Annotated[Path, typer.Argument(dir_okay=False, help="CSV to write (input columns + target)")],
    since: Annotated[datetime, typer.Option(help="labelled at or after (UTC when no zone)")] = datetime(
        1970, 1, 1
    ),
) -> None:
    """Write the labelled transactions with their input, in the training format, for retraining."""
    import asyncpg

    from fraudstream.pipeline.label_export import export_labels

    moment = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    try:
        report = export_labels(Settings(), moment, out)
    except (OSError, asyncpg.PostgresError) as error:
        raise _fail(f"export failed: {error}") from error
    console.print(f"wrote {report.written} labelled transaction(s) ({report.frauds} fraud) to {out}")
    if report.skipped:
        console.print(
            f"[yellow]skipped {len(report.skipped)}[/] labelled transaction(s) whose input is not stored,"
            f" e.g. {', '.join(report.skipped[:3])}"
        )


def _print_bench(result: dict) -> None:
    table = Table("figure", "value")
    for key in ("e2e_tps", "detector_tps", "sink_tps", "baseline_tps", "ratio_vs_baseline"):
        table.add_row(key, f"{result[key]:,.1f}")
    for key, value in result["latency_ms"].items():
        table.add_row(f"latency {key} (ms)", f"{value:,.1f}")
    table.add_row("rows", f"{result['rows']:,}")
    table.add_row("detectors", str(result["detectors"]))
    Console().print(table)
