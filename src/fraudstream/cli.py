"""The `fraudstream` command: one subcommand per component. Thin: parsing and printing only."""

from __future__ import annotations

import getpass
import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from fraudstream.config import Settings

if TYPE_CHECKING:  # imported lazily where used, so that each command loads only what it needs
    from fraudstream.ml.registry import Registry
    from fraudstream.rules.backtest import BacktestReport
    from fraudstream.rules.rule import Rule
    from fraudstream.rules.ruleset import RuleSet

T = TypeVar("T")

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


SecureOption = Annotated[
    bool,
    typer.Option(
        "--secure", help="the local stack secured: TLS, SCRAM passwords and ACLs (see README, Security)"
    ),
]


BrokersOption = Annotated[
    int | None,
    typer.Option(
        "--brokers",
        min=1,
        help="Kafka nodes of the local stack; 3: a replicated cluster "
        "[env FRAUDSTREAM_KAFKA_BROKERS, default 1]",
    ),
]


def _cluster_settings(brokers: int | None) -> Settings:
    """Settings(), for a local cluster of ``brokers`` nodes when given (``--brokers``)."""
    return Settings() if brokers is None else Settings(kafka_brokers=brokers)


def _local_settings(secure: bool, principal: str, brokers: int | None = None) -> Settings:
    """Settings(); with ``secure``, connecting to the secured local stack as ``principal``
    ("admin" or a service), with the credentials kept under the data directory."""
    settings = _cluster_settings(brokers)
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
def up(secure: SecureOption = False, brokers: BrokersOption = None) -> None:
    """Start PostgreSQL and Kafka (idempotent), apply migrations, create topics; wait until healthy."""
    from fraudstream.infra.process import InfraError
    from fraudstream.infra.stack import LocalStack

    logging.basicConfig(level=logging.WARNING)
    try:
        stack = LocalStack.from_settings(_cluster_settings(brokers), secure=secure)
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
    """Stop the local Kafka (one broker or a cluster) and PostgreSQL; their data stays under the data dir."""
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
        apply_migrations(
            settings.pg_dsn,
            reader=settings.pg_reader,
            writer=settings.pg_writer,
            retention_days=settings.retention_days,
        )
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
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    secure: SecureOption = False,
    brokers: BrokersOption = None,
) -> None:
    """Health of every component (each broker, each partition's leader and in-sync replicas); exits 0
    only when all are healthy."""
    from fraudstream.ops.status import collect

    report = collect(_local_settings(secure, "admin", brokers))
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_status(report)
    raise typer.Exit(code=0 if report["healthy"] else 1)


def _print_status(report: dict) -> None:
    table = Table("component", "health", "detail")
    kafka, postgres = report["kafka"], report["postgres"]
    brokers = kafka.get("brokers", [])
    summary = f"{len(brokers)} of {kafka.get('expected_brokers')} broker(s) up"
    table.add_row("kafka", _mark(kafka["healthy"]), kafka.get("error", summary))
    for broker in brokers:
        role = ", controller" if broker["controller"] else ""
        table.add_row(f"  broker {broker['id']}", "", f"{broker['address']}{role}")
    for name, topic in kafka.get("topics", {}).items():
        table.add_row(f"  topic {name}", _mark(topic["ok"]), _partitions_state(topic))
    for group, lag in kafka.get("consumer_lag", {}).items():
        table.add_row(f"  group {group}", "", lag.get("error", f"lag {lag.get('lag')} on {lag['topic']}"))
    detail = postgres.get("error") or _scores_detail(postgres)
    table.add_row("postgres", _mark(postgres["healthy"]), detail)
    mlflow = report["mlflow"]
    table.add_row("mlflow", _mark(mlflow["healthy"]), f"{mlflow['tracking_uri']}: {mlflow['detail']}")
    for name, service in report["services"].items():
        state = "[green]ready[/]" if service["ready"] else "[yellow]not ready[/]"
        partitions = service.get("assigned_partitions")
        age = service.get("last_batch_age_s")
        running = f"partitions {partitions}, last batch {age} s ago"
        detail = service["detail"] if partitions is None else running
        if service.get("champion"):
            detail += f"; champion {service['champion']}, challenger {service.get('challenger') or 'none'}"
        table.add_row(name, state, detail + _rules_state(service.get("rules")))
    Console().print(table)
    for warning in report["warnings"]:
        Console().print(f"[yellow]warning:[/] {warning}")


def _partitions_state(topic: dict) -> str:
    """A topic's partitions as `status` shows them: "3 partitions; 0: leader 1, isr [1, 2, 3]; ..."."""
    leaders = "; ".join(
        f"{number}: leader {state['leader']}, isr {state['isr']}"
        + ("" if state["in_sync"] else f" of {state['replicas']} UNDER-REPLICATED")
        for number, state in topic["leaders"].items()
    )
    return f"{topic['partitions']} partitions" + (f"; {leaders}" if leaders else "")


def _scores_detail(postgres: dict) -> str:
    """ "1,234 rows in fraud_scores, 68 daily partitions 2026-09-30 .. 2026-12-05"."""
    days = postgres["partitions"]
    return (
        f"{postgres['fraud_scores_rows']:,} rows in fraud_scores,"
        f" {days['count']} daily partitions {days['oldest']} .. {days['newest']}"
    )


def _rules_state(rules: dict | None) -> str:
    """The detector's rules as `status` shows them: ", 3 rules enabled (topic offset 41), failed: x v2"."""
    if not rules:
        return ""
    failed = f", failed: {', '.join(rules['failed'])}" if rules["failed"] else ""
    return f", {rules['active']} rules enabled (topic offset {rules['offset']}){failed}"


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
    secure: SecureOption = False,
    brokers: BrokersOption = None,
) -> None:
    """Start everything (infrastructure, detector, sink, UI) and stop it all on Ctrl-C."""
    from fraudstream.infra.process import InfraError
    from fraudstream.ops.supervisor import run_system

    try:
        run_system(_cluster_settings(brokers), console, keep_infra=keep_infra, secure=secure)
    except InfraError as error:
        raise _fail(str(error)) from error


@app.command()
def train(
    data: Annotated[
        Path | None, typer.Argument(exists=True, dir_okay=False, help="labelled CSV(.gz) with `target`")
    ] = None,
    out: Annotated[Path, typer.Option(help="model directory to write")] = Path("artifacts/model"),
    compare_with: Annotated[
        Path | None,
        typer.Option(exists=True, help="another model (.cbm or dir) whose validation the report adds"),
    ] = None,
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
            report = train_model(data, out, compare_with=compare_with)
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
    threshold: Annotated[float | None, typer.Option(help=THRESHOLD_HELP)] = None,
    rules: Annotated[
        str | None,
        typer.Option(help="a rules file (YAML/TOML), or a Kafka topic of rules: adds decision,rules"),
    ] = None,
) -> None:
    """Score FILE offline with the serving code path (same features, scores and decisions as the stream)."""
    from fraudstream.contracts.schema import InputFormatError
    from fraudstream.ml.offline import score_file
    from fraudstream.rules.ruleset import decision_columns

    settings = _settings(model_path=model, threshold=threshold)
    decide = None if rules is None else decision_columns(_ruleset_from(rules, settings))
    try:
        report = score_file(file, out, settings.model_path, settings.threshold, decide=decide)
    except InputFormatError as error:
        raise _fail(str(error)) from error
    console.print_json(data=report)


def _ruleset_from(source: str, settings: Settings) -> RuleSet:
    """The rules of a file if ``source`` is one, else of the Kafka topic named ``source``."""
    from confluent_kafka import KafkaException

    from fraudstream.pipeline.rules_feed import read_rules
    from fraudstream.rules.files import RuleFileError, ruleset_from_file

    try:
        if Path(source).is_file():
            return ruleset_from_file(source)
        return read_rules(settings.model_copy(update={"topic_rules": source}), timeout=15)
    except (RuleFileError, KafkaException) as error:
        raise _fail(escape(str(error))) from error


@app.command()
def bench(
    rows: Annotated[int, typer.Option(help="transactions for the throughput stages")] = 200_000,
    rate: Annotated[
        list[float] | None,
        typer.Option(help="offered rate of the latency and CPU stage, tx/s; repeat it for a curve [1000]"),
    ] = None,
    seconds: Annotated[float, typer.Option(help="duration of the latency stage")] = 30.0,
    warm_up: Annotated[float, typer.Option(help="seconds at that rate before the latency is measured")] = 5.0,
    baseline_rows: Annotated[int, typer.Option(help="messages for the per-message baseline")] = 2000,
    detectors: Annotated[int, typer.Option(help="detector processes in the consumer group")] = 1,
    sinks: Annotated[int, typer.Option(help="sink processes in the consumer group")] = 1,
    brokers: BrokersOption = None,
    repeat: Annotated[int, typer.Option(help="runs; figures are the medians")] = 1,
    json_path: Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")] = None,
    plot: Annotated[
        Path | None, typer.Option(dir_okay=False, help="draw latency and CPU against the rate in this PNG")
    ] = None,
    idle: Annotated[float, typer.Option(help="seconds of the stack's idle CPU measure")] = 10.0,
    peer: Annotated[bool, typer.Option(help="measure the Quix Streams peer (needs `make quix-peer`)")] = True,
    rules: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="a rules file the detectors apply")
    ] = None,
) -> None:
    """Measure throughput (end to end and per stage), latency and CPU at each offered rate, and the
    ratio to a per-message baseline."""
    from fraudstream.ops.bench import BenchPlan, medians, run
    from fraudstream.ops.bench_plot import plot_curve
    from fraudstream.ops.peers.quix import PeerUnavailable

    logging.basicConfig(level=logging.WARNING)
    versions = () if rules is None else tuple(_ruleset_from(str(rules), Settings()).latest.values())
    rates = tuple(sorted(set(rate or [1000.0])))
    if any(value <= 0 for value in rates):
        raise _fail("--rate must be positive")
    plan = BenchPlan(
        rows,
        rates,
        seconds,
        warm_up,
        baseline_rows,
        detectors,
        sinks=sinks,
        rules=versions,
        idle_seconds=idle,
        peer=peer,
    )
    settings = _cluster_settings(brokers)
    runs = []
    for number in range(1, repeat + 1):
        with console.status(f"run {number}/{repeat}") as status:
            try:
                runs.append(
                    run(settings, plan, say=lambda message, n=number: status.update(f"run {n}: {message}"))
                )
            except PeerUnavailable as error:
                raise _fail(str(error)) from error
    result = medians(runs) if repeat > 1 else runs[0]
    _print_bench(result)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2))
    if plot is not None:
        plot_curve(result, plot)


@app.command("bench-rebalance")
def bench_rebalance(
    customers: Annotated[
        list[int] | None,
        typer.Option(
            help="customers in the partition restored; repeat for several [default: 100000, 1000000]"
        ),
    ] = None,
    rows: Annotated[int, typer.Option(help="transactions streamed during the scale-up")] = 60_000,
    rate: Annotated[float, typer.Option(help="their rate, tx/s")] = 2_000.0,
    json_path: Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")] = None,
) -> None:
    """Measure a detector rebalance: one partition's state restored, and the pause of a scale-up."""
    from fraudstream.ops.rebalance_bench import RebalancePlan, run

    logging.basicConfig(level=logging.WARNING)
    plan = RebalancePlan(tuple(customers or RebalancePlan.customers), stream_rows=rows, stream_rate=rate)
    with console.status("bench-rebalance") as status:
        result = run(Settings(), plan, say=status.update)
    table = Table("figure", "value")
    for restored in result["restore"]:
        table.add_row(
            f"restore {restored['customers']:,} customers: wall (CPU) s",
            f"{restored['restore_s']:,.2f} ({restored['restore_cpu_s']:,.2f})",
        )
    scale_up = result["scale_up"]
    table.add_row("scale-up: pause of the member keeping partitions (ms)", str(scale_up["first_paused_ms"]))
    table.add_row("scale-up: the joiner restored (customers)", f"{scale_up['second_customers_restored']:,}")
    table.add_row("scale-up: the joiner's restore (ms)", str(scale_up["second_restore_ms"]))
    Console().print(table)
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
    from fraudstream.pipeline.label_export import export_labels
    from fraudstream.pipeline.postgres import DatabaseUnavailable

    moment = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    try:
        report = export_labels(Settings(), moment, out)
    except (OSError, DatabaseUnavailable) as error:
        raise _fail(f"export failed: {error}") from error
    console.print(f"wrote {report.written} labelled transaction(s) ({report.frauds} fraud) to {out}")
    if report.skipped:
        console.print(
            f"[yellow]skipped {len(report.skipped)}[/] labelled transaction(s) whose input is not stored,"
            f" e.g. {', '.join(report.skipped[:3])}"
        )


def _print_bench(result: dict) -> None:
    table = Table("figure", "value")
    table.add_row("enabled rules", str(result["rules"]))
    for key in ("e2e_tps", "detector_tps", "sink_tps", "baseline_tps", "ratio_vs_baseline"):
        table.add_row(key, f"{result[key]:,.1f}")
    for rate, latency in result["latency_ms"].items():
        at = f"at {float(rate):,.0f} tx/s"
        table.add_row(f"reached {at}", f"{result['achieved_tps_at_rate'][rate]:,.1f} tx/s")
        for key, value in latency.items():
            table.add_row(f"latency {key} {at} (ms)", f"{value:,.1f}")
        for part, percentiles in result["latency_parts_ms"][rate].items():
            shown = ", ".join(f"{key} {value:,.1f}" for key, value in percentiles.items())
            table.add_row(f"of it, {part.replace('_', ' ')} {at} (ms)", shown)
        cores = result["cpu_cores_at_rate"][rate]
        table.add_row(f"CPU {at} (cores)", ", ".join(f"{name} {value:.2f}" for name, value in cores.items()))
        table.add_row(f"CPU {at} (ms per tx)", f"{result['cpu_ms_per_tx_at_rate'][rate]:.3f}")
        transactions = result["detector_transactions_per_s_at_rate"][rate]
        per_batch = result["detector_cpu_ms_per_batch_at_rate"][rate]
        table.add_row(f"detector {at}", f"{transactions:,.1f} transactions/s, {per_batch:.2f} CPU ms each")
    idle = ", ".join(f"{name} {value:.3f}" for name, value in result["idle_cpu_cores"].items())
    table.add_row("CPU with no traffic (cores)", idle)
    limits = {key: value for key, value in result["limits"].items() if key != "transport"}
    for key, value in {**result["limits"]["transport"], **limits}.items():
        table.add_row(f"limit: {key}", f"{value:,.1f}")
    for key in ("peer_quixstreams_tps", "peer_quixstreams_max_score_diff"):
        if key in result:
            table.add_row(key, f"{result[key]:,.6g}")
    for key in (
        "peer_quixstreams_latency_ms",
        "peer_quixstreams_cpu_cores",
        "peer_quixstreams_cpu_ms_per_tx",
    ):
        for rate, value in result.get(key, {}).items():
            shown = ", ".join(f"{k} {v:,.2f}" for k, v in value.items()) if isinstance(value, dict) else value
            table.add_row(f"{key} at {float(rate):,.0f} tx/s", str(shown))
    for key, value in result["ratios"].items():
        table.add_row(f"ratio {key}", f"{value:,.3f}")
    table.add_row("rows", f"{result['rows']:,}")
    for key in ("detectors", "sinks", "brokers", "replication_factor"):
        table.add_row(key.replace("_", " "), str(result[key]))
    Console().print(table)


db_app = typer.Typer(
    help="fraud_scores at scale: a demonstration database, and the interface's queries timed on it.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
DemoDatabase = Annotated[
    str,
    typer.Option(help="the demonstration database, on the server of FRAUDSTREAM_PG_*; never the system's"),
]


@db_app.command("fill-demo")
def db_fill_demo(
    rows: Annotated[int, typer.Option(min=1, help="scores to add")] = 10_000_000,
    days: Annotated[int, typer.Option(min=1, help="spread evenly over the last DAYS days (UTC)")] = 60,
    database: DemoDatabase = "fraud_demo",
) -> None:
    """Add ROWS scores, as the sink writes them, and their labels to a database of their own (created
    and migrated if missing), for `db explain`."""
    import asyncio

    from fraudstream.ops.scores_demo import fill

    settings = Settings()
    with _progress() as progress:
        task = progress.add_task(f"filling {database}", total=days)
        try:
            filled = asyncio.run(
                fill(settings, rows, days, database, lambda done, _: progress.update(task, completed=done))
            )
        except (OSError, ValueError, *asyncpg_errors()) as error:
            raise _fail(f"fill-demo failed: {error}") from error
    console.print(
        f"{database}: added {filled.rows:,} scores over {filled.days} day(s), {filled.labels:,} labels"
    )


@db_app.command("explain")
def db_explain(
    database: DemoDatabase = "fraud_demo",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Time every query of the results, review and quality pages on DATABASE (EXPLAIN ANALYZE)."""
    import asyncio
    import dataclasses

    from fraudstream.ops.query_plans import GOAL_MS, explain_pages
    from fraudstream.ops.scores_demo import demo_settings

    try:
        plans = asyncio.run(
            explain_pages(demo_settings(Settings(), database).pg_dsn, Settings().alert_budget)
        )
    except (OSError, *asyncpg_errors()) as error:
        raise _fail(f"explain failed on {database}: {error}") from error
    if as_json:
        print(json.dumps([dataclasses.asdict(plan) for plan in plans], indent=2))
        return
    table = Table("page", "query", "ms", "planning ms", "rows", "partitions", "scans")
    for plan in plans:
        ms = f"{plan.execution_ms:,.1f}"
        table.add_row(
            plan.page,
            plan.query,
            ms if plan.within_goal else f"[red]{ms}[/]",
            f"{plan.planning_ms:,.1f}",
            f"{plan.rows:,}",
            str(plan.partitions),
            plan.nodes,
        )
    Console().print(table)
    console.print(f"goal: each query under {GOAL_MS:.0f} ms (planning included)")


def asyncpg_errors() -> tuple[type[Exception], ...]:
    """PostgreSQL's errors, as asyncpg raises them (imported when a command needs them)."""
    import asyncpg

    return (asyncpg.PostgresError, asyncpg.InterfaceError)


rules_app = typer.Typer(
    help="Rules beside the model: list, add, enable, disable, backtest.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")

Author = Annotated[str, typer.Option(help="who makes this version [default: the login name]")]
RuleId = Annotated[str, typer.Argument(help="the rule's id")]
Note = Annotated[str, typer.Option(help="why")]
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%d %H:%M"]


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _current_rules(settings: Settings) -> RuleSet:
    from confluent_kafka import KafkaException

    from fraudstream.pipeline.rules_feed import read_rules

    try:
        return read_rules(settings, timeout=15)
    except KafkaException as error:
        raise _fail(escape(f"Kafka at {settings.kafka_bootstrap_servers}: {error}")) from error


def _publish(settings: Settings, versions: list[Rule]) -> None:
    from confluent_kafka import KafkaException

    from fraudstream.pipeline.rules_feed import publish

    for version in versions:
        try:
            publish(settings, version)
        except KafkaException as error:
            raise _fail(escape(f"publishing {version.id} v{version.version} failed: {error}")) from error
        state = "enabled" if version.enabled else "disabled"
        console.print(f"published [bold]{version.id}[/] v{version.version} ({state}, {version.action})")


@rules_app.command("list")
def rules_list() -> None:
    """The rules in force: latest version of each, enabled or not."""
    ruleset = _current_rules(Settings())
    table = Table("id", "v", "status", "action", "name", "author", "since", "expression")
    for rule in ruleset.latest.values():
        status = "[green]enabled[/]" if rule.enabled else "disabled"
        if rule.id in ruleset.invalid:
            status = "[red]invalid[/]"
        since = rule.created_at.strftime("%Y-%m-%d %H:%M")
        table.add_row(
            rule.id,
            str(rule.version),
            status,
            rule.action,
            escape(rule.name),
            rule.author,
            since,
            escape(rule.expression),
        )
    Console().print(table)
    for rule_id, reason in ruleset.invalid.items():
        console.print(f"[red]{rule_id}[/]: not applied: {escape(reason)}")
    for rejected in ruleset.rejected:
        console.print(
            f"offset {rejected.offset} (key {rejected.key!r}) is not a rule: {escape(rejected.reason)}"
        )


@rules_app.command("history")
def rules_history(rule_id: RuleId) -> None:
    """Every version of a rule, oldest first."""
    versions = _current_rules(Settings()).history.get(rule_id)
    if not versions:
        raise _fail(f"no rule {rule_id!r}")
    table = Table("v", "at", "author", "enabled", "action", "name", "expression", "note")
    for rule in versions:
        table.add_row(
            str(rule.version),
            rule.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            rule.author,
            "yes" if rule.enabled else "no",
            rule.action,
            escape(rule.name),
            escape(rule.expression),
            escape(rule.note),
        )
    Console().print(table)


@rules_app.command("names")
def rules_names() -> None:
    """The names a rule may read (input columns, features, score) and their types."""
    from fraudstream.rules.types import names_table

    table = Table("name", "type")
    for name, kind in names_table():
        table.add_row(name, kind)
    Console().print(table)


@rules_app.command("add")
def rules_add(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or TOML rule file")],
    author: Author = "",
) -> None:
    """Publish the rules of FILE: new rules (disabled unless `enabled = true`), or new versions of
    the rules whose `id` they give. All are checked first; if one is refused, none is published."""
    from fraudstream.rules.files import RuleFileError, load_drafts
    from fraudstream.rules.rule import RuleConflict, RuleFieldError
    from fraudstream.rules.ruleset import new_versions
    from fraudstream.rules.syntax import RuleError

    settings = Settings()
    try:
        drafts = load_drafts(file)
        versions = new_versions(_current_rules(settings), drafts, author or _login())
    except (RuleFileError, RuleError, RuleConflict, RuleFieldError) as error:
        raise _fail(escape(f"{error}\nnothing was published")) from error
    _publish(settings, versions)


def _set_enabled(rule_id: str, enabled: bool, author: str, note: str) -> None:
    from fraudstream.rules.rule import with_enabled

    settings = Settings()
    current = _current_rules(settings).get(rule_id)
    if current is None:
        raise _fail(f"no rule {rule_id!r} (see `fraudstream rules list`)")
    if current.enabled == enabled:
        console.print(f"{rule_id} v{current.version} is {'enabled' if enabled else 'disabled'} already")
        return
    _publish(settings, [with_enabled(current, enabled, author or _login(), note)])


@rules_app.command("enable")
def rules_enable(rule_id: RuleId, author: Author = "", note: Note = "") -> None:
    """Enable a rule (a new version): the detectors apply it from their next batch."""
    _set_enabled(rule_id, True, author, note)


@rules_app.command("disable")
def rules_disable(rule_id: RuleId, author: Author = "", note: Note = "") -> None:
    """Disable a rule (a new version; its history stays)."""
    _set_enabled(rule_id, False, author, note)


@rules_app.command("backtest")
def rules_backtest(
    target: Annotated[str, typer.Argument(help="a rule's id, or a YAML/TOML file with one rule")],
    since: Annotated[datetime, typer.Option(formats=DATE_FORMATS, help="start (transaction time)")],
    until: Annotated[
        datetime | None, typer.Option(formats=DATE_FORMATS, help="end, excluded [default: now]")
    ] = None,
) -> None:
    """What a rule would have matched over the stored transactions of a period, per day, beyond the
    model's flags, and its precision on labelled transactions where labels exist."""
    from fraudstream.pipeline.backtest_store import load_backtest_period
    from fraudstream.pipeline.postgres import DatabaseUnavailable
    from fraudstream.rules.backtest import BacktestError, backtest

    settings = Settings()
    rule = _rule_to_backtest(target, settings)
    until = until or datetime.now()
    try:
        with console.status("reading the stored transactions"):
            period = load_backtest_period(settings.pg_dsn, since, until)
        with _progress() as progress:
            task = progress.add_task("replaying", total=len(period.stored))
            report = backtest(
                rule,
                period.stored,
                since,
                until,
                period.labels,
                period.notes,
                progress=lambda done, total: progress.update(task, completed=done),
            )
    except (DatabaseUnavailable, BacktestError) as error:
        raise _fail(escape(str(error))) from error
    _print_backtest(report)


def _rule_to_backtest(target: str, settings: Settings) -> Rule:
    from fraudstream.rules.files import RuleFileError, load_drafts
    from fraudstream.rules.rule import RuleFieldError, version_of

    if not Path(target).is_file():
        rule = _current_rules(settings).get(target)
        if rule is None:
            raise _fail(f"no rule {target!r} and no file {target!r}")
        return rule
    try:
        drafts = load_drafts(target)
    except RuleFileError as error:
        raise _fail(escape(str(error))) from error
    if len(drafts) != 1:
        raise _fail(f"{target} holds {len(drafts)} rules; a backtest takes one")
    try:
        return version_of(drafts[0], None, _login())
    except RuleFieldError as error:
        raise _fail(escape(f"{target}: {error}")) from error


def _print_backtest(report: BacktestReport) -> None:
    rule = report.rule
    console.print(f"[bold]{rule.id}[/] v{rule.version} ({rule.action}): {escape(rule.expression)}")
    days = Table("day", "transactions", "matches", "not flagged by the model")
    for row in report.per_day.itertuples(index=False):
        days.add_row(
            str(row.day.date()), f"{row.transactions:,}", f"{row.matches:,}", f"{row.beyond_model:,}"
        )
    Console().print(days)
    summary = Table("figure", "value")
    summary.add_row("transactions", f"{report.transactions:,}")
    summary.add_row("matches", f"{report.matches:,}")
    summary.add_row("flagged by the model", f"{report.flagged:,}")
    summary.add_row("matches not flagged by the model", f"{report.beyond_model:,}")
    summary.add_row("matches flagged by the model too", f"{report.also_flagged:,}")
    if report.labels is not None:
        labels = report.labels
        precision = "n/a" if labels.precision is None else f"{labels.precision:.1%}"
        summary.add_row("labelled matches", f"{labels.labelled:,}")
        summary.add_row("precision on labelled matches", precision)
        summary.add_row("frauds matched beyond the model", f"{labels.frauds_beyond_model:,}")
    Console().print(summary)
    for note in report.notes:
        console.print(f"note: {escape(note)}")


@rules_app.command("cost")
def rules_cost(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV(.gz) in the input format")],
    rows: Annotated[int, typer.Option(help="rows of FILE to read: history, then the batch")] = 50_000,
    rules: Annotated[int, typer.Option(help="enabled rules")] = 50,
    batch: Annotated[list[int] | None, typer.Option(help="batch sizes [default: 5000 and 20]")] = None,
    repeat: Annotated[int, typer.Option(help="repeats; figures are medians")] = 30,
    model: Annotated[Path | None, typer.Option(help="CatBoost .cbm or model dir")] = None,
) -> None:
    """Measure what N enabled rules cost per batch, against the model's prediction of that batch."""
    import pandas as pd

    from fraudstream.contracts.schema import InputFormatError, coerce
    from fraudstream.ml.model import FraudModel
    from fraudstream.rules.cost import measure_all

    settings = _settings(model_path=model)
    try:
        frame = coerce(pd.read_csv(file, nrows=rows))
    except InputFormatError as error:
        raise _fail(str(error)) from error
    batches = batch or [5000, 20]
    with console.status("measuring"):
        figures = measure_all(FraudModel.load(settings.model_path), frame, rules, batches, repeat)
    table = Table(
        "batch rows", "rules", "rows matched", "features ms", "predict ms", "rules ms", "rules / predict"
    )
    for row in figures:
        table.add_row(
            f"{row['rows']:,.0f}",
            f"{row['rules']:.0f}",
            f"{row['matched_rows']:,.0f}",
            f"{row['features_ms']:.3f}",
            f"{row['predict_ms']:.3f}",
            f"{row['rules_ms']:.3f}",
            f"{row['rules_vs_predict']:.2f}",
        )
    Console().print(table)
