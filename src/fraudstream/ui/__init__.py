"""The Streamlit interface: the app, its pages, their queries and the Kafka view.

May import: pipeline, ml, contracts, the foundations and ui itself. Never ops, infra or cli.
"""
