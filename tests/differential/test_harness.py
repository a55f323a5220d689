"""The differential check itself: what it lets through where a ``LIMIT`` races an error.

An engine reading partitions in parallel may finish a ``LIMIT`` before a
partition that raises has run, over the plain table as over a cache: whether
such a query raises is a race. The check accepts either outcome only where
the query without its limits raises that kind of error over the table, the
answer respects the limit, and the cache raises too once nothing stops the
scan early. These cases pin that rule with runners whose outcomes are fixed.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest

from tests.differential.compare import Outcome
from tests.differential.engines import EnginePath, Runner, Sources
from tests.differential.harness import Reference, check, may_stop_early
from tests.differential.queries import Compare, Head, Query, Select, SortKey, UnionAll

TABLE = pa.table({"id": pa.array(range(40), pa.int64())})
#: ``SELECT * FROM (t UNION ALL t WHERE id > 3) LIMIT 25``.
RACY = Query(UnionAll(None, Compare("id", ">", 3)), None, Select(None, limit=25))
BY_ID = (SortKey(0, descending=False, nulls_first=True),)


def _raise(query: Query) -> pa.Table:
    raise pa.ArrowNotImplementedError("Function 'array_filter' has no kernel matching input")


def _answer(rows: int) -> Runner:
    return lambda query: TABLE.slice(0, rows)


def _path(over_table: Runner) -> EnginePath:
    def opener(tables: Sources) -> Runner:
        return over_table

    return EnginePath("a path", opener, opener)


def _reference(over_table: Runner) -> Reference:
    return Reference(_path(over_table), {"t": TABLE})


def _outcome(run: Runner) -> Callable[[Query], Outcome]:
    def rerun(query: Query) -> Outcome:
        try:
            return Outcome(run(query))
        except pa.ArrowException as error:
            return Outcome(None, error)

    return rerun


def test_a_limit_without_order_may_stop_early() -> None:
    assert may_stop_early(RACY)
    assert may_stop_early(Query(Head(5), None, Select(None)))
    assert not may_stop_early(RACY.without_limits())
    assert not may_stop_early(Query(RACY.relation, None, Select(None, BY_ID, 25)))


def test_the_cache_may_raise_where_the_table_won_the_race() -> None:
    reference = _reference(_answer(25))
    # Over the table the limited query answered; without the limit it raises.
    reference.answers[RACY.without_limits()] = _outcome(_raise)(RACY)
    got = _outcome(_raise)(RACY)
    assert check(_path(_answer(25)), RACY, reference, got, _outcome(_raise)) is None


def test_the_cache_may_answer_where_the_table_lost_the_race() -> None:
    got = Outcome(TABLE.slice(0, 25))
    assert check(_path(_raise), RACY, _reference(_raise), got, _outcome(_raise)) is None


def test_an_answer_that_hides_the_error_without_the_limit_is_caught() -> None:
    got = Outcome(TABLE.slice(0, 25))
    problem = check(_path(_raise), RACY, _reference(_raise), got, _outcome(_answer(40)))
    assert problem is not None and "without its limits" in problem


def test_an_answer_beyond_the_limit_is_caught() -> None:
    got = Outcome(TABLE.slice(0, 26))
    problem = check(_path(_raise), RACY, _reference(_raise), got, _outcome(_raise))
    assert problem is not None and "LIMIT 25" in problem


@pytest.mark.parametrize(("order_by", "limit"), [((), None), (BY_ID, 25)])
def test_where_the_engine_reads_everything_a_hidden_error_is_caught(
    order_by: tuple[SortKey, ...], limit: int | None
) -> None:
    query = Query(RACY.relation, None, Select(None, order_by, limit))
    got = Outcome(TABLE.slice(0, 25))
    problem = check(_path(_raise), query, _reference(_raise), got, _outcome(_raise))
    assert problem is not None and "the table raised" in problem


def test_polars_sql_keeps_no_order_through_union_all() -> None:
    from tests.differential.engines import PATHS

    (sql,) = [path for path in PATHS if path.name == "polars batchcorder.register (SQLContext)"]
    assert not RACY.is_deterministic(sql.keeps_order_of(RACY))
    assert sql.keeps_order_of(Query(Head(5), None, Select(None)))
