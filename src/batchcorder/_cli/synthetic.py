"""A deterministic synthetic stream of web-shop events, counting its own pulls."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

__all__ = ["EVENTS_SCHEMA", "EventStream"]

#: The columns of the synthetic events.
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


class EventStream:
    """A one-shot stream of realistic event rows, identical for the same arguments.

    Rows are generated batch by batch as the stream is read, from a seeded
    random generator, so the same ``rows``, ``batch_rows`` and ``seed`` give
    the same data on every machine. :attr:`batches_produced` counts the
    batches handed out: the demo compares it with the cache's stats.

    Parameters
    ----------
    rows : int
        Rows in the whole stream.
    batch_rows : int, default 65536
        Rows per batch (the last batch may be shorter).
    seed : int, default 42
        Seed of the random generator.

    Examples
    --------
    >>> stream = EventStream(rows=10, batch_rows=4)
    >>> reader = stream.reader()
    >>> stream.batches_produced  # nothing pulled yet
    0
    >>> [batch.num_rows for batch in reader]
    [4, 4, 2]
    >>> stream.batches_produced
    3
    >>> EventStream(10, 4).reader().read_all().equals(EventStream(10, 4).reader().read_all())
    True
    """

    def __init__(self, rows: int, batch_rows: int = 65_536, seed: int = 42) -> None:
        if rows < 0 or batch_rows < 1:
            raise ValueError("rows must be >= 0 and batch_rows >= 1")
        self.rows = rows
        self.batch_rows = batch_rows
        self.seed = seed
        self.users = max(100, rows // 20)
        self.batches_produced = 0

    def reader(self) -> pa.RecordBatchReader:
        """Return the one-shot stream; batches are generated as it is read."""
        return pa.RecordBatchReader.from_batches(EVENTS_SCHEMA, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        rng = np.random.default_rng(self.seed)
        clock_ms = _START_MS
        for start in range(0, self.rows, self.batch_rows):
            size = min(self.batch_rows, self.rows - start)
            gaps = rng.exponential(1_000.0, size).astype(np.int64)
            ts = clock_ms + np.cumsum(gaps)
            clock_ms = int(ts[-1]) if size else clock_ms
            kinds = _draw(rng, _EVENT_TYPES[1], size)
            purchase = kinds == _EVENT_TYPES[0].index("purchase")
            amount = np.round(rng.lognormal(3.5, 0.8, size), 2)
            batch = pa.record_batch(
                [
                    pa.array(np.arange(start, start + size, dtype=np.int64)),
                    pa.array(ts, pa.timestamp("ms", tz="UTC")),
                    pa.array(rng.zipf(1.3, size) % self.users + 1),
                    _pick(_EVENT_TYPES[0], kinds),
                    _pick(_COUNTRIES[0], _draw(rng, _COUNTRIES[1], size)),
                    _pick(_DEVICES[0], _draw(rng, _DEVICES[1], size)),
                    pa.array(amount, mask=~purchase),
                    pa.array(rng.lognormal(8.0, 1.0, size).astype(np.int32)),
                ],
                schema=EVENTS_SCHEMA,
            )
            self.batches_produced += 1
            yield batch


def _pick(values: list[str], indices: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(indices))


def _draw(rng: np.random.Generator, weights: list[float], size: int) -> np.ndarray:
    """Indices drawn with the given probabilities (faster than ``rng.choice``)."""
    cumulative = np.cumsum(weights)
    return np.searchsorted(cumulative / cumulative[-1], rng.random(size), side="right")
