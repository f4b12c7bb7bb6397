"""The Streamlit interface's entry point: four pages, each a script next to this one."""

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
        st.Page(HERE / "kafka_page.py", title="Kafka", icon=":material/hub:"),
        st.Page(HERE / "models_page.py", title="Models", icon=":material/model_training:"),
    ]
)
page.run()
