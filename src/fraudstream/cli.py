"""The `fraudstream` command: one subcommand per component. Thin: parsing and printing only."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from fraudstream.config import Settings

app = typer.Typer(
    help="Real-time card-fraud detection on Kafka, CatBoost and PostgreSQL.", no_args_is_help=True
)
console = Console(stderr=True, soft_wrap=True)


def _settings(**overrides: object) -> Settings:
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=1)


SecureOption = Annotated[
    bool,
    typer.Option(
        "--secure", help="the local stack secured: TLS, SCRAM passwords and ACLs (see README, Security)"
    ),
]


def _local_settings(secure: bool, principal: str) -> Settings:
    """Settings(); with ``secure``, connecting to the secured local stack as ``principal``
    ("admin" or a service), with the credentials kept under the data directory."""
    settings = Settings()
    if not secure:
        return settings
    from fraudstream.infra.security import LocalSecurity

    security = LocalSecurity(settings.data_dir)
    if not security.secrets_dir.exists():
        raise _fail(f"no secured stack in {settings.data_dir}: start one with `fraudstream up --secure`")
    if principal == "admin":
        return security.admin_settings(settings)
    return security.service_settings(settings, principal)


@app.command()
def up(secure: SecureOption = False) -> None:
    """Start PostgreSQL and Kafka (idempotent), apply migrations, create topics; wait until healthy."""
    from fraudstream.infra.process import InfraError
    from fraudstream.infra.stack import LocalStack

    logging.basicConfig(level=logging.WARNING)
    try:
        stack = LocalStack.from_settings(Settings(), secure=secure)
        with console.status("starting") as status:
            stack.up(step=lambda message: status.update(message))
    except InfraError as error:
        raise _fail(str(error)) from error
    console.print(f"[green]up[/]: Kafka {stack.kafka.bootstrap_servers}, PostgreSQL {stack.postgres.address}")


users_app = typer.Typer(help="Accounts of the interface (its logins).", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="the login name")],
    role: Annotated[str, typer.Option(help="viewer, analyst or admin")],
    secure: SecureOption = False,
) -> None:
    """Add an account. The password is asked twice on a terminal, else read from the first line of stdin;
    never an argument (it would show in the shell history and the process list)."""
    import getpass
    import sys

    from fraudstream.ui import accounts

    if sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    settings = _local_settings(secure, "admin")
    try:
        accounts.run(settings.pg_dsn, accounts.add_user, name, password, role, f"cli:{getpass.getuser()}")
    except accounts.AccountError as error:
        raise _fail(f"{error}; no account was added") from error
    console.print(f"added {name} as {role}")


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
    applied = asyncio.run(
        apply_migrations(settings.pg_dsn, reader=settings.pg_reader, writer=settings.pg_writer)
    )
    console.print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none needed'}")


@app.command()
def topics() -> None:
    """Create the Kafka topics that are missing (docker-compose runs this once)."""
    from fraudstream.infra.topics import ensure_topics

    created = ensure_topics(Settings())
    console.print(f"created {len(created)} topic(s): {', '.join(created) or 'all existed'}")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False, secure: SecureOption = False
) -> None:
    """Health of every component; exits 0 only when all are healthy."""
    from fraudstream.ops.status import collect

    report = collect(_local_settings(secure, "admin"))
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
    secure: SecureOption = False,
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
        report = TransactionProducer(_local_settings(secure, "producer")).send(
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
    secure: SecureOption = False,
) -> None:
    """Start everything (infrastructure, detector, sink, UI) and stop it all on Ctrl-C."""
    from fraudstream.infra.process import InfraError
    from fraudstream.ops.supervisor import run_system

    try:
        run_system(Settings(), console, keep_infra=keep_infra, secure=secure)
    except InfraError as error:
        raise _fail(str(error)) from error


@app.command()
def train(
    data: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="labelled CSV(.gz) with `target`")
    ],
    out: Annotated[Path, typer.Option(help="model directory to write")] = Path("artifacts/model"),
) -> None:
    """Train the CatBoost model on time-ordered data, validating on the latest part of the period."""
    from fraudstream.logs import setup_logging
    from fraudstream.ml.training import train_model

    setup_logging("train")
    report = train_model(data, out)
    console.print_json(data=report)


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
