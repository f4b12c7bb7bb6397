"""Users (admins only): accounts and roles, adding one, changing a role, disabling; the audit trail."""

import streamlit as st

from fraudstream.config import Settings
from fraudstream.ui import accounts
from fraudstream.ui.accounts import ROLES, AccountError
from fraudstream.ui.session import USER_KEY

settings = Settings()
st.title("Users")
me = st.session_state.get(USER_KEY)
if me is None or me.role != "admin":
    st.error("Only an admin may manage users.")
    st.stop()


def change(action, *args: object, done: str) -> None:
    """Apply one account change as this admin; say what happened or why not."""
    try:
        accounts.run(settings.pg_reader_dsn, action, *args, me.name)
    except AccountError as error:
        st.error(str(error))
    else:
        st.success(done)


with st.form("add_user", clear_on_submit=True):
    st.subheader("Add a user")
    name = st.text_input("User name")
    password = st.text_input(
        f"Password (at least {accounts.MIN_PASSWORD_LENGTH} characters)", type="password"
    )
    role = st.selectbox("Role", ROLES)
    if st.form_submit_button("Add"):
        change(accounts.add_user, name.strip(), password, role, done=f"added {name} as {role}")

users = accounts.run(settings.pg_reader_dsn, accounts.list_users)
st.subheader("Accounts")
st.dataframe(users, hide_index=True)
if not users.empty:
    chosen, new_role, state = st.columns(3, vertical_alignment="bottom")
    who = chosen.selectbox("User", users["name"], key="chosen_user")
    role = new_role.selectbox("New role", ROLES, key="new_role")
    if new_role.button("Change role", disabled=who == me.name):
        change(accounts.set_role, who, role, done=f"{who} is now {role}")
    disabled = bool(users.loc[users["name"] == who, "disabled"].iloc[0])
    if state.button("Enable" if disabled else "Disable", disabled=who == me.name):
        change(
            accounts.set_disabled, who, not disabled, done=f"{who} {'enabled' if disabled else 'disabled'}"
        )

st.subheader("Audit trail")
st.dataframe(accounts.run(settings.pg_reader_dsn, accounts.recent_audit), hide_index=True)
