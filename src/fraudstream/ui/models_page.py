"""Models: the registry's versions and aliases, champion against the shadow challenger on labelled
transactions, promote / shadow / roll back, and the drift the detector measures."""

import streamlit as st

from fraudstream.config import Settings
from fraudstream.ml.registry import RegistryError
from fraudstream.pipeline.lifecycle import Window, promote, registry_of, rollback
from fraudstream.ui import charts, models

settings = Settings()
st.title("Models")
try:
    registry = registry_of(settings)
    versions = models.versions_frame(registry)
    champion, challenger = models.champion_and_challenger(registry)
except RegistryError as error:
    st.error(f"The model registry cannot be read: {error}")
    st.stop()

st.caption(f"Registered model `{registry.name}` at {registry.tracking_uri}")
st.dataframe(versions, hide_index=True)
if versions.empty:
    st.info(
        "No version is registered yet: `fraudstream models register PATH` or `fraudstream train --register`."
    )
    st.stop()
top = st.columns(2)
top[0].metric("Champion (scores and decides)", f"{registry.name}/{champion}" if champion else "none")
top[1].metric("Challenger (shadow only)", f"{registry.name}/{challenger}" if challenger else "none")


def actions() -> None:
    st.subheader("Promote, shadow, roll back")
    version = st.selectbox("Version", versions["version"], key="action_version")
    force = st.checkbox("Force (promote even if worse than the champion)", key="force")
    promote_col, shadow_col, rollback_col = st.columns(3)
    try:
        if promote_col.button("Promote to champion", type="primary"):
            window = Window.last(st.session_state.get("days", 30))
            st.success(promote(models.reader_settings(settings), registry, int(version), force, window))
        if shadow_col.button("Shadow as challenger"):
            registry.set_challenger(int(version))
            st.success(f"challenger: {registry.name}/{version}")
        if rollback_col.button("Roll back the champion"):
            st.success(rollback(registry))
    except RegistryError as error:
        st.error(str(error))


def comparison_section() -> None:
    st.subheader("Champion against challenger")
    days = st.number_input("Labelled transactions of the last N days", 1, 365, 30, key="days")
    if challenger is None or champion is None:
        st.caption("No challenger: `fraudstream models shadow VERSION` scores one in shadow.")
        return
    try:
        result = models.shadow_comparison(settings, registry, challenger, days)
    except (RegistryError, OSError) as error:
        st.error(f"The comparison cannot be made: {error}")
        return
    st.caption(
        f"{result['rows']:,} labelled transactions scored by both, {result['positives']:,} of them fraud; "
        f"thresholds {result['thresholds']['champion']:g} (champion) and "
        f"{result['thresholds']['challenger']:g} (challenger), alert budget {settings.alert_budget}/day"
    )
    st.dataframe(models.comparison_table(result), hide_index=True)
    st.metric("They disagree on the flag", f"{result['disagreement_rate']:.2%}")
    st.markdown("**Where they disagree most**")
    st.dataframe(result["most_disagreed"], hide_index=True)


def drift_section() -> None:
    st.subheader("Drift")
    drift = models.drift_frame(settings)
    if drift is None:
        st.caption(f"No detector answers on port {settings.detector_metrics_port}.")
    elif drift.empty:
        st.caption("No PSI yet: the champion has no reference distribution, or too few rows were scored.")
    else:
        st.altair_chart(charts.psi_chart(drift, settings.psi_warning))
        over = drift[drift["psi"] > settings.psi_warning]
        if not over.empty:
            worst = over.sort_values("psi").iloc[-1]
            st.warning(f"PSI {worst['psi']:.2f} of {worst['feature']} over the last {worst['window']}")


actions()
comparison_section()
drift_section()
