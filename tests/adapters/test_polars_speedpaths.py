"""Polars through ``batchcorder.scan``: batches a predicate excludes are skipped, in Polars' meaning.

The differential tests (``tests/differential``) compare the scan with Polars
over the same table on generated data and predicates. Here: the skipping is
reached by a plain ``filter``, it reads the statistics of the predicate's
columns only, and it keeps Polars' meaning where it differs from Arrow's (NaN
above every number, infinities, categorical order), in every storage mode.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal
from tests.conftest import MODES, mode_kwargs

import batchcorder
from batchcorder import StreamCache
from batchcorder._pruning import Call, FieldRef, Literal
from batchcorder.adapters._polars_pruning import UNKNOWN, predicate_node
from batchcorder.adapters.polars import _scan_batches, _Skipping

START = dt.datetime(2024, 1, 1)
NAN = math.nan
ROWS, BATCH_ROWS = 2_000, 100


def events() -> pa.Table:
    """Time-ordered rows; ``f`` without NaN in most batches, NaN and nulls in some."""
    return pa.table(
        {
            "ts": pa.array(
                [START + dt.timedelta(seconds=n) for n in range(ROWS)], pa.timestamp("us")
            ),
            "tz": pa.array(
                [
                    START.replace(tzinfo=dt.timezone.utc) + dt.timedelta(minutes=n)
                    for n in range(ROWS)
                ],
                pa.timestamp("us", tz="Europe/Paris"),
            ),
            "k": pa.array([n % 5 for n in range(ROWS)], pa.int16()),
            "f": pa.array(
                [math.nan if n % 700 == 3 else None if n % 90 == 0 else n / 8 for n in range(ROWS)]
            ),
            "s": pa.array([f"s{n % 13:02d}" for n in range(ROWS)], pa.large_string()),
            "cat": pa.array([["b", "a", "c"][n % 3] for n in range(ROWS)]).dictionary_encode(),
        }
    )


def _cache(mode: str, tmp_path: Path) -> StreamCache:
    cache = StreamCache(events().to_reader(max_chunksize=BATCH_ROWS), **mode_kwargs(mode, tmp_path))
    cache.ingest_all()
    return cache


PREDICATES = [
    (pl.col("ts") >= START + dt.timedelta(seconds=500))
    & (pl.col("ts") < START + dt.timedelta(seconds=530)),
    pl.col("ts").is_between(START, START + dt.timedelta(seconds=3), closed="right"),
    pl.col("tz") > dt.datetime(2024, 1, 2, 8, 0, tzinfo=ZoneInfo("Europe/Paris")),
    pl.col("f") < NAN,  # Polars: every number is below NaN
    pl.col("f") >= float("inf"),
    pl.col("f") == 2.5,
    pl.col("f").is_null() | (pl.col("k") == 3),
    ~(pl.col("ts") < START + dt.timedelta(seconds=1_990)),
    pl.col("cat") < "b",  # a Categorical: no bounds are used
    (pl.col("s") == "s03") & pl.col("f").is_not_null(),
    pl.col("k") > 1.5,
]


@pytest.mark.parametrize("mode", MODES)
def test_a_filter_answers_as_polars_over_the_table(mode: str, tmp_path: Path) -> None:
    cache = _cache(mode, tmp_path)
    frame = pl.from_arrow(events())
    assert isinstance(frame, pl.DataFrame)
    scanned = batchcorder.scan(cache)
    for predicate in PREDICATES:
        expected = frame.lazy().filter(predicate).select("ts", "f").collect()
        got = scanned.filter(predicate).select("ts", "f").collect()
        assert_frame_equal(got, expected, check_exact=True), str(predicate)
    assert "ts" in cache.statistics.columns
    assert "cat" not in cache.statistics.columns


def test_a_range_on_the_clustered_column_converts_few_batches() -> None:
    cache = _cache("memory", Path())
    predicate = (pl.col("ts") >= START + dt.timedelta(seconds=1_000)) & (
        pl.col("ts") < START + dt.timedelta(seconds=1_150)
    )
    skipping = _Skipping(cache)
    selection = skipping.selection(list(cache.reader()), predicate, cache.schema)
    assert selection is not None
    # 150 rows in batches of 100: batch 10 whole, half of batch 11.
    assert selection.keep.nonzero()[0].tolist() == [10, 11]
    assert selection.whole.nonzero()[0].tolist() == [10]
    frames = list(_scan_batches(cache, cache.schema, ["k"], predicate, None, skipping))
    assert sum(frame.height for frame in frames) == 150


def test_a_count_reads_one_frame_without_columns() -> None:
    cache = _cache("memory", Path())
    (frame,) = _scan_batches(cache, cache.schema, [], None, None, None)
    assert frame.shape == (ROWS, 0)


def test_no_skipping_without_the_whole_cache() -> None:
    # A cache not yet exhausted streams as far as the query reads; one with
    # max_readers frees what its readers pass: neither holds every batch.
    for cache in (
        StreamCache(events().to_reader(max_chunksize=BATCH_ROWS)),
        StreamCache(events().to_reader(max_chunksize=BATCH_ROWS), max_readers=3),
    ):
        if cache.max_readers:
            cache.ingest_all()
        got = batchcorder.scan(cache).filter(pl.col("k") == 4).select(pl.len()).collect().item()
        assert got == ROWS // 5
        assert cache.statistics.columns == []


def test_predicates_translate_to_what_statistics_judge() -> None:
    schema = events().schema
    node = predicate_node((pl.col("k") > pl.lit(2, pl.Int16)) | pl.col("s").is_null(), schema)
    assert node == Call(
        "or_kleene",
        (
            Call("greater", (FieldRef("k"), Literal(pa.scalar(2, pa.int16()))), None),
            Call("is_null", (FieldRef("s"),), None),
        ),
        None,
    )
    # NaN and infinities are written as null: unknown, as are categorical columns
    # and what statistics cannot judge.
    assert predicate_node(pl.col("f") < NAN, schema) == Call("less", (FieldRef("f"), UNKNOWN), None)
    assert predicate_node(pl.col("cat") == "a", schema) == Call(
        "equal", (UNKNOWN, Literal(pa.scalar("a"))), None
    )
    assert predicate_node(pl.col("s").str.starts_with("s1"), schema) == UNKNOWN
