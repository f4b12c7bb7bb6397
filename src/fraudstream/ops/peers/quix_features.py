"""The model's features of one transaction from one customer's state, in plain Python (standard library
only): what an engineer writing the detector as a per-message stream application computes.

The definitions are ``ml.features``': its windows, night hours, categories and feature names come in a
``Spec`` that the bench builds from that module (``peers.quix.spec``), so nothing is copied here but
the arithmetic, done one event at a time instead of over a batch's arrays. Times are whole minutes,
amounts integer cents, the merchant a CRC-32 of its name, as in ``FeatureEngine``'s state; a customer's
times are made non-decreasing as there. The state is a JSON-friendly dict, kept per customer in the
application's state store.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import datetime

NAN = float("nan")
EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Spec:
    """What ``ml.features`` defines and the model reads."""

    categories: tuple[str, ...]
    windows: dict[str, int]  # name -> minutes
    night_hours: tuple[int, ...]
    keep_minutes: int  # events kept per customer: the longest window
    features: tuple[str, ...]  # the model's, in its order

    @classmethod
    def of(cls, data: dict) -> Spec:
        return cls(
            tuple(data["categories"]),
            dict(data["windows"]),
            tuple(data["night_hours"]),
            int(data["keep_minutes"]),
            tuple(data["features"]),
        )


def new_state(spec: Spec) -> dict:
    """A customer without history: kept events [minute, cents, category, night, merchant] and totals."""
    slots = len(spec.categories) + 1
    return {
        "events": [],
        "count": 0,
        "cents": 0,
        "first": 0,
        "cat_count": [0] * slots,
        "cat_cents": [0] * slots,
        "cat_squares": [0] * slots,
        "hours": [0] * 24,
    }


def features_then_update(spec: Spec, state: dict, data: dict) -> list[float]:
    """The model's features of transaction ``data`` (input format) against ``state``, in the model's
    order; then ``data`` is added to ``state``."""
    moment = datetime.fromisoformat(data["transaction_time"])
    hour = moment.hour
    events = state["events"]
    minute = int((moment - EPOCH).total_seconds() // 60)
    if events and events[-1][0] > minute:
        minute = events[-1][0]  # non-decreasing per customer
    cents = round(data["amount"] * 100)
    category = _category(spec, data["cat_id"])
    night = int(hour in spec.night_hours)
    merchant = zlib.crc32((data["merch"] or "").encode())
    values = {
        **_window_features(spec, events, minute, cents),
        **_history_features(state, events, minute, cents, category, hour),
        "amount": data["amount"],
        "is_night": night,
        "hour_num": hour,
        "cat_code": category,
        "gender_code": int(data["gender"] == "F"),
        "home_distance": math.sqrt(
            (data["lat"] - data["merchant_lat"]) ** 2 + (data["lon"] - data["merchant_lon"]) ** 2
        ),
    }
    _store(spec, state, [minute, cents, category, night, merchant], hour)
    return [values[name] for name in spec.features]


def _category(spec: Spec, name: str) -> int:
    try:
        return spec.categories.index(name)
    except ValueError:
        return len(spec.categories)  # unknown categories share the last slot


def _window_features(spec: Spec, events: list[list[int]], minute: int, cents: int) -> dict[str, float]:
    """Counts and sums over the customer's earlier events within (minute - window, minute]."""
    values: dict[str, float] = {}
    for name, length in spec.windows.items():
        inside = [event for event in events if event[0] > minute - length]
        total = sum(event[1] for event in inside)
        values[f"n_{name}"] = len(inside)
        values[f"amount_{name}"] = total / 100
        if name == "24h":
            values["night_24h"] = sum(event[3] for event in inside)
            values["n_merchants_24h"] = len({event[4] for event in inside})
            values["n_categories_24h"] = len({event[2] for event in inside})
        if name == "7d":
            values["amount_to_mean_7d"] = _ratio(cents * len(inside), total)
    return values


def _history_features(
    state: dict, events: list[list[int]], minute: int, cents: int, category: int, hour: int
) -> dict[str, float]:
    """Features from the running totals over the customer's whole history, before this event."""
    count, total = state["count"], state["cents"]
    cat_count, cat_total = state["cat_count"][category], state["cat_cents"][category]
    near_hours = sum(state["hours"][(hour + shift) % 24] for shift in (-1, 0, 1))
    return {
        "amount_to_mean": _ratio(cents * count, total),
        "amount_to_cat_mean": _ratio(cents * cat_count, cat_total),
        "minutes_since_prev": minute - events[-1][0] if events else -1,
        "n_total": count,
        "history_minutes": minute - state["first"] if count else 0,
        "cat_is_new": int(cat_count == 0),
        "n_categories": sum(1 for n in state["cat_count"] if n),
        "cat_share": _ratio(cat_count, count),
        "amount_cat_z": _z_score(cents, cat_count, cat_total, state["cat_squares"][category]),
        "hour_share": _ratio(near_hours, count),
    }


def _store(spec: Spec, state: dict, event: list[int], hour: int) -> None:
    minute, cents, category = event[0], event[1], event[2]
    if state["count"] == 0:
        state["first"] = minute
    state["count"] += 1
    state["cents"] += cents
    state["cat_count"][category] += 1
    state["cat_cents"][category] += cents
    state["cat_squares"][category] += cents * cents
    state["hours"][hour] += 1
    kept = [earlier for earlier in state["events"] if earlier[0] > minute - spec.keep_minutes]
    kept.append(event)
    state["events"] = kept


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else NAN


def _z_score(cents: int, count: int, total: int, squares: int) -> float:
    """(amount - mean) / standard deviation of the earlier amounts; NaN below two or without spread."""
    if count < 2:
        return NAN
    mean = total / count
    deviation = math.sqrt(max(squares / count - mean * mean, 0.0))
    return (cents - mean) / deviation if deviation > 0 else NAN
