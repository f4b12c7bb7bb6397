"""The review queue page: against the session's real stack (the sink writes the labels), and with nothing."""

from __future__ import annotations

import uuid

import pytest
from streamlit.testing.v1 import AppTest

from fraudstream.ui.review import QUEUE_LIMIT, WAITING_CAP
from tests.helpers import add_flagged, input_rows, insert_score, labels_of, wait_for


def flagged_in_category(settings, category: str, scores: list[float]) -> list[str]:
    """Flagged transactions of a category of their own, scored now; their ids."""
    rows = input_rows(len(scores), seed=31)
    return [
        str(insert_score(settings, score, 1, {**row, "cat_id": category}))
        for score, row in zip(scores, rows, strict=True)
    ]


def queue_ids(app: AppTest) -> list[str]:
    return app.dataframe[0].value["transaction id"].tolist()


def queue_picked(page, category: str, picked: list[str]) -> AppTest:
    """The review page filtered to ``category``, Ann Analyst signed, ``picked`` selected in the queue."""
    app = page("review_page.py").run()
    app.multiselect(key="categories").set_value([category]).run()
    app.sidebar.text_input(key="analyst").input("Ann Analyst").run()
    app.multiselect(key="queue_selection").set_value(picked).run()
    return app


def test_with_the_database_down_the_page_says_so(page, nothing_env):
    app = page("review_page.py").run()

    assert not app.exception
    assert "unavailable" in app.error[0].value


def test_a_search_for_something_that_is_not_a_transaction_id_says_so(page, nothing_env):
    app = page("review_page.py").run()
    app.text_input(key="search").input("12345").run()

    assert not app.exception
    assert app.error[0].value.startswith("'12345' is not a transaction id: transaction ids are UUIDs")


@pytest.mark.integration
def test_an_analyst_marks_two_selected_transactions_fraud_and_they_leave_the_queue(page, stack_env, services):
    category = f"review_{uuid.uuid4().hex[:6]}"
    low, high = flagged_in_category(stack_env, category, [0.81, 0.97])
    app = page("review_page.py").run()
    app.multiselect(key="categories").set_value([category]).run()
    app.radio(key="order").set_value("score").run()
    assert queue_ids(app) == [high, low]
    assert app.dataframe[0].value["category"].tolist() == [category, category]
    assert app.button(key="mark-1-queue").disabled  # no analyst, no selection

    app.sidebar.text_input(key="analyst").input("Ann Analyst").run()
    app.multiselect(key="queue_selection").set_value([high, low]).run()
    assert app.button(key="mark-1-queue").label == "Mark fraud (2)"
    app.text_input(key="note-queue").input("same card, two shops").run()
    app.button(key="mark-1-queue").click().run()

    assert not app.exception and not app.error
    assert queue_ids(app) == []
    decisions = app.dataframe[1].value
    assert set(decisions["transaction id"]) == {high, low}
    assert set(decisions["decision"]) == {"fraud (Ann Analyst)"}
    for transaction_id in (high, low):
        wait_for(
            lambda t=transaction_id: labels_of(stack_env, uuid.UUID(t)), 30, "the labels", services["sink"]
        )
        assert labels_of(stack_env, uuid.UUID(transaction_id)) == [
            {"label": 1, "source": "analyst", "author": "Ann Analyst", "note": "same card, two shops"}
        ]
    app.run()
    assert all(state.startswith("recorded ") for state in app.dataframe[1].value["state"])
    assert queue_ids(app) == []


@pytest.mark.integration
def test_the_waiting_count_is_exact_up_to_its_cap_and_more_than_the_cap_beyond(page, own_database_env):
    def shown(app: AppTest) -> str:
        return app.subheader[0].value.removeprefix(f"Waiting for a decision: the first {QUEUE_LIMIT} of ")

    add_flagged(own_database_env, WAITING_CAP - 1, "a")
    app = page("review_page.py").run()
    assert shown(app) == f"{WAITING_CAP - 1:,}"
    assert len(queue_ids(app)) == QUEUE_LIMIT

    add_flagged(own_database_env, 1, "a")
    assert shown(app.run()) == f"{WAITING_CAP:,}"

    add_flagged(own_database_env, 1, "a")
    assert shown(app.run()) == f"more than {WAITING_CAP:,}"
    app.multiselect(key="categories").set_value(["a"]).run()
    app.radio(key="order").set_value("score").run()
    assert shown(app) == f"more than {WAITING_CAP:,}"


@pytest.mark.integration
def test_a_search_shows_the_transaction_with_its_decision_history(page, stack_env, services):
    [transaction_id] = flagged_in_category(stack_env, "search_test", [0.9])
    app = page("review_page.py").run()
    app.sidebar.text_input(key="analyst").input("Bob").run()
    app.text_input(key="search").input(transaction_id).run()
    assert app.metric[0].value == "0.900"
    app.button(key="mark-0-search").click().run()

    wait_for(lambda: labels_of(stack_env, uuid.UUID(transaction_id)), 30, "the label", services["sink"])
    app.run()
    assert any("Decision: **legitimate (Bob)**" in markdown.value for markdown in app.markdown)
    assert app.dataframe[0].value[["label", "author"]].values.tolist() == [[0, "Bob"]]


@pytest.mark.integration
def test_a_search_for_an_unknown_transaction_says_no_score_yet(page, stack_env):
    app = page("review_page.py").run()
    app.text_input(key="search").input(str(uuid.uuid4())).run()

    assert not app.exception
    assert app.info[0].value == "No score for this transaction yet."


@pytest.mark.integration
def test_a_rerun_never_writes_the_selection_back_to_the_browser(page, stack_env):
    """A rerun (a newer flagged transaction arrives, the analyst types their name) leaves the pick as the
    analyst made it. A value written back makes the browser clear the text the analyst is typing in the
    widget to find a transaction, and the click meant for it lands on another row."""
    category = f"rerun_{uuid.uuid4().hex[:6]}"
    picked, _ = flagged_in_category(stack_env, category, [0.9, 0.8])
    app = page("review_page.py").run()
    app.multiselect(key="categories").set_value([category]).run()
    app.multiselect(key="queue_selection").set_value([picked]).run()

    [newer] = flagged_in_category(stack_env, category, [0.95])
    app.sidebar.text_input(key="analyst").input("Ann Analyst").run()

    assert queue_ids(app)[0] == newer
    selection = app.multiselect(key="queue_selection")
    assert selection.value == [picked] and not selection.proto.set_value
    assert app.button(key="mark-1-queue").label == "Mark fraud"


@pytest.mark.integration
def test_a_decision_applies_to_the_selection_sent_with_the_click(page, stack_env, services):
    """The analyst takes one transaction out of the selection and clicks before the page is redrawn: the
    decision is for what the selection holds at the click, not for what the buttons were drawn with."""
    category = f"click_{uuid.uuid4().hex[:6]}"
    kept, dropped = flagged_in_category(stack_env, category, [0.9, 0.8])
    app = queue_picked(page, category, [kept, dropped])
    assert app.button(key="mark-1-queue").label == "Mark fraud (2)"

    app.multiselect(key="queue_selection").set_value([kept])
    app.button(key="mark-1-queue").click().run()

    assert not app.exception and not app.error
    assert app.dataframe[1].value["transaction id"].tolist() == [kept]
    assert queue_ids(app) == [dropped]
    wait_for(lambda: labels_of(stack_env, uuid.UUID(kept)), 30, "the label", services["sink"])
    assert labels_of(stack_env, uuid.UUID(dropped)) == []  # published with the kept one's, in one flush


@pytest.mark.integration
def test_a_picked_transaction_decided_elsewhere_leaves_the_selection_with_a_note(page, stack_env, services):
    category = f"elsewhere_{uuid.uuid4().hex[:6]}"
    first, second = flagged_in_category(stack_env, category, [0.9, 0.8])
    app = queue_picked(page, category, [first, second])

    app.text_input(key="search").input(second).run()
    app.button(key="mark-0-search").click().run()

    assert app.multiselect(key="queue_selection").value == [first]
    assert (
        app.info[0].value == f"Left the queue and your selection (decided, or outside the filters): {second}"
    )
    wait_for(lambda: labels_of(stack_env, uuid.UUID(second)), 30, "the label", services["sink"])
