"""Peak anonymous memory of bounded-memory modes, measured in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="needs /proc to read anonymous memory"
)

MB = 1 << 20

# Runs in its own interpreter: builds a lazy upstream of BATCHES fresh 1 MiB
# batches and reports the growth of anonymous RSS (not file pages) sampled
# after every batch each reader takes.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import pyarrow as pa
    from batchcorder import StreamCache

    def anon_bytes():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no RssAnon")

    options = json.loads(sys.argv[1])
    batches = options.pop("batches")
    readers = options.pop("readers")
    replays = options.pop("replays", 0)
    schema = pa.schema([("x", pa.float64())])

    def upstream():
        for index in range(batches):
            yield pa.record_batch([pa.array(np.full(131072, float(index)))], schema=schema)

    baseline = anon_bytes()
    peak = 0
    cache = StreamCache(pa.RecordBatchReader.from_batches(schema, upstream()), **options)
    streams = [cache.reader() for _ in range(readers)]
    total = 0.0
    for step in range(batches):
        for stream in streams:
            batch = next(stream)
            total += batch.column(0)[0].as_py()
        peak = max(peak, anon_bytes() - baseline)
    for stream in streams:
        for batch in stream:
            total += batch.column(0)[0].as_py()
    peak = max(peak, anon_bytes() - baseline)
    for _ in range(replays):
        for batch in cache.reader():
            total += batch.column(0)[0].as_py()
            peak = max(peak, anon_bytes() - baseline)
    expected = (readers + replays) * sum(range(batches))
    print(json.dumps({"peak": peak, "ok": total == expected, "stats": repr(cache.stats)}))
    cache.close()
    """
)


def peak_growth(**options: object) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(options)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(completed.stdout)


def test_lock_step_readers_with_max_readers_keep_ram_bounded() -> None:
    bounded = peak_growth(batches=400, readers=2, max_readers=2)
    assert bounded["ok"], bounded
    # 400 MiB streamed; the retained window is a batch or two.
    assert bounded["peak"] < 48 * MB, bounded
    unbounded = peak_growth(batches=100, readers=2)
    assert unbounded["ok"]
    assert unbounded["peak"] > 90 * MB, "the measurement cannot see retained batches"


def test_disk_mode_with_a_small_hot_layer_keeps_ram_bounded(tmp_path: Path) -> None:
    result = peak_growth(
        batches=400,
        readers=2,
        disk_path=str(tmp_path),
        disk_capacity=1 << 30,
        memory_capacity=8 * MB,
        replays=2,
    )
    assert result["ok"], result
    # 400 MiB through the cache, replayed twice from the file; cold batches are file pages, not anonymous memory.
    assert result["peak"] < 64 * MB, result
    assert list(tmp_path.iterdir()) == []
