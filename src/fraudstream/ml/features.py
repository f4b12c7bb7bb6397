"""Features of a transaction: the seed's calendar columns plus per-customer behaviour from the past.

One module for training, offline scoring and the stream detector. ``FeatureEngine`` keeps, per customer,
the events of the longest window plus constant-size running totals, and computes every batch with numpy
over all its customers at once. Money is int64 cents and time int64 minutes inside the state, so every
window sum is an exact integer and the features do not depend on how the rows were split into batches.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike

from fraudstream.contracts import schema
from fraudstream.errors import FeatureStateError

logger = logging.getLogger(__name__)

# The seed's preprocessing: the input columns but the time and the customer's identity, plus calendar parts.
SEED_DROPPED = ("transaction_time", "name_1", "name_2", "street")
SEED_RAW = tuple(column for column in schema.INPUT_COLUMNS if column not in SEED_DROPPED)
CALENDAR = ("is_weekend", "year", "month", "day", "hour", "minute")
SEED_FEATURES = SEED_RAW + CALENDAR
# A category's index in schema.CATEGORIES is its code (the feature cat_code and its slot in the state);
# unknown categories share the last slot.
N_CATEGORIES = len(schema.CATEGORIES) + 1
_CATEGORY_CODES = {name: code for code, name in enumerate(schema.CATEGORIES)}
WINDOWS = {"1h": 60, "24h": 24 * 60, "7d": 7 * 24 * 60}
NIGHT_HOURS = (22, 23, 0, 1, 2, 3)

# Columns of one stored event (all int64); the merchant is a CRC-32 of its name.
EV_TIME, EV_CENTS, EV_CAT, EV_NIGHT, EV_MERCHANT = range(5)
N_EVENT_FIELDS = 5
# Columns of the running totals of one customer (all int64).
AG_COUNT, AG_CENTS, AG_FIRST = range(3)
AG_CAT_COUNT = 3
AG_CAT_CENTS = AG_CAT_COUNT + N_CATEGORIES
AG_CAT_SQUARES = AG_CAT_CENTS + N_CATEGORIES  # sum of cents squared per category (exact below 2**63)
AG_HOURS = AG_CAT_SQUARES + N_CATEGORIES  # transactions per hour of the day
N_AGG_FIELDS = AG_HOURS + 24

# 2 added the merchant per event, squares per category, counts per hour; 1 is refused (it lacks them).
STATE_VERSION = 2
_HEADER = 2  # version, number of events
_TIME_ORIGIN = -(2**32)  # minutes; shifts times to be non-negative inside the segment keys
_TOTALS_AT = 8 * _HEADER  # bytes into a serialized state
_EVENTS_AT = 8 * (_HEADER + N_AGG_FIELDS)
_SEGMENT = 2**36  # larger than any shifted time: slot * _SEGMENT + time orders by slot, then time

_NO_EVENTS = np.zeros((0, N_EVENT_FIELDS), dtype=np.int64)

BEHAVIOUR_FEATURES = (
    *(f"n_{name}" for name in WINDOWS),
    *(f"amount_{name}" for name in WINDOWS),
    "night_24h",
    "amount_to_mean_7d",
    "amount_to_mean",
    "amount_to_cat_mean",
    "minutes_since_prev",
    "n_total",
    "history_minutes",
    "cat_is_new",
    "n_categories",
    "cat_share",
    "amount_cat_z",
    "n_merchants_24h",
    "n_categories_24h",
    "hour_share",
    "is_night",
    "hour_num",
    "home_distance",
    "cat_code",
    "gender_code",
)
FEATURES = SEED_FEATURES + BEHAVIOUR_FEATURES
# Features over a customer's whole history (not a window): a replay that starts late sees only part of it.
LIFETIME_FEATURES = frozenset(
    {
        "amount_cat_z",
        "amount_to_cat_mean",
        "amount_to_mean",
        "cat_is_new",
        "cat_share",
        "history_minutes",
        "hour_share",
        "minutes_since_prev",
        "n_categories",
        "n_total",
    }
)


class FeatureEngine:
    """Per-customer state and the batch transform shared by training, offline scoring and streaming."""

    def __init__(self, history_window_minutes: int = WINDOWS["7d"]) -> None:
        if history_window_minutes < max(WINDOWS.values()):
            raise ValueError(f"history window must cover the longest feature window {max(WINDOWS.values())}")
        self._keep = history_window_minutes
        self._slots: dict[str, int] = {}
        self._free: list[int] = []
        self._agg = np.zeros((1024, N_AGG_FIELDS), dtype=np.int64)
        self._events: dict[int, np.ndarray] = {}  # slot -> the customer's kept events, in arrival order
        self._touched: set[str] = set()
        self._undo: _Undo | None = None

    def __len__(self) -> int:
        return len(self._slots)

    def checkpoint(self) -> None:
        """Record from here on what ``features_and_update`` changes, so that ``rollback`` can undo it
        (the detector's batch whose transaction was refused); forgets the previous checkpoint. Costs a
        copy of the batch's customers' totals per batch."""
        self._undo = _Undo()

    def rollback(self) -> None:
        """The state as it was at the last ``checkpoint``. Raises ``FeatureStateError`` without one
        (``load_state`` since then also discards it)."""
        undo, self._undo = self._undo, None
        if undo is None:
            raise FeatureStateError("no checkpoint to roll back to")
        for slots, rows in reversed(undo.totals):
            self._agg[slots] = rows
        for slot, events in undo.events.items():
            if events is None:
                self._events.pop(slot, None)
            else:
                self._events[slot] = events
        for customer in undo.new:
            self._forget(customer)

    def touched_customers(self) -> set[str]:
        """Customers whose state changed in ``transform`` since the last call; resets the set."""
        touched, self._touched = self._touched, set()
        return touched

    def transform(self, frame: pd.DataFrame, customers: np.ndarray | None = None) -> pd.DataFrame:
        """Features of ``frame`` (canonical columns, each customer's rows in arrival order).

        Returns one row per input row (same index) and adds the rows to the customers' state.
        ``customers`` are the rows' ``schema.customer_ids`` if the caller has them already.
        """
        columns = self.features_and_update(frame, customers)
        raw = {name: np.asarray(columns[name]) for name in SEED_RAW}
        return pd.DataFrame({**columns, **raw}, index=frame.index, columns=list(FEATURES))

    def features_and_update(
        self, table: schema.Table, customers: np.ndarray | None = None, times: np.ndarray | None = None
    ) -> dict[str, ArrayLike]:
        """``transform`` as a mapping of feature name to column, without building a frame: the input's
        columns are passed through as they are. Like ``transform``, it adds the rows to their customers'
        history, so the same rows passed twice are two transactions each. For the detector, whose
        batches are numpy columns (``schema.arrays_from``: a frame would cost a small batch more than
        its features) and which has the rows' ``schema.transaction_times`` already."""
        times = schema.transaction_times(table) if times is None else times
        codes, ids = pd.factorize(schema.customer_ids(table) if customers is None else customers)
        slots = self._slots_of(list(ids))[codes]
        self._touched.update(ids)
        calendar = _calendar(times)
        new = np.empty((len(times), N_EVENT_FIELDS), dtype=np.int64)
        new[:, EV_TIME] = times.astype("datetime64[m]").astype(np.int64)
        new[:, EV_CENTS] = np.rint(np.asarray(table["amount"]) * 100).astype(np.int64)
        new[:, EV_CAT] = _category_index(table["cat_id"])
        hours = calendar["hour"]
        new[:, EV_NIGHT] = np.isin(hours, NIGHT_HOURS)
        new[:, EV_MERCHANT] = _merchant_ids(table["merch"])
        behaviour = self._features_then_store(slots, new, hours.astype(np.int64))
        behaviour["is_night"] = new[:, EV_NIGHT]
        behaviour["hour_num"] = hours.astype(np.int64)
        behaviour["cat_code"] = new[:, EV_CAT]
        behaviour["gender_code"] = (np.asarray(table["gender"]) == "F").astype(np.int64)
        lat, lon = np.asarray(table["lat"]), np.asarray(table["lon"])
        behaviour["home_distance"] = np.sqrt(
            (lat - np.asarray(table["merchant_lat"])) ** 2 + (lon - np.asarray(table["merchant_lon"])) ** 2
        )
        return {**{name: table[name] for name in SEED_RAW}, **calendar, **behaviour}

    def _slots_of(self, customers: list[str]) -> np.ndarray:
        """The slot of each of these distinct customers; new ones take the free slots first, then the
        next unused ones, with zeroed totals."""
        get = self._slots.get
        slots = np.fromiter(
            (get(customer, -1) for customer in customers), dtype=np.int64, count=len(customers)
        )
        missing = np.flatnonzero(slots < 0)
        if len(missing) == 0:
            return slots
        new = [customers[row] for row in missing.tolist()]
        taken = [self._free.pop() for _ in range(min(len(new), len(self._free)))]
        first_unused = len(self._slots) + len(taken)  # with no free slot left, every lower one is in use
        fresh = np.array(
            taken + list(range(first_unused, first_unused + len(new) - len(taken))), dtype=np.int64
        )
        needed = int(fresh.max()) + 1
        if needed > len(self._agg):
            grown = np.zeros((max(needed, 2 * len(self._agg)), N_AGG_FIELDS), dtype=np.int64)
            grown[: len(self._agg)] = self._agg
            self._agg = grown
        self._agg[fresh] = 0
        self._slots.update(zip(new, fresh.tolist(), strict=True))
        if self._undo is not None:
            self._undo.new.extend(new)
        slots[missing] = fresh
        return slots

    def _features_then_store(
        self, slots: np.ndarray, new: np.ndarray, hours: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Features of the new events against each customer's stored past; then stores the new events.

        Only the batch's customers' events are read and replaced: the cost follows the batch, not the
        number of customers or events kept."""
        customers = np.unique(slots)
        stored = [self._events.get(slot, _NO_EVENTS) for slot in customers.tolist()]
        past_slots = np.repeat(customers, [len(events) for events in stored])
        n_past = len(past_slots)
        combined_slots = np.concatenate([past_slots, slots])
        order = np.argsort(combined_slots, kind="stable")
        events = np.concatenate([*stored, new])[order]
        batch = _Batch(combined_slots[order], events, order >= n_past)
        rows = order[batch.positions] - n_past
        features = batch.window_features()
        features.update(self._history_features(batch))
        features.update(self._hour_features(batch, hours[rows]))
        self._store(batch, hours[rows])
        out = {}
        for name, values in features.items():
            out[name] = np.empty_like(values)
            out[name][rows] = values
        return out

    def _history_features(self, batch: _Batch) -> dict[str, np.ndarray]:
        """Features from the running totals over the whole history, before each new event."""
        slot, cat, time = batch.new_slots, batch.new_field(EV_CAT), batch.times
        cents = batch.new_field(EV_CENTS)
        stored = self._agg[slot, AG_COUNT]
        count = stored + batch.prior_in_segment(batch.is_new)
        total = self._agg[slot, AG_CENTS] + batch.prior_in_segment(batch.is_new * batch.events[:, EV_CENTS])
        cat_count, (cat_total, cat_squares) = _prior_in_groups(
            slot * N_CATEGORIES + cat, cents, cents * cents
        )
        cat_count += self._agg[slot, AG_CAT_COUNT + cat]
        cat_total += self._agg[slot, AG_CAT_CENTS + cat]
        cat_squares += self._agg[slot, AG_CAT_SQUARES + cat]
        first_of_category = np.zeros(len(batch.slots), dtype=np.int64)
        first_of_category[batch.positions] = cat_count == 0
        stored_categories = np.count_nonzero(self._agg[slot, AG_CAT_COUNT:AG_CAT_CENTS], axis=1)
        first_time = np.where(stored > 0, self._agg[slot, AG_FIRST], batch.events[batch.starts, EV_TIME])
        has_previous = batch.starts < batch.positions
        previous_time = batch.events[batch.positions - 1, EV_TIME]
        return {
            "amount_to_mean": _ratio(cents * count, total),
            "amount_to_cat_mean": _ratio(cents * cat_count, cat_total),
            "minutes_since_prev": np.where(has_previous, time - previous_time, -1),
            "n_total": count,
            "history_minutes": time - first_time,
            "cat_is_new": (cat_count == 0).astype(np.int64),
            "n_categories": stored_categories + batch.prior_in_segment(first_of_category),
            "cat_share": _ratio(cat_count, count),
            "amount_cat_z": _z_score(cents, cat_count, cat_total, cat_squares),
        }

    def _hour_features(self, batch: _Batch, hours: np.ndarray) -> dict[str, np.ndarray]:
        """Share of the customer's earlier transactions within an hour of this one's hour of the day."""
        slot = batch.new_slots
        near_hours = (hours[:, None] + np.array([-1, 0, 1])) % 24
        stored = self._agg[slot[:, None], AG_HOURS + near_hours].sum(axis=1)
        rows = np.arange(len(hours))
        starts = np.searchsorted(slot, slot, side="left")
        owner, earlier = _ranges(starts, rows)  # the customer's earlier new events
        apart = (hours[earlier] - hours[owner]) % 24
        near = (apart <= 1) | (apart == 23)
        in_batch = np.bincount(owner, weights=near, minlength=len(hours)).astype(np.int64)
        count = self._agg[slot, AG_COUNT] + rows - starts
        return {"hour_share": _ratio(stored + in_batch, count)}

    def _store(self, batch: _Batch, hours: np.ndarray) -> None:
        """Add the new events to the running totals; keep only each customer's events within the window."""
        slot = batch.new_slots
        if self._undo is not None:
            changed = np.unique(slot)
            self._undo.totals.append((changed, self._agg[changed].copy()))
        fresh = self._agg[slot, AG_COUNT] == 0
        self._agg[slot[fresh], AG_FIRST] = batch.events[batch.starts[fresh], EV_TIME]
        cat, cents, ones = batch.new_field(EV_CAT), batch.new_field(EV_CENTS), np.ones_like(slot)
        fields = [np.full_like(slot, AG_COUNT), np.full_like(slot, AG_CENTS), AG_CAT_COUNT + cat]
        fields += [AG_CAT_CENTS + cat, AG_CAT_SQUARES + cat, AG_HOURS + hours]
        values = [ones, cents, ones, cents, cents * cents, ones]
        np.add.at(self._agg, (np.tile(slot, len(fields)), np.concatenate(fields)), np.concatenate(values))
        ends = np.searchsorted(batch.slots, batch.slots, side="right") - 1
        keep = batch.events[:, EV_TIME] > batch.events[ends, EV_TIME] - self._keep
        kept_slots, kept = batch.slots[keep], batch.events[keep]
        customers, starts = np.unique(kept_slots, return_index=True)
        ends = [*starts[1:].tolist(), len(kept)]
        undo = self._undo.events if self._undo is not None else None
        for slot, start, end in zip(customers.tolist(), starts.tolist(), ends, strict=True):
            if undo is not None and slot not in undo:
                undo[slot] = self._events.get(slot)
            self._events[slot] = kept[start:end].copy()  # a copy: a view would keep the whole batch alive

    def export_state(self, customer_ids: Iterable[str]) -> dict[str, bytes]:
        """Serialized state of each known customer among ``customer_ids`` (unknown ones are left out)."""
        states = {}
        for customer in customer_ids:
            slot = self._slots.get(customer)
            if slot is None:
                continue
            events = self._events.get(slot, _NO_EVENTS)
            header = np.array([STATE_VERSION, len(events)], dtype=np.int64)
            states[customer] = np.concatenate([header, self._agg[slot], events.ravel()]).tobytes()
        return states

    def load_state(self, states: Mapping[str, bytes | None]) -> None:
        """Replace the state of the given customers with serialized states; ``None`` deletes a customer.

        Decoded all at once (a detector restores a partition's customers in one call): one buffer,
        the totals copied in one assignment, each customer's events copied out of it."""
        self._undo = None
        live = {customer: state for customer, state in states.items() if state is not None}
        for customer in states.keys() - live.keys():
            self._forget(customer)
        if not live:
            return
        totals, events = _decode_states(list(live.values()))
        slots = self._slots_of(list(live))
        self._agg[slots] = totals
        self._events.update(zip(slots.tolist(), events, strict=True))

    def _forget(self, customer: str) -> None:
        slot = self._slots.pop(customer, None)
        if slot is not None:
            self._agg[slot] = 0
            self._events.pop(slot, None)
            self._free.append(slot)


@dataclass
class _Undo:
    """What the batches since a checkpoint changed: the customers they added, the totals of the
    customers they updated, and each updated slot's events before (None: it had none)."""

    new: list[str] = field(default_factory=list)
    totals: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    events: dict[int, np.ndarray | None] = field(default_factory=dict)


class _Batch:
    """The stored past events and the new events of a batch's customers, sorted by customer, then arrival."""

    def __init__(self, slots: np.ndarray, events: np.ndarray, is_new: np.ndarray) -> None:
        # Times are made non-decreasing per customer, so that each window is a contiguous range of events.
        keys = np.maximum.accumulate(slots * _SEGMENT + (events[:, EV_TIME] - _TIME_ORIGIN))
        events[:, EV_TIME] = keys - slots * _SEGMENT + _TIME_ORIGIN
        self.slots, self.events, self.is_new, self.keys = slots, events, is_new, keys
        self.positions = np.flatnonzero(is_new)
        self.new_slots = slots[self.positions]
        self.starts = np.searchsorted(slots, self.new_slots, side="left")
        self.times = events[self.positions, EV_TIME]

    def new_field(self, field: int) -> np.ndarray:
        return self.events[self.positions, field]

    def prior_in_segment(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` (one per event) over the customer's earlier events in this batch."""
        cumulative = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
        return cumulative[self.positions] - cumulative[self.starts]

    def _distinct_features(self, lower: np.ndarray) -> dict[str, np.ndarray]:
        """Distinct merchants and categories among each new event's earlier events from ``lower`` on."""
        counts = self.positions - lower
        owner, earlier = _ranges(lower, self.positions)
        firsts = np.cumsum(counts) - counts
        # One key per (new event, merchant): CRC-32 values are below 2**32.
        merchants = np.unique((owner << 32) | self.events[earlier, EV_MERCHANT])
        # Categories (fewer than 64) as bits: one OR per new event's range, then a bit count.
        # A trailing 0 makes every range's start a valid index, even of an empty range at the end.
        bits = np.append(np.left_shift(1, self.events[earlier, EV_CAT]), 0)
        masks = np.bitwise_or.reduceat(bits, firsts)
        return {
            "n_merchants_24h": np.bincount(merchants >> 32, minlength=len(counts)),
            "n_categories_24h": np.where(counts > 0, np.bitwise_count(masks), 0).astype(np.int64),
        }

    def window_features(self) -> dict[str, np.ndarray]:
        """Counts and sums over each customer's earlier events within (t - window, t]."""
        cents = np.concatenate([[0], np.cumsum(self.events[:, EV_CENTS])])
        nights = np.concatenate([[0], np.cumsum(self.events[:, EV_NIGHT])])
        new_keys = self.keys[self.positions]
        features: dict[str, np.ndarray] = {}
        for name, minutes in WINDOWS.items():
            lower = np.searchsorted(self.keys, new_keys - minutes, side="right")
            features[f"n_{name}"] = self.positions - lower
            features[f"amount_{name}"] = (cents[self.positions] - cents[lower]) / 100
            if name == "24h":
                features["night_24h"] = nights[self.positions] - nights[lower]
                features.update(self._distinct_features(lower))
            if name == "7d":
                sum_7d = cents[self.positions] - cents[lower]
                features["amount_to_mean_7d"] = _ratio(
                    self.new_field(EV_CENTS) * (self.positions - lower), sum_7d
                )
        return features


def _ranges(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every index of every range [starts[i], ends[i]), and the range ``i`` it belongs to, range by range."""
    counts = ends - starts
    owner = np.repeat(np.arange(len(counts)), counts)
    return owner, starts[owner] + np.arange(len(owner)) - (np.cumsum(counts) - counts)[owner]


def _prior_in_groups(groups: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Count, and the sum of each of ``values``, over the earlier rows of the same group, rows in order."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.searchsorted(sorted_groups, sorted_groups, side="left")
    positions = np.arange(len(groups))
    count = np.empty_like(positions)
    count[order] = positions - starts
    totals = []
    for column in values:
        cumulative = np.concatenate([[0], np.cumsum(column[order], dtype=np.int64)])
        total = np.empty_like(column)
        total[order] = cumulative[positions] - cumulative[starts]
        totals.append(total)
    return count, totals


def _z_score(cents: np.ndarray, count: np.ndarray, total: np.ndarray, squares: np.ndarray) -> np.ndarray:
    """(amount - mean) / standard deviation of the earlier amounts; NaN below two or without spread."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / count
        deviation = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
        return np.where((count >= 2) & (deviation > 0), (cents - mean) / deviation, np.nan)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator as float64 from exact integers; NaN where there is no history."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def _decode_states(states: list[bytes]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The running totals (one row per state) and the events (an array per state) of serialized states."""
    sizes = np.fromiter(map(len, states), dtype=np.int64, count=len(states))
    if (sizes % 8).any() or (sizes < 8 * (_HEADER + N_AGG_FIELDS)).any():
        raise FeatureStateError("unreadable feature state (shorter than its header and totals)")
    headers = np.frombuffer(b"".join(state[:_TOTALS_AT] for state in states), dtype=np.int64).reshape(-1, 2)
    versions, n_events = headers[:, 0], headers[:, 1]
    if (versions != STATE_VERSION).any():
        version = int(versions[versions != STATE_VERSION][0])
        raise FeatureStateError(
            f"feature state of version {version}, this engine reads version {STATE_VERSION} only: "
            "the changelog was written by an older detector and must be reset"
        )
    lengths = sizes // 8
    expected = _HEADER + N_AGG_FIELDS + n_events * N_EVENT_FIELDS
    if (lengths != expected).any():
        bad = int(np.flatnonzero(lengths != expected)[0])
        raise FeatureStateError(
            f"unreadable feature state ({lengths[bad]} values for {n_events[bad]} events)"
        )
    totals = b"".join(state[_TOTALS_AT:_EVENTS_AT] for state in states)
    events = np.frombuffer(b"".join(state[_EVENTS_AT:] for state in states), dtype=np.int64)
    bounds = np.cumsum(n_events)[:-1].tolist()
    per_state = np.split(events.reshape(-1, N_EVENT_FIELDS), bounds)  # views of one fresh buffer
    return np.frombuffer(totals, dtype=np.int64).reshape(-1, N_AGG_FIELDS), [
        part.copy() for part in per_state
    ]


def _category_index(categories: pd.Series | np.ndarray) -> np.ndarray:
    """Each category's code; an unknown one (or a missing one) takes the last slot."""
    names = categories.tolist()
    codes = (_CATEGORY_CODES.get(name, N_CATEGORIES - 1) for name in names)
    return np.fromiter(codes, dtype=np.int64, count=len(names))


def _merchant_ids(merchants: pd.Series | np.ndarray) -> np.ndarray:
    """A stable id per merchant name: CRC-32 (the same in every process, unlike Python's ``hash``) of each
    distinct name once, through Arrow's dictionary encoding (on large batches, much less than per row)."""
    values = pa.array(merchants)  # chunked when the series is a slice of several Arrow chunks
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(pc.fill_null(values, ""))
    names = encoded.dictionary.to_pylist()
    return np.array([zlib.crc32(name.encode()) for name in names], dtype=np.int64)[encoded.indices.to_numpy()]


def _calendar(times: np.ndarray) -> dict[str, np.ndarray]:
    """The seed's calendar parts of datetime64 ``times``: ``is_weekend`` (bool), year..minute (int32)."""
    days = times.astype("datetime64[D]")
    months = times.astype("datetime64[M]")
    hours = times.astype("datetime64[h]")
    return {
        "is_weekend": (days.astype(np.int64) + 3) % 7 >= 5,  # 1970-01-01 was a Thursday (weekday 3)
        "year": (times.astype("datetime64[Y]").astype(np.int64) + 1970).astype(np.int32),
        "month": (months.astype(np.int64) % 12 + 1).astype(np.int32),
        "day": ((days - months).astype(np.int64) + 1).astype(np.int32),
        "hour": (hours - days).astype(np.int64).astype(np.int32),
        "minute": (times.astype("datetime64[m]") - hours).astype(np.int64).astype(np.int32),
    }
