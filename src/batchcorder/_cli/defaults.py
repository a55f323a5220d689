"""Defaults the commands share, each with the reason for its value."""

from __future__ import annotations

__all__ = ["BATCH_ROWS", "DEMO_ROUNDS", "DEMO_ROWS", "DEMO_SEED"]

#: Rows per batch where the command chooses (Parquet sources, the demo's
#: stream): 2**16, pyarrow's own default for readers, large enough that the
#: per-batch overhead is noise and small enough that a batch stays a few MiB.
BATCH_ROWS = 65_536

#: The demo's rows: enough for timings well above the noise, a few seconds
#: on a laptop, and over 30 batches of :data:`BATCH_ROWS`.
DEMO_ROWS = 2_000_000

#: The seed of the demo's synthetic data: any fixed value makes runs comparable.
DEMO_SEED = 42

#: How many times the demo asks each question: the first round reads the
#: cache cold, the others show replay.
DEMO_ROUNDS = 3
