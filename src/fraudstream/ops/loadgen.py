"""Synthetic transactions in the input format, for load tests and benchmarks.

Customers have fixed profiles (name, address, job) and spend in the dataset's categories with
log-normal amounts near home; timestamps advance by a minute every few rows. Deterministic per seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudstream.contracts.schema import CATEGORIES, INPUT_COLUMNS, coerce

FIRST_NAMES = (
    "Michael",
    "Curtis",
    "Brandy",
    "Ashley",
    "Kelsey",
    "Jennifer",
    "David",
    "Maria",
    "James",
    "Linda",
)
LAST_NAMES = (
    "Rodriguez",
    "Young",
    "Quinn",
    "Mcdonald",
    "Wilson",
    "Washington",
    "Smith",
    "Lee",
    "Brown",
    "Diaz",
)
STATES = ("TX", "NY", "CA", "PA", "FL", "SC", "OH", "IL", "MI", "WA")
JOBS = ("Metallurgist", "Chief Operating Officer", "Radio broadcast assistant", "Editor, film/video", "Nurse")


def customers(count: int, rng: np.random.Generator) -> pd.DataFrame:
    index = np.arange(count)
    return pd.DataFrame(
        {
            "name_1": rng.choice(FIRST_NAMES, count),
            "name_2": rng.choice(LAST_NAMES, count),
            "gender": rng.choice(("F", "M"), count),
            "street": [f"{n} Load Street" for n in index],
            "one_city": [f"City {n % 300}" for n in index],
            "us_state": rng.choice(STATES, count),
            "post_code": 10000 + index,
            "lat": rng.uniform(25.0, 48.0, count).round(4),
            "lon": rng.uniform(-122.0, -70.0, count).round(4),
            "population_city": rng.integers(100, 2_000_000, count),
            "jobs": rng.choice(JOBS, count),
        }
    )


def transactions(
    rows: int, customer_count: int = 1000, seed: int = 0, start: str = "2020-07-01 00:00"
) -> pd.DataFrame:
    """``rows`` transactions in the input format, in time order."""
    rng = np.random.default_rng(seed)
    people = customers(customer_count, rng)
    who = people.iloc[rng.integers(0, customer_count, rows)].reset_index(drop=True)
    minutes = np.cumsum(rng.random(rows) < 0.2)
    frame = who.assign(
        transaction_time=(pd.Timestamp(start) + pd.to_timedelta(minutes, unit="min")).strftime(
            "%Y-%m-%d %H:%M"
        ),
        merch=[f"fraud_Merchant {n}" for n in rng.integers(0, 700, rows)],
        cat_id=rng.choice(CATEGORIES, rows),
        amount=np.exp(rng.normal(3.8, 1.0, rows)).round(2),
        merchant_lat=(who["lat"] + rng.uniform(-1, 1, rows)).round(6),
        merchant_lon=(who["lon"] + rng.uniform(-1, 1, rows)).round(6),
    )
    return coerce(frame[list(INPUT_COLUMNS)])
