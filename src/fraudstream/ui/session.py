"""The signed-in person of this browser session: the login form, idle expiry, and what their role may see."""

from __future__ import annotations

import time

import streamlit as st

from fraudstream.config import Settings
from fraudstream.ui import accounts
from fraudstream.ui.accounts import AccountError, User

USER_KEY, SEEN_KEY = "user", "last_seen"
ANALYST_KEY = "analyst"  # the name the review pages record as the author of a label
REVEALING_ROLES = ("analyst", "admin")


def signed_in(settings: Settings) -> User | None:
    """This session's user, unless idle for longer than the settings allow (then signed out)."""
    user: User | None = st.session_state.get(USER_KEY)
    if user is None:
        return None
    if time.time() - st.session_state.get(SEEN_KEY, 0.0) > settings.ui_session_idle_hours * 3600:
        sign_out()
        st.session_state["expired"] = True
        return None
    st.session_state[SEEN_KEY] = time.time()
    return user


def sign_in(user: User) -> None:
    st.session_state[USER_KEY] = user
    st.session_state[ANALYST_KEY] = user.name
    st.session_state[SEEN_KEY] = time.time()


def sign_out() -> None:
    for key in (USER_KEY, ANALYST_KEY, SEEN_KEY):
        st.session_state.pop(key, None)


def login_form(settings: Settings) -> None:
    """The login form; a successful login signs in and reruns the app."""
    st.title("fraudstream")
    if st.session_state.pop("expired", False):
        st.info("Your session expired; please log in again.")
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary")
    if not submitted:
        return
    try:
        user = accounts.run(settings.pg_reader_dsn, accounts.login, name.strip(), password)
    except AccountError as error:
        st.error(str(error))
        return
    except (OSError, accounts.asyncpg.PostgresError) as error:
        st.error(f"the accounts database is unavailable: {error}")
        return
    sign_in(user)
    st.rerun()


def reveals_personal_data() -> bool:
    """Whether this session may see card holders' names and streets: analysts and admins, or anyone when
    the interface has no logins (the plaintext local mode)."""
    if not Settings().ui_auth:
        return True
    user: User | None = st.session_state.get(USER_KEY)
    return user is not None and user.role in REVEALING_ROLES
