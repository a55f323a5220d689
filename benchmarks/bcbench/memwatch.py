"""Peak anonymous memory of a child process, sampled from outside it.

``VmHWM`` and ``ru_maxrss`` count file-backed pages too, so a memory-mapped
cache file or pages of a file being read would look like RAM the cache holds.
``RssAnon`` in ``/proc/<pid>/status`` counts only anonymous resident pages
(heap, arena and anonymous ``mmap`` allocations). The kernel keeps no
high-water mark of it, so a thread of the *parent* process reads it in a
tight loop: sampling from another process means the child's GIL, or a long C
call holding it, cannot delay a sample.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_INTERVAL_S = 0.0005
"""Pause between two samples (reading the status file takes ~20 us more)."""


def rss_anon_bytes(pid: int | str = "self") -> int:
    """Return ``RssAnon`` of ``pid`` in bytes.

    Parameters
    ----------
    pid : int or "self"
        Process to inspect.

    Returns
    -------
    int

    Raises
    ------
    OSError
        If the process is gone.
    """
    text = Path(f"/proc/{pid}/status").read_text()
    for line in text.splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no RssAnon line in /proc/{pid}/status")


@dataclass
class Watch:
    """Samples collected by :class:`AnonWatcher`."""

    peak_bytes: int = 0
    samples: int = 0
    timeline: list[tuple[float, int]] = field(default_factory=list)


class AnonWatcher:
    """Sample ``RssAnon`` of a process from a background thread.

    Parameters
    ----------
    process : subprocess.Popen
        The child to watch.
    """

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-anon-watcher", daemon=True)
        self.watch = Watch()

    def _loop(self) -> None:
        start = time.perf_counter()
        last_record = -1.0
        while not self._stop.is_set():
            try:
                value = rss_anon_bytes(self._process.pid)
            except (OSError, ValueError):
                break
            watch = self.watch
            watch.samples += 1
            watch.peak_bytes = max(watch.peak_bytes, value)
            now = time.perf_counter() - start
            if now - last_record >= 0.05:
                watch.timeline.append((round(now, 3), value))
                last_record = now
            time.sleep(SAMPLE_INTERVAL_S)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> Watch:
        """Stop sampling and return what was seen."""
        self._stop.set()
        self._thread.join()
        return self.watch
