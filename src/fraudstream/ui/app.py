"""The Streamlit interface's entry point: the login gate, then the pages the person's role may see.

Without logins (``FRAUDSTREAM_UI_AUTH`` off, the plaintext local mode) every page but Users is shown.
"""

from pathlib import Path

import streamlit as st

from fraudstream.config import Settings
from fraudstream.ui.session import login_form, sign_out, signed_in

HERE = Path(__file__).resolve().parent
UPLOAD = st.Page(HERE / "upload_page.py", title="Upload transactions", icon=":material/upload_file:")
RESULTS = st.Page(HERE / "results_page.py", title="Results", icon=":material/monitoring:")
REVIEW = st.Page(HERE / "review_page.py", title="Review queue", icon=":material/fact_check:")
QUALITY = st.Page(HERE / "quality_page.py", title="Live quality", icon=":material/query_stats:")
RULES = st.Page(HERE / "rules_page.py", title="Rules", icon=":material/rule:")
KAFKA = st.Page(HERE / "kafka_page.py", title="Kafka", icon=":material/hub:")
MODELS = st.Page(HERE / "models_page.py", title="Models", icon=":material/model_training:")
USERS = st.Page(HERE / "users_page.py", title="Users", icon=":material/group:")
# A viewer sees scores and charts with personal fields masked; the upload, review and Kafka pages show
# or send raw transactions, so they are for analysts and admins; admins also manage rules, models and
# users.
PAGES = {
    "viewer": [RESULTS, QUALITY],
    "analyst": [UPLOAD, RESULTS, REVIEW, QUALITY, KAFKA],
    "admin": [UPLOAD, RESULTS, REVIEW, QUALITY, RULES, MODELS, KAFKA, USERS],
}

settings = Settings()
st.set_page_config(page_title="fraudstream", page_icon=":credit_card:", layout="wide")
pages = [UPLOAD, RESULTS, REVIEW, QUALITY, RULES, MODELS, KAFKA]
if settings.ui_auth:
    user = signed_in(settings)
    if user is None:
        login_form(settings)
        st.stop()
    pages = PAGES[user.role]
    st.sidebar.caption(f"Signed in as **{user.name}** ({user.role})")
    if st.sidebar.button("Log out"):
        sign_out()
        st.rerun()
st.navigation(pages).run()
