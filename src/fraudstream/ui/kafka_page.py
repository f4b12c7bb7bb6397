"""Kafka view (in place of the seed's Kafka UI container): topics, consumer groups, last messages."""

import streamlit as st

from fraudstream.config import Settings
from fraudstream.ui.kafka_view import KafkaUnavailable, last_messages, overview

settings = Settings()
st.title("Kafka")
st.caption(f"Brokers: `{settings.kafka_bootstrap_servers}`")
st.button("Refresh")

try:
    cluster = overview(settings)
except KafkaUnavailable as error:
    st.error(str(error))
    st.stop()

st.metric("Brokers", cluster.brokers)
st.subheader("Topics")
st.dataframe(cluster.topics, hide_index=True)
st.subheader("Consumer groups")
if cluster.groups.empty:
    st.info("No consumer group has committed offsets yet.")
else:
    st.dataframe(cluster.groups, hide_index=True)

st.subheader("Last messages")
topic_column, count_column = st.columns([3, 1])
names = cluster.topics["topic"].tolist()
default = names.index(settings.topic_transactions) if settings.topic_transactions in names else 0
topic = topic_column.selectbox("Topic", names, index=default, key="browse_topic")
count = count_column.number_input("Messages", min_value=1, max_value=500, value=20, key="browse_count")
if topic is not None and st.button("Read last messages"):
    try:
        st.dataframe(last_messages(settings, topic, int(count)), hide_index=True)
    except KafkaUnavailable as error:
        st.error(str(error))
