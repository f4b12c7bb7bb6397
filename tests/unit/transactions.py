"""Hand-made and synthetic transaction tables for the ML unit tests (no files needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fraudstream.contracts import schema

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SEED_MODEL = SHARED / "seed" / "my_model.cbm"
NEW_SMALL = SHARED / "seed" / "new_small.csv"
TRAIN_DATA = SHARED / "data" / "train.csv.gz"

NORMAL_CATEGORIES = ("grocery_pos", "gas_transport", "home", "kids_pets", "food_dining", "shopping_pos")
FRAUD_CATEGORIES = ("shopping_net", "misc_net", "grocery_pos")


def customer(index: int) -> dict[str, object]:
    """The customer columns of customer ``index``."""
    return {
        "name_1": f"Name{index}",
        "name_2": f"Surname{index}",
        "gender": "F" if index % 2 else "M",
        "street": f"{index} Main Street",
        "one_city": "Springfield",
        "us_state": "IL",
        "post_code": 62701 + index,
        "lat": 39.78 + index / 100,
        "lon": -89.65,
        "population_city": 116000,
        "jobs": "Engineer",
    }


def transactions(rows: list[tuple[int, str, str, float]]) -> pd.DataFrame:
    """A canonical frame from ``(customer index, time, category, amount)`` tuples, in the given order."""
    records = [
        {
            "transaction_time": time,
            "merch": f"fraud_Shop {category}",
            "cat_id": category,
            "amount": amount,
            "merchant_lat": 39.9,
            "merchant_lon": -89.5,
            **customer(index),
        }
        for index, time, category, amount in rows
    ]
    return schema.coerce(pd.DataFrame.from_records(records))


def synthetic(customers: int = 40, days: int = 60, seed: int = 0) -> pd.DataFrame:
    """Sorted by time, with ``target``: everyday spending plus night bursts of large online fraud."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2020-01-01T00:00", "m")
    rows, labels = [], []
    for index in range(customers):
        count = rng.poisson(3 * days)
        minutes = np.sort(rng.integers(0, days * 24 * 60, count))
        for minute in minutes:
            if 1 <= (minute // 60) % 24 <= 5:
                continue
            category = str(rng.choice(NORMAL_CATEGORIES))
            rows.append((index, minute, category, round(float(rng.lognormal(3.5, 0.8)), 2)))
            labels.append(0)
        if index % 3 == 0:
            burst = int(rng.integers(days // 3, days)) * 24 * 60 + 22 * 60
            for step in range(int(rng.integers(3, 8))):
                category = str(rng.choice(FRAUD_CATEGORIES))
                rows.append((index, burst + step * 37, category, round(float(rng.uniform(300, 1200)), 2)))
                labels.append(1)
    order = np.argsort([row[1] for row in rows], kind="stable")
    table = [
        (rows[i][0], str(start + np.timedelta64(int(rows[i][1]), "m")).replace("T", " "), *rows[i][2:])
        for i in order
    ]
    frame = transactions(table)
    frame[schema.TARGET_COLUMN] = np.array(labels, dtype=np.int64)[order]
    return frame


def seed_reference_frame(path: Path) -> pd.DataFrame:
    """The seed detector's preprocessing, written out independently of ``features``."""
    frame = pd.read_csv(path)
    times = pd.to_datetime(frame["transaction_time"])
    frame["is_weekend"] = times.dt.day_of_week >= 5
    for part in ("year", "month", "day", "hour", "minute"):
        frame[part] = getattr(times.dt, part)
    return frame.drop(columns=["transaction_time", "name_1", "name_2", "street"])
