"""The live-quality page: against the session's real PostgreSQL, and with no database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest

from fraudstream.pipeline.quality import load_quality
from fraudstream.ui.queries import read
from tests.helpers import execute, input_rows, insert_score, labels_of, wait_for


def test_with_the_database_down_the_page_says_so(page, nothing_env):
    app = page("quality_page.py").run()

    assert not app.exception
    assert "unavailable" in app.error[0].value


@pytest.mark.integration
def test_the_page_shows_todays_figures_what_is_estimated_and_the_charts(page, stack_env):
    flagged = insert_score(stack_env, 0.9, 1, input_rows(1, seed=41)[0])
    execute(
        stack_env,
        "INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at)"
        " VALUES ($1, $2, 1, 'analyst', 'ann', now())",
        (uuid.uuid4(), flagged),
    )
    today = datetime.now(UTC).date()
    window = read(stack_env, lambda c: load_quality(c, today, today, stack_env.alert_budget)).window

    app = page("quality_page.py").run()

    assert not app.exception and not app.error
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Alerts raised"] == f"{window['alerts']:,}"
    assert metrics["Reviewed / confirmed"] == f"{window['reviewed']:,} / {window['confirmed']:,}"
    assert metrics["Precision (estimated)"] == f"{window['precision']:.1%}"
    assert f"Card precision@{stack_env.alert_budget}" in metrics
    assert f"Estimated from {window['labelled']:,} labelled transaction(s)" in app.caption[0].value
    specs = [chart.proto.spec for chart in app.get("vega_lite_chart")]
    assert len(specs) == 2 and '"budget"' in specs[0] and '"card_precision_at_k"' in specs[1]
    assert app.dataframe[0].value["alerts"].iloc[-1] == window["alerts"]


@pytest.mark.integration
def test_a_chargeback_file_imported_from_the_cli_updates_the_page(page, stack_env, services, tmp_path):
    flagged = insert_score(stack_env, 0.92, 1, input_rows(1, seed=43)[0])
    app = page("quality_page.py").run()
    before = confirmed_and_reviewed(app)
    file = tmp_path / "chargebacks.csv"
    file.write_text(f"transaction_id,label\n{flagged},1\n")

    imported = subprocess.run(
        [sys.executable, "-m", "fraudstream", "labels", "import", str(file)],
        env={**os.environ, **stack_env.environment()},
        capture_output=True,
        text=True,
    )

    assert imported.returncode == 0, imported.stderr
    wait_for(lambda: labels_of(stack_env, flagged), 30, "the chargeback", services["sink"])
    app.button[0].click().run()  # Refresh
    assert confirmed_and_reviewed(app) == (before[0] + 1, before[1] + 1)


def confirmed_and_reviewed(app) -> tuple[int, int]:
    [value] = [metric.value for metric in app.metric if metric.label == "Reviewed / confirmed"]
    reviewed, confirmed = (int(number.replace(",", "")) for number in value.split(" / "))
    return confirmed, reviewed


@pytest.mark.integration
def test_days_over_the_alert_budget_are_counted(page, stack_env, monkeypatch):
    monkeypatch.setenv("FRAUDSTREAM_ALERT_BUDGET", "1")
    for seed in (44, 45):
        insert_score(stack_env, 0.9, 1, input_rows(1, seed=seed)[0])

    app = page("quality_page.py").run()

    [alerts_per_day] = [metric for metric in app.metric if metric.label == "Alerts per day"]
    assert alerts_per_day.proto.delta == "1 day(s) over the budget of 1"
    assert "Card precision@1" in [metric.label for metric in app.metric]
