"""The interface's queries timed on a database (``fraudstream db explain``): each query of the results,
review and quality pages, run as the pages run it, through ``EXPLAIN (ANALYZE, BUFFERS)``.

The pages' own code runs over a connection that explains every query before running it, so what is
measured is exactly what the pages send, with their parameters, and nothing is copied here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from fraudstream.pipeline import postgres, quality
from fraudstream.ui import queries, review

GOAL_MS = 100.0
# The statements of a function that sends several, by name.
STATEMENTS = {
    quality.DAILY: "DAILY",
    quality.FRAUD_CARDS: "FRAUD_CARDS",
    quality.TOP_CARDS: "TOP_CARDS (one day)",
    quality.MORE_ROWS: "MORE_ROWS (one day)",
    quality.UNSCORED_LABELS: "UNSCORED_LABELS",
    **{query: "ROWS" for query in review.QUEUES.values()},
    review.WAITING: f"WAITING (up to {review.WAITING_CAP:,})",
}
REVIEW_PERIOD = timedelta(days=1)  # the review queue's default filter: scored in the last 24 hours


@dataclass(frozen=True)
class Plan:
    page: str
    query: str  # the page's function that sent it (and the statement's name, when it sends several)
    execution_ms: float
    planning_ms: float
    rows: int
    partitions: int  # scanned (after pruning)
    nodes: str  # the plan's scans, e.g. "Index Scan using fraud_scores_p20261128_scored_at_idx x2"

    @property
    def within_goal(self) -> bool:
        return self.execution_ms + self.planning_ms < GOAL_MS


class ExplainingConnection:
    """A connection whose ``fetch``/``fetchrow``/``fetchval`` first record the query's plan."""

    def __init__(
        self,
        connection: asyncpg.Connection,
        page: str,
        function: str,
        plans: list[Plan],
        parents: dict[str, str],
    ) -> None:
        self._connection = connection
        self.page, self.function, self.plans, self.parents = page, function, plans, parents

    async def _explain(self, query: str, args: tuple[Any, ...]) -> None:
        text = await self._connection.fetchval(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}", *args, column=0
        )
        plan = (orjson.loads(text) if isinstance(text, str | bytes) else text)[0]
        scans = _scans(plan["Plan"], self.parents)
        self.plans.append(
            Plan(
                page=self.page,
                query=f"{self.function}: {STATEMENTS[query]}" if query in STATEMENTS else self.function,
                execution_ms=round(plan["Execution Time"], 1),
                planning_ms=round(plan["Planning Time"], 1),
                rows=int(plan["Plan"].get("Actual Rows", 0)),
                partitions=len({relation for _, relation in scans if relation}),
                nodes=_summary(scans),
            )
        )

    def transaction(self, **options: Any) -> Any:
        return self._connection.transaction(**options)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        await self._explain(query, args)
        return await self._connection.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        await self._explain(query, args)
        return await self._connection.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        await self._explain(query, args)
        return await self._connection.fetchval(query, *args)


def _scans(node: dict, parents: dict[str, str]) -> list[tuple[str, str | None]]:
    """(node type with its index, relation) of every scan under ``node``; a partition's index is named
    by the partitioned table's index it belongs to."""
    found = []
    if "Scan" in node["Node Type"]:
        index = parents.get(node.get("Index Name", ""), node.get("Index Name"))
        using = f" using {index}" if index else ""
        found.append((f"{node['Node Type']}{using}", node.get("Relation Name")))
    for child in node.get("Plans", []):
        found.extend(_scans(child, parents))
    return found


def _summary(scans: list[tuple[str, str | None]]) -> str:
    """The kinds of scan, counted (one per partition read)."""
    counts: dict[str, int] = {}
    for kind, _ in scans:
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{kind} x{count}" if count > 1 else kind for kind, count in counts.items())


PARENT_INDEXES = """
SELECT child.relname AS child, parent.relname AS parent
FROM pg_inherits i
JOIN pg_class child ON child.oid = i.inhrelid
JOIN pg_class parent ON parent.oid = i.inhparent
WHERE child.relkind = 'i'
"""


Measured = Callable[[ExplainingConnection], Awaitable[object]]


async def _page_functions(connection: asyncpg.Connection, budget: int) -> list[tuple[str, str, Measured]]:
    """(page, function, call) of every query the three pages send on a refresh."""
    now = datetime.now(UTC)
    flagged = await connection.fetchrow(
        "SELECT transaction_id, transaction->>'cat_id' AS category FROM fraud_scores WHERE fraud_flag = 1"
        " ORDER BY scored_at DESC LIMIT 1"
    )
    newest, category = (flagged["transaction_id"], flagged["category"]) if flagged else (None, None)
    one_category = review.Filters(categories=[category] if category else [])
    today = now.date()
    return [
        ("results", "totals", queries.totals),
        ("results", "recent_frauds", queries.recent_frauds),
        ("results", "recent_scores", queries.recent_scores),
        ("results", "throughput", queries.throughput),
        ("review", "queue", lambda c: review.queue(c, review.Filters(since=now - REVIEW_PERIOD), [])),
        ("review", "queue, any time, by score", lambda c: review.queue(c, review.Filters(order="score"), [])),
        ("review", "queue, any time, one category", lambda c: review.queue(c, one_category, [])),
        ("review", "categories", lambda c: review.categories(c, now - REVIEW_PERIOD)),
        ("review", "story", lambda c: review.story(c, newest)),
        (
            "quality",
            "load_quality",
            lambda c: quality.load_quality(
                c, today - timedelta(days=quality.DEFAULT_DAYS - 1), today, budget
            ),
        ),
    ]


async def explain_pages(dsn: str, budget: int) -> list[Plan]:
    """The plan and time of every query the results, review and quality pages send, in their order."""
    connection = await postgres.connect(dsn)
    plans: list[Plan] = []
    try:
        parents = {row["child"]: row["parent"] for row in await connection.fetch(PARENT_INDEXES)}
        for page, function, call in await _page_functions(connection, budget):
            await call(ExplainingConnection(connection, page, function, plans, parents))
    finally:
        await connection.close()
    return plans
