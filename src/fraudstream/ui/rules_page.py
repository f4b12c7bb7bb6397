"""Rules page: the rules beside the model, their history, creating and editing them (each change a new
version on the ``rules`` topic), enabling and disabling them, and a backtest before enabling one."""

from datetime import date, datetime, time, timedelta

import streamlit as st

from fraudstream.config import Settings
from fraudstream.pipeline.backtest_store import load_time_range
from fraudstream.pipeline.postgres import DatabaseUnavailable
from fraudstream.pipeline.rules_feed import read_rules
from fraudstream.rules.backtest import BacktestReport
from fraudstream.rules.rule import ACTIONS, Draft
from fraudstream.rules.syntax import RuleError
from fraudstream.ui import charts
from fraudstream.ui.rules_view import (
    Refused,
    failures,
    history_table,
    publish_draft,
    publish_enabled,
    rules_table,
    run_backtest,
)

settings = Settings()
st.title("Rules")
st.caption(
    "Each transaction's decision: **block** if a block rule matches, else **allow** if an allow rule "
    "matches, else **review** if a review rule matches or the model flags it, else **allow**. "
    f"Rules live in the `{settings.topic_rules}` topic; the detectors apply a change from their next batch."
)
if "analyst" in st.session_state:  # the name outlives the pages that have this widget (Streamlit's way)
    st.session_state["analyst"] = st.session_state["analyst"]
analyst = st.sidebar.text_input("Analyst", key="analyst", help="your name, recorded with each change").strip()


@st.cache_data(ttl=60, show_spinner=False)
def stored_range(dsn: str) -> tuple[datetime, datetime] | None:
    return load_time_range(dsn)


def refused(error: Exception) -> None:
    """A refusal as one message; a rule's pointed message keeps its caret line under the rule."""
    if isinstance(error, RuleError):
        st.error(f"The rule is refused:\n```\n{error}\n```")
    else:
        st.error(str(error))


def notice(message: str) -> None:
    """A message for the next run of the page (which shows the change), then that run."""
    st.session_state["rules_notice"] = message
    st.rerun()


try:  # read once per run, on a consumer closed at once: a change published by the last run is in it
    with st.spinner("reading the rules topic"):
        ruleset = read_rules(settings, timeout=10)
except Refused as error:
    st.error(f"Kafka at {settings.kafka_bootstrap_servers} is unavailable: {error}. Reload once it is back.")
    st.stop()

if "rules_notice" in st.session_state:
    st.success(st.session_state.pop("rules_notice"))
# A slot either way: a name entered must not move what follows (a moved form showed twice until the
# run ended, the old one still on the page).
hint = st.empty()
if not analyst:
    hint.info("Enter your name as **Analyst** in the sidebar to create or change rules.")
table = rules_table(ruleset)
if table.empty:
    st.info("No rule yet: create one below.")
else:
    st.dataframe(table, hide_index=True, column_config={"changed at": st.column_config.DatetimeColumn()})
for rule_id, reason in ruleset.invalid.items():
    st.warning(f"{rule_id} is not applied: {reason}")
for failure in failures(ruleset):
    st.warning(f"{failure}. Fix it and enable it again.")


def draft_form(key: str, draft: Draft | None) -> Draft | None:
    """The fields of a rule; the draft on submit (with the edited rule's id), else None."""
    with st.form(key):
        name = st.text_input("Name", value=draft.name if draft else "", key=f"{key}_name", max_chars=200)
        expression = st.text_area(
            "Expression",
            value=draft.expression if draft else "",
            key=f"{key}_expression",
            placeholder="amount > 500 and cat_id in ['shopping_net', 'misc_net'] and is_night = 1",
            help="see `fraudstream rules names` for the names a rule may read",
        )
        action = st.selectbox(
            "Action", ACTIONS, index=ACTIONS.index(draft.action) if draft else 1, key=f"{key}_action"
        )
        enabled = None if draft else st.checkbox("Enable now (else backtest it first)", key=f"{key}_enabled")
        label = "Save as a new version" if draft else "Create rule"
        if not st.form_submit_button(label, type="primary", disabled=not analyst, key=f"{key}_submit"):
            return None
    if not name.strip() or not expression.strip():
        st.error("A rule needs a name and an expression.")
        return None
    return Draft(
        name=name.strip(),
        expression=expression,
        action=action,
        id=draft.id if draft else None,
        enabled=enabled,
    )


chosen = st.selectbox("Rule", list(ruleset.latest), key="chosen_rule") if ruleset.history else None
create, change, test = st.tabs(["New rule", "Edit, enable, history", "Backtest"])
with create:
    new = draft_form("new_rule", None)
    if new is not None:
        try:
            created = publish_draft(settings, ruleset, new, analyst)
        except Refused as error:
            refused(error)
        else:
            notice(
                f"Created {created.id} v{created.version} ({'enabled' if created.enabled else 'disabled'})."
            )

with change:
    if chosen is None:
        st.caption("No rule to change yet.")
    else:
        rule = ruleset.latest[chosen]
        on, off = st.columns(2)
        wanted = None
        if on.button("Enable", disabled=rule.enabled or not analyst, key="enable_rule"):
            wanted = True
        if off.button("Disable", disabled=not rule.enabled or not analyst, key="disable_rule"):
            wanted = False
        if wanted is not None:
            try:
                changed = publish_enabled(settings, ruleset, chosen, wanted, analyst)
            except Refused as error:
                refused(error)
            else:
                notice(f"{changed.id} v{changed.version}: {'enabled' if wanted else 'disabled'}.")
        edited = draft_form(
            f"edit_{chosen}",
            Draft(id=rule.id, name=rule.name, expression=rule.expression, action=rule.action),
        )
        if edited is not None:
            try:
                saved = publish_draft(settings, ruleset, edited, analyst)
            except Refused as error:
                refused(error)
            else:
                notice(f"Saved {saved.id} v{saved.version}.")
        st.markdown("**History**")
        st.dataframe(history_table(ruleset.history[chosen]), hide_index=True)


def default_period() -> tuple[date, date]:
    """The last 7 days of the stored transactions (their own time), or of today without any."""
    try:
        span = stored_range(settings.pg_reader_dsn)
    except DatabaseUnavailable:
        span = None
    last = span[1].date() if span else date.today()
    return last - timedelta(days=6), last


def show_backtest(report: BacktestReport) -> None:
    transactions, matches, beyond, precision = st.columns(4)
    transactions.metric("Transactions", f"{report.transactions:,}")
    matches.metric("Matches", f"{report.matches:,}")
    beyond.metric("Not flagged by the model", f"{report.beyond_model:,}")
    if report.labels is not None and report.labels.precision is not None:
        precision.metric(
            "Precision (labelled)",
            f"{report.labels.precision:.1%}",
            help=f"{report.labels.frauds:,} frauds among {report.labels.labelled:,} labelled matches; "
            f"{report.labels.frauds_beyond_model:,} of them not flagged by the model",
        )
    else:
        precision.metric("Precision (labelled)", "n/a")
    if report.per_day.empty:
        st.info("No stored transaction in this period.")
    else:
        st.altair_chart(charts.matches_chart(report.per_day))
    for note in report.notes:
        st.caption(note)


with test:
    if chosen is None:
        st.caption("Create a rule to backtest it.")
    else:
        subject = ruleset.latest[chosen]
        st.markdown(f"Backtest of **{subject.id}** v{subject.version}: `{subject.expression}`")
        period = st.date_input(
            "Period (transaction time)",
            value=default_period(),
            min_value=date(1970, 1, 1),
            max_value=date(2100, 1, 1),
            key="backtest_period",
        )
        if st.button("Run backtest", key="run_backtest", disabled=len(period) != 2):
            since = datetime.combine(period[0], time())
            until = datetime.combine(period[1], time()) + timedelta(days=1)
            bar = st.progress(0.0, text="replaying the stored transactions")
            try:
                report = run_backtest(
                    settings, subject, since, until, lambda done, total: bar.progress(done / total)
                )
            except Refused as error:
                refused(error)
            else:
                bar.empty()
                show_backtest(report)
