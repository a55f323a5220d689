"""The bounded memo datasets and scans remember filters with.

Internal parts under test: ``batchcorder._memo``.
"""

from __future__ import annotations

import threading

import pytest

from batchcorder._memo import Memo


def test_the_least_recently_used_key_goes_first() -> None:
    memo: Memo[int, int] = Memo(capacity=3)
    for key in range(3):
        memo.get(key, lambda key=key: key * 10)
    memo.get(0, lambda: -1)  # 0 is used again: 1 is now the oldest
    memo.get(3, lambda: 30)
    assert len(memo) == 3
    assert memo.get(0, lambda: -1) == 0
    assert memo.get(1, lambda: -1) == -1


def test_none_is_a_remembered_answer() -> None:
    memo: Memo[str, None] = Memo()
    calls = []
    for _ in range(3):
        memo.get("k", lambda: calls.append(1))
    assert calls == [1]


def test_threads_asking_for_one_key_all_get_one_answer() -> None:
    memo: Memo[int, object] = Memo(capacity=16)
    start = threading.Barrier(8)
    seen: dict[int, set[int]] = {key: set() for key in range(6)}
    lock = threading.Lock()

    def ask() -> None:
        start.wait(timeout=30)
        for index in range(300):
            key = index % 6
            answer = memo.get(key, object)
            with lock:
                seen[key].add(id(answer))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert all(len(answers) == 1 for answers in seen.values())


def test_a_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Memo(capacity=0)
