"""Logins and roles in the interface (FRAUDSTREAM_UI_AUTH on): the app's gate under AppTest, on the real
PostgreSQL of the session's stack."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest
from streamlit.testing.v1 import AppTest

from fraudstream.config import Settings
from fraudstream.ui import accounts
from fraudstream.ui.tables import MASK
from tests.ui.conftest import RUN_TIMEOUT_S, UI_DIR

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
HOLDER = {"name_1": "Jennifer", "name_2": "Banks", "street": "561 Perry Cove", "amount": 999.5}


@pytest.fixture
def auth_env(stack_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FRAUDSTREAM_UI_AUTH", "true")
    return stack_env


def new_user(settings: Settings, role: str) -> str:
    name = f"{role}-{uuid.uuid4().hex[:8]}"
    accounts.run(settings.pg_dsn, accounts.add_user, name, PASSWORD, role, "test")
    return name


def log_in(name: str, password: str) -> AppTest:
    app = AppTest.from_file(str(UI_DIR / "app.py"), default_timeout=RUN_TIMEOUT_S).run()
    app.text_input(key="login_name").input(name)
    app.text_input(key="login_password").input(password)
    return app.button[0].click().run()


def test_the_app_shows_only_the_login_form_before_a_login(auth_env):
    app = AppTest.from_file(str(UI_DIR / "app.py"), default_timeout=RUN_TIMEOUT_S).run()

    assert not app.exception
    assert [field.label for field in app.text_input] == ["User name", "Password"]
    assert [title.value for title in app.title] == ["fraudstream"]


def test_a_wrong_password_is_refused(auth_env):
    name = new_user(auth_env, "analyst")

    app = log_in(name, "not the password at all")

    assert [error.value for error in app.error] == ["wrong user name or password"]
    assert "user" not in app.session_state
    assert log_in("nobody-by-that-name", PASSWORD).error[0].value == "wrong user name or password"


def test_logins_are_refused_after_five_failures_even_with_the_right_password(auth_env):
    name = new_user(auth_env, "analyst")
    for _ in range(accounts.MAX_FAILURES):
        assert log_in(name, "wrong password!").error[0].value == "wrong user name or password"

    app = log_in(name, PASSWORD)

    assert app.error[0].value.startswith(f"too many failed logins for {name}")
    assert "user" not in app.session_state


def test_a_login_signs_in_with_the_pages_of_the_role(auth_env):
    analyst = log_in(new_user(auth_env, "analyst"), PASSWORD)
    viewer = log_in(new_user(auth_env, "viewer"), PASSWORD)

    assert not analyst.exception and not analyst.error
    assert analyst.session_state["user"].role == "analyst"
    assert analyst.session_state["analyst"] == analyst.session_state["user"].name
    assert [title.value for title in analyst.title] == ["Upload transactions"]
    assert [title.value for title in viewer.title] == ["Results"]


def test_an_idle_session_expires(auth_env, monkeypatch):
    app = log_in(new_user(auth_env, "viewer"), PASSWORD)
    app.session_state["last_seen"] = 0.0  # idle since 1970

    app.run()

    assert "user" not in app.session_state
    assert [info.value for info in app.info] == ["Your session expired; please log in again."]


def insert_flagged(settings: Settings) -> str:
    """A flagged transaction with a card holder's name and street, scored now (so the newest)."""
    transaction_id = str(uuid.uuid4())

    async def insert() -> None:
        connection = await asyncpg.connect(settings.pg_dsn)
        try:
            await connection.execute(
                "INSERT INTO fraud_scores (transaction_id, score, fraud_flag, transaction)"
                " VALUES ($1, 0.99, 1, $2::jsonb)",
                transaction_id,
                json.dumps(HOLDER),
            )
        finally:
            await connection.close()

    asyncio.run(insert())
    return transaction_id


def shown_fields(app: AppTest) -> dict[str, str]:
    [show] = [button for button in app.button if button.label == "Show results"]
    show.click().run()
    [fields] = app.table
    frame = fields.value
    return dict(zip(frame["field"], frame["value"], strict=True))


@pytest.mark.parametrize(("role", "masked"), [("viewer", True), ("analyst", False), ("admin", False)])
def test_only_analysts_and_admins_see_card_holders_names(auth_env, role, masked):
    insert_flagged(auth_env)
    app = log_in(new_user(auth_env, role), PASSWORD)
    if role != "viewer":
        app.switch_page(str(UI_DIR / "results_page.py")).run()

    fields = shown_fields(app)

    personal = {key: fields[key] for key in ("name_1", "name_2", "street")}
    if masked:
        assert personal == dict.fromkeys(personal, MASK)
    else:
        assert personal == {key: HOLDER[key] for key in personal}
    assert fields["amount"] == "999.5"


def users_page(user: accounts.User) -> AppTest:
    app = AppTest.from_file(str(UI_DIR / "users_page.py"), default_timeout=RUN_TIMEOUT_S)
    app.session_state["user"] = user
    return app.run()


def test_only_an_admin_may_open_the_users_page(auth_env):
    app = users_page(accounts.User(new_user(auth_env, "analyst"), "analyst"))

    assert [error.value for error in app.error] == ["Only an admin may manage users."]
    assert not app.dataframe and not app.text_input


def test_an_admin_adds_a_user_and_the_audit_names_the_admin(auth_env):
    admin = new_user(auth_env, "admin")
    added = f"added-{uuid.uuid4().hex[:8]}"
    app = users_page(accounts.User(admin, "admin"))

    app.text_input[0].input(added)
    app.text_input[1].input(PASSWORD)
    app.selectbox[0].select("analyst")
    [submit] = [button for button in app.button if button.label == "Add"]
    submit.click().run()

    assert [success.value for success in app.success] == [f"added {added} as analyst"]
    assert accounts.run(auth_env.pg_dsn, accounts.login, added, PASSWORD) == accounts.User(added, "analyst")
    trail = app.dataframe[-1].value
    assert trail.loc[trail["subject"] == added, ["actor", "action"]].to_numpy().tolist() == [
        [admin, "user added"]
    ]
