"""The Streamlit interface's entry point: its pages, each a script next to this one."""

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="fraudstream", page_icon=":credit_card:", layout="wide")
page = st.navigation(
    [
        st.Page(
            HERE / "upload_page.py", title="Upload transactions", icon=":material/upload_file:", default=True
        ),
        st.Page(HERE / "results_page.py", title="Results", icon=":material/monitoring:"),
        st.Page(HERE / "review_page.py", title="Review queue", icon=":material/fact_check:"),
        st.Page(HERE / "quality_page.py", title="Live quality", icon=":material/query_stats:"),
        st.Page(HERE / "rules_page.py", title="Rules", icon=":material/rule:"),
        st.Page(HERE / "kafka_page.py", title="Kafka", icon=":material/hub:"),
    ]
)
page.run()
