"""The Streamlit interface."""
