"""A deterministic synthetic stream of web-shop events, made with pyarrow.compute alone."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from batchcorder._cli.arguments import BATCH_ROWS

__all__ = ["EVENTS_SCHEMA", "EventStream"]

EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("ts", pa.timestamp("ms", tz="UTC")),
        ("user_id", pa.int64()),
        ("event_type", pa.string()),
        ("country", pa.string()),
        ("device", pa.string()),
        ("amount", pa.float64()),
        ("duration_ms", pa.int32()),
    ]
)

_EVENT_TYPES = (["view", "click", "add_to_cart", "purchase"], [0.70, 0.20, 0.07, 0.03])
_COUNTRIES = (
    ["US", "DE", "GB", "FR", "IN", "BR", "JP", "CA", "AU", "NL"],
    [0.30, 0.12, 0.11, 0.09, 0.09, 0.08, 0.07, 0.06, 0.04, 0.04],
)
_DEVICES = (["mobile", "desktop", "tablet"], [0.60, 0.33, 0.07])
_START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_SEED_MASK = (1 << 63) - 1


class EventStream:
    """A one-shot stream of event rows generated as it is read, the same for the same arguments.

    :attr:`batches_produced` counts the batches handed out.

    Examples
    --------
    >>> stream = EventStream(rows=10, batch_rows=4)
    >>> reader = stream.reader()
    >>> stream.batches_produced, [batch.num_rows for batch in reader], stream.batches_produced
    (0, [4, 4, 2], 3)
    """

    def __init__(self, rows: int, batch_rows: int = BATCH_ROWS, seed: int = 42) -> None:
        self.rows = rows
        self.batch_rows = batch_rows
        self.seed = seed
        self.users = max(100, rows // 20)
        self.batches_produced = 0

    def reader(self) -> pa.RecordBatchReader:
        """Return the one-shot stream; batches are generated as it is read."""
        return pa.RecordBatchReader.from_batches(EVENTS_SCHEMA, self._batches())

    def _uniform(self, batch: int, column: int, size: int) -> pa.Array:
        """Doubles in [0, 1), the same for the same seed, batch and column."""
        key = ((self.seed * 1_000_003 + batch) * 1_009 + column) & _SEED_MASK
        return pc.random(size, initializer=key)

    def _normal(self, batch: int, column: int, size: int) -> pa.Array:
        """Standard normal draws (Box-Muller)."""
        radius = pc.sqrt(pc.multiply(_ln_uniform(self._uniform(batch, column, size)), _f(-2.0)))
        angle = pc.multiply(self._uniform(batch, column + 1, size), _f(2 * math.pi))
        return pc.multiply(radius, pc.cos(angle))

    def _batches(self) -> Iterator[pa.RecordBatch]:
        clock_ms = _START_MS
        for number, start in enumerate(range(0, self.rows, self.batch_rows)):
            size = min(self.batch_rows, self.rows - start)
            # exponential gaps of 1 s on average between events
            gaps = pc.multiply(_ln_uniform(self._uniform(number, 0, size)), _f(-1_000.0))
            offsets = pc.cumulative_sum(pc.cast(pc.floor(gaps), pa.int64()))
            ts = pc.add(offsets, pa.scalar(clock_ms, pa.int64()))
            clock_ms = ts[-1].as_py() if size else clock_ms
            # a few users make most events: the cube of a uniform draw favours small ids
            users = pc.power(self._uniform(number, 1, size), _f(3.0))
            user_id = pc.cast(pc.floor(pc.multiply(users, _f(self.users))), pa.int64())
            kinds = _draw(self._uniform(number, 2, size), _EVENT_TYPES)
            purchase = pc.equal(kinds, pa.scalar("purchase"))
            log_amount = pc.add(pc.multiply(self._normal(number, 3, size), _f(0.8)), _f(3.5))
            duration = pc.exp(pc.add(self._normal(number, 5, size), _f(8.0)))
            batch = pa.record_batch(
                [
                    pa.array(range(start, start + size), pa.int64()),
                    ts.cast(pa.timestamp("ms", tz="UTC")),
                    pc.add(user_id, pa.scalar(1, pa.int64())),
                    kinds,
                    _draw(self._uniform(number, 7, size), _COUNTRIES),
                    _draw(self._uniform(number, 8, size), _DEVICES),
                    pc.if_else(purchase, pc.round(pc.exp(log_amount), 2), _f(None)),
                    pc.cast(pc.floor(duration), pa.int32()),
                ],
                schema=EVENTS_SCHEMA,
            )
            self.batches_produced += 1
            yield batch


def _f(value: float | None) -> pa.Scalar:
    """A float64 scalar (also for None), so that every result stays float64."""
    return pa.scalar(value, pa.float64())


def _ln_uniform(uniform: pa.Array) -> pa.Array:
    """ln(1 - u): finite, as 1 - u is in (0, 1]."""
    return pc.ln(pc.subtract(_f(1.0), uniform))


def _draw(uniform: pa.Array, choices: tuple[Sequence[str], Sequence[float]]) -> pa.Array:
    """One of ``choices[0]`` per draw, with the probabilities ``choices[1]``."""
    values, weights = choices
    total = sum(weights)
    index = pa.repeat(pa.scalar(0, pa.int8()), len(uniform))
    bound = 0.0
    for weight in weights[:-1]:
        bound += weight / total
        above = pc.greater_equal(uniform, _f(bound))
        index = pc.add(index, pc.cast(above, pa.int8()))
    return pa.array(values, pa.string()).take(index)
