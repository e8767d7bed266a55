"""The store every worker process shares (app/state_store.py): leases taken by
exactly one of several processes at once, lapsing when not renewed; documents
merged in one transaction; cache files written whole under concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from pathlib import Path

from app.state_store import StateStore, new_owner, write_atomically


def _try_claim(path: str, barrier, results) -> None:
    store = StateStore(Path(path))
    owner = new_owner()
    barrier.wait()
    results.put((owner, store.claim("speed", owner, 30, value=owner)))


def test_one_of_several_processes_claiming_at_once_gets_the_lease(tmp_path):
    path = tmp_path / "state.sqlite3"
    StateStore(path)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    processes = [context.Process(target=_try_claim, args=(str(path), barrier, results)) for _ in range(4)]
    for p in processes:
        p.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    for p in processes:
        p.join(30)
    winners = [owner for owner, refused_by in outcomes if refused_by is None]
    assert len(winners) == 1
    # The losers were told who holds it (the value stored with the lease).
    assert {refused_by for _, refused_by in outcomes if refused_by is not None} == set(winners)
    assert StateStore(path).holder("speed") == (winners[0], winners[0])


def test_a_lease_not_renewed_lapses_and_another_may_take_it(tmp_path):
    store = StateStore(tmp_path / "state.sqlite3")
    assert store.claim("warmup", "a", ttl_s=1.5) is None  # 1.5 s: a stall of the CI machine can't lapse it early
    assert store.claim("warmup", "b", ttl_s=1.5) == "a"
    assert store.renew("warmup", "a", ttl_s=1.5)
    time.sleep(1.6)  # "a" died: no renewal
    assert store.holder("warmup") is None
    assert store.claim("warmup", "b", ttl_s=30) is None
    assert not store.renew("warmup", "a", ttl_s=30)  # "a" lost it
    store.release("warmup", "a")  # not the holder: no effect
    assert store.holder("warmup") == ("b", None)
    store.release("warmup", "b", then=("job", "1", {"status": "done"}))
    assert store.holder("warmup") is None and store.get("job", "1") == {"status": "done"}


def test_reads_in_a_snapshot_do_not_straddle_a_write(tmp_path):
    """A job's document and its lease read in one snapshot: a release that
    lands between the two reads (another thread) is seen whole or not at all."""
    store = StateStore(tmp_path / "state.sqlite3")
    store.claim("speed", "a", ttl_s=30, value="1", then=("job", "1", {"status": "running"}))
    finisher = threading.Thread(target=store.release, args=("speed", "a"),
                                kwargs={"then": ("job", "1", {"status": "done"})})
    with store.snapshot():
        assert store.get("job", "1") == {"status": "running"}
        finisher.start()
        finisher.join()
        assert store.holder("speed") == ("a", "1")  # still the state the first read saw
    assert store.get("job", "1") == {"status": "done"} and store.holder("speed") is None


def test_documents_newest_first_and_trimmed(tmp_path):
    store = StateStore(tmp_path / "state.sqlite3")
    for i in range(5):
        store.put("job", str(i), {"n": i})
        time.sleep(0.01)
    store.put("job", "2", {"n": 2, "status": "cancelled"})  # rewritten last: now the newest
    assert store.get("job", "2") == {"n": 2, "status": "cancelled"} and store.get("job", "nope") is None
    assert [d["n"] for d in store.newest("job", 3)] == [2, 4, 3]
    store.keep_newest("job", 2)
    assert sorted(d["n"] for d in store.newest("job", 10)) == [2, 4]


def test_concurrent_writers_never_leave_half_a_file(tmp_path):
    path = tmp_path / "analysis.json"
    write_atomically(path, json.dumps({"writer": -1, "rows": []}))
    stop, seen, errors = threading.Event(), set(), []

    def writer(number: int) -> None:
        for _ in range(40):
            write_atomically(path, json.dumps({"writer": number, "rows": list(range(20_000))}))

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.add(json.loads(path.read_text())["writer"])
            except ValueError as exc:
                errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == [] and len(seen) > 1
    assert json.loads(path.read_text())["rows"] == list(range(20_000))
    assert list(tmp_path.glob(".*.tmp")) == []  # no temporary file left behind
