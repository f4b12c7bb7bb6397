"""FeatureEngine: the seed's columns, window features, batching invariance, no leakage, bounded state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudstream.contracts import schema
from fraudstream.errors import FeatureStateError
from fraudstream.ml.features import FEATURES, SEED_FEATURES, STATE_VERSION, FeatureEngine
from fraudstream.pipeline.retry import worth_retrying
from tests.unit.transactions import NEW_SMALL, TRAIN_DATA, seed_reference_frame, synthetic, transactions


def test_seed_columns_equal_the_seed_preprocessing() -> None:
    if not NEW_SMALL.exists():
        pytest.skip(f"{NEW_SMALL} is not available")
    features = FeatureEngine().transform(schema.read_csv(NEW_SMALL))
    reference = seed_reference_frame(NEW_SMALL)
    pd.testing.assert_frame_equal(
        features[list(SEED_FEATURES)], reference[list(SEED_FEATURES)], check_exact=True
    )
    assert list(features.columns) == list(FEATURES)


def test_window_features_on_a_hand_made_example() -> None:
    frame = transactions(
        [
            (0, "2020-01-06 00:00", "grocery_pos", 10.00),
            (0, "2020-01-06 00:30", "misc_net", 20.00),
            (0, "2020-01-06 01:10", "grocery_pos", 30.00),
            (1, "2020-01-06 01:15", "travel", 500.00),
            (0, "2020-01-07 00:30", "home", 40.00),
            (0, "2020-01-14 00:31", "grocery_pos", 60.00),
        ]
    )
    features = FeatureEngine().transform(frame)
    expected = {
        "n_1h": [0, 1, 1, 0, 0, 0],
        "amount_1h": [0, 10, 20, 0, 0, 0],
        "n_24h": [0, 1, 2, 0, 1, 0],
        "amount_24h": [0, 10, 30, 0, 30, 0],
        "n_7d": [0, 1, 2, 0, 3, 0],
        "amount_7d": [0, 10, 30, 0, 60, 0],
        "night_24h": [0, 1, 2, 0, 1, 0],
        "amount_to_mean_7d": [np.nan, 2.0, 2.0, np.nan, 2.0, np.nan],
        "amount_to_mean": [np.nan, 2.0, 2.0, np.nan, 2.0, 2.4],
        "amount_to_cat_mean": [np.nan, np.nan, 3.0, np.nan, np.nan, 3.0],
        "minutes_since_prev": [-1, 30, 40, -1, 1400, 7 * 1440 + 1],
        "n_total": [0, 1, 2, 0, 3, 4],
        "history_minutes": [0, 30, 70, 0, 1470, 8 * 1440 + 31],
        "cat_is_new": [1, 1, 0, 1, 1, 0],
        "n_categories": [0, 1, 2, 0, 2, 3],
        "cat_share": [np.nan, 0.0, 0.5, np.nan, 0.0, 0.5],
        "is_night": [1, 1, 1, 1, 1, 1],
        "hour_num": [0, 0, 1, 1, 0, 0],
    }
    for name, values in expected.items():
        np.testing.assert_array_equal(
            features[name].to_numpy(dtype=float), np.array(values, dtype=float), name
        )


def test_merchant_hour_and_category_features_on_a_hand_made_example() -> None:
    rows = [
        (0, "2020-01-06 08:00", "grocery_pos", 10.00, "A"),
        (0, "2020-01-06 09:30", "misc_net", 20.00, "B"),
        (0, "2020-01-06 20:10", "grocery_pos", 30.00, "A"),
        (0, "2020-01-06 21:00", "grocery_pos", 5.00, "A"),
        (0, "2020-01-07 09:00", "home", 40.00, "D"),
    ]
    frame = transactions([row[:4] for row in rows])
    frame["merch"] = [row[4] for row in rows]
    # Interleaving another customer's rows changes nothing for customer 0.
    other = transactions([(1, "2020-01-06 09:00", "grocery_pos", 7.0), (1, "2020-01-06 21:00", "home", 9.0)])
    other.index = other.index + len(frame)
    mixed = pd.concat([frame, other]).sort_values("transaction_time", kind="stable")
    features = FeatureEngine().transform(mixed).loc[frame.index]
    nan = np.nan
    expected = {
        "n_merchants_24h": [0, 1, 2, 2, 2],
        "n_categories_24h": [0, 1, 2, 2, 2],
        "hour_share": [nan, 1.0, 0.0, 1 / 3, 0.5],
        "amount_cat_z": [nan, nan, nan, -1.5, nan],
    }
    for name, values in expected.items():
        np.testing.assert_allclose(features[name].to_numpy(dtype=float), values, rtol=1e-12, err_msg=name)


def _one_frame_vs_chunks(frame: pd.DataFrame, through_state: bool, seed: int) -> None:
    reference = FeatureEngine().transform(frame)
    rng = np.random.default_rng(seed)
    cuts = np.unique(np.concatenate([rng.integers(0, len(frame), 40), [1, 2, 3, len(frame)]]))
    engine, changelog, parts, start = FeatureEngine(), {}, [], 0
    for end in cuts:
        parts.append(engine.transform(frame.iloc[start:end]))
        start = end
        if through_state:
            # As the detector does: touched customers to a changelog, a fresh engine restored from it.
            changelog.update(engine.export_state(engine.touched_customers()))
            engine = FeatureEngine()
            engine.load_state(changelog)
    pd.testing.assert_frame_equal(pd.concat(parts), reference, check_exact=True)


@pytest.mark.parametrize("through_state", [False, True])
def test_features_do_not_depend_on_batching(through_state: bool) -> None:
    _one_frame_vs_chunks(synthetic().drop(columns=schema.TARGET_COLUMN), through_state, seed=1)


@pytest.mark.parametrize("through_state", [False, True])
def test_features_do_not_depend_on_batching_on_real_data(through_state: bool) -> None:
    if not TRAIN_DATA.exists():
        pytest.skip(f"{TRAIN_DATA} is not available")
    frame = schema.coerce(pd.read_csv(TRAIN_DATA, nrows=40_000)).drop(columns=schema.TARGET_COLUMN)
    _one_frame_vs_chunks(frame, through_state, seed=2)


def test_a_row_sees_only_the_past() -> None:
    frame = synthetic(customers=10, days=20).drop(columns=schema.TARGET_COLUMN)
    cut = len(frame) // 2
    changed = frame.copy()
    changed.loc[changed.index[cut:], "amount"] *= 10
    changed.loc[changed.index[cut:], "cat_id"] = "misc_net"
    prefix = FeatureEngine().transform(frame.iloc[:cut])
    full = FeatureEngine().transform(changed)
    pd.testing.assert_frame_equal(full.iloc[:cut], prefix, check_exact=True)


def _daily(days: int) -> pd.DataFrame:
    start = np.datetime64("2020-03-01T12:00", "m")
    times = [str(start + np.timedelta64(day * 1440, "m")).replace("T", " ") for day in range(days)]
    return transactions([(0, time, "home", 10.0 + day) for day, time in enumerate(times)])


def test_state_keeps_only_the_window() -> None:
    ids = set(schema.customer_ids(_daily(1)))
    sizes = {}
    for days in (1, 7, 8, 30, 60):
        engine = FeatureEngine()
        engine.transform(_daily(days))
        sizes[days] = len(engine.export_state(ids).popitem()[1])
    # Events more than 7 days older than the customer's last one are dropped: 7 kept from day 8 on.
    assert sizes[1] < sizes[7] == sizes[8] == sizes[30] == sizes[60]


def test_state_round_trip_touched_and_delete() -> None:
    frame = synthetic(customers=5, days=10).drop(columns=schema.TARGET_COLUMN)
    engine = FeatureEngine()
    engine.transform(frame)
    ids = engine.touched_customers()
    assert ids == set(schema.customer_ids(frame)) and len(engine) == 5
    assert engine.touched_customers() == set()
    states = engine.export_state(ids)
    restored = FeatureEngine()
    restored.load_state(states)
    assert restored.export_state(ids) == states
    assert restored.touched_customers() == set()
    victim = sorted(ids)[0]
    restored.load_state({victim: None})
    assert len(restored) == 4 and victim not in restored.export_state(ids)


def test_state_of_another_version_is_refused() -> None:
    frame = synthetic(customers=2, days=3).drop(columns=schema.TARGET_COLUMN)
    engine = FeatureEngine()
    engine.transform(frame)
    states = engine.export_state(engine.touched_customers())
    customer, state = next(iter(states.items()))
    old = np.frombuffer(state, dtype=np.int64).copy()
    old[0] = STATE_VERSION - 1
    with pytest.raises(FeatureStateError, match=f"version {STATE_VERSION - 1}") as raised:
        FeatureEngine().load_state({customer: old.tobytes()})
    assert not worth_retrying(raised.value)


def test_unknown_category_and_times_with_seconds() -> None:
    frame = transactions(
        [(0, "2020-01-06 10:00:00", "crypto", 5.0), (0, "2020-01-06 10:20:59", "crypto", 7.0)]
    )
    features = FeatureEngine().transform(frame)
    assert features["minutes_since_prev"].tolist() == [-1, 20]
    assert features["cat_is_new"].tolist() == [1, 0]


def test_features_and_update_gives_transforms_features_and_adds_the_rows_to_the_history() -> None:
    frame = synthetic(customers=3, days=5).drop(columns=schema.TARGET_COLUMN)
    engine = FeatureEngine()

    first = engine.features_and_update(frame)
    again = engine.features_and_update(frame)

    expected = FeatureEngine().transform(frame)
    for name in FEATURES:
        np.testing.assert_array_equal(np.asarray(first[name]), expected[name].to_numpy(), name)
    customers = pd.Series(schema.customer_ids(frame))
    rows_of_customer = customers.map(customers.value_counts()).to_numpy()
    np.testing.assert_array_equal(again["n_total"], first["n_total"] + rows_of_customer)


# The codes the shipped model was trained with (its feature cat_code): a reorder would change its inputs.
SHIPPED_CATEGORY_CODES = {
    "entertainment": 0, "food_dining": 1, "gas_transport": 2, "grocery_net": 3, "grocery_pos": 4,
    "health_fitness": 5, "home": 6, "kids_pets": 7, "misc_net": 8, "misc_pos": 9, "personal_care": 10,
    "shopping_net": 11, "shopping_pos": 12, "travel": 13, "crypto": 14,
}  # fmt: skip


def test_category_codes_are_the_ones_the_shipped_model_was_trained_with() -> None:
    times = [f"2020-01-06 10:{minute:02d}" for minute in range(len(SHIPPED_CATEGORY_CODES))]
    rows = [(0, time, category, 5.0) for time, category in zip(times, SHIPPED_CATEGORY_CODES, strict=True)]

    codes = FeatureEngine().transform(transactions(rows))["cat_code"]

    assert dict(zip(SHIPPED_CATEGORY_CODES, codes.tolist(), strict=True)) == SHIPPED_CATEGORY_CODES


def test_the_lifetime_features_are_features_of_the_engine():
    from fraudstream.ml.features import BEHAVIOUR_FEATURES, LIFETIME_FEATURES

    assert set(BEHAVIOUR_FEATURES) >= LIFETIME_FEATURES


def test_a_rolled_back_batch_leaves_no_trace() -> None:
    """The detector's batch whose offsets were refused: after ``rollback`` the engine scores the next
    batch as if the rolled-back one had never been seen (its new customers forgotten too)."""
    frame = synthetic(customers=30, days=20)
    history, aborted, after = frame.iloc[:400], frame.iloc[400:700].copy(), frame.iloc[700:]
    aborted.loc[aborted.index[::2], "name_2"] += "-new"  # customers the aborted batch adds
    engine, reference = FeatureEngine(), FeatureEngine()
    engine.transform(history)
    reference.transform(history)
    engine.checkpoint()
    engine.transform(aborted)
    engine.transform(aborted)  # several batches since the checkpoint
    engine.rollback()

    assert len(engine) == len(reference)
    pd.testing.assert_frame_equal(engine.transform(after), reference.transform(after))


def test_rollback_needs_a_checkpoint_that_no_load_discarded() -> None:
    engine = FeatureEngine()
    engine.checkpoint()
    engine.load_state({})
    with pytest.raises(FeatureStateError):
        engine.rollback()
