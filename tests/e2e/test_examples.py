"""End-to-end: every example runs as a test, from its own directory layout."""

from __future__ import annotations

import pathlib
import subprocess
import sys

TRANSPORT_AGNOSTIC = True  # see conftest.py

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_example(name: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_quickstart_runs() -> None:
    out = run_example("quickstart.py")
    assert "2 workers ready" in out
    assert "word_count -> {'worker_pid'" in out
    assert "{0: 0, 1: 1, 2: 4, 3: 9, 4: 16, 5: 25, 6: 36, 7: 49}" in out
    assert "RemoteError: ZeroDivisionError" in out
    assert "InvalidArguments" in out
    assert "pool closed" in out


def test_sessions_example_runs() -> None:
    out = run_example("sessions.py")
    assert "alice's history: ['hi', 'how are you?']" in out
    assert "bob's history: ['hello']" in out
    assert "constraint: max" in out
    assert "sessions open: 2" in out and "sessions open after the block: 0" in out


def test_streaming_progress_example_runs() -> None:
    out = run_example("streaming_progress.py")
    assert "streamed 50 rows; best row {'row': " in out
    assert "stopped a 1000-row stream after 3 rows" in out
    assert "next stream: [{'row': 0, 'score': 0}]" in out
    assert "in flight now: 0" in out


def test_host_tools_example_runs() -> None:
    out = run_example("host_tools.py")
    assert "Ada asked 4 words; host tools here: ['count_words', 'lookup_user']" in out
    assert "hello, Grace" in out
    assert "a failing host tool reaches the worker as HostToolError" in out
    assert "host tools: ['count_words', 'lookup_user'] lookups: [7, 8, 9]" in out


def test_resilience_example_runs() -> None:
    out = run_example("resilience.py")
    assert "attempt 1 failed (RemoteError); next in" in out
    assert "lookup -> {'key': 'alpha', 'length': 5}" in out
    assert out.count("down -> RemoteError: ConnectionError") == 3
    assert "circuit 'backend': closed -> open" in out
    assert "ping -> CircuitOpen (retry in 0.5s)" in out
    assert "circuit 'backend': half_open -> closed" in out and "probe -> pong" in out
    assert "features: 250/1000" in out and "computed features of 1000 texts" in out


def test_arrow_example_runs() -> None:
    out = run_example("arrow_table.py")
    totals = "{'region': ['east', 'north', 'south'], 'amount_sum': [42.0, 153.0, 100.0]}"
    assert f"totals by region: {totals}" in out
    assert "scaled 2,000,000 rows (23 MB): all doubled: True" in out
    assert "histogram: 4 bins, 2,000,000 amounts; writeable: False" in out
    assert "after writing into the copy: [0]" in out


def test_two_pools_example_runs() -> None:
    out = run_example("two_pools.py")
    assert "pools: {'text': 2, 'index': 1}" in out
    assert "word_count -> [['cat', 1]]" in out
    assert "search 'cat' -> ['doc0', 'doc1']" in out
    assert "unknown tool 'serach' (did you mean 'search'?); no pool provides it" in out
    assert "index tools: ['add', 'prune', 'search']" in out
    assert "pruned: 10 rare words" in out
    assert "index worker: thread_safe=True, GIL: " in out
    assert "text: 1 requests, 2 workers, healthy" in out
    assert "index: 6 requests, 1 workers, healthy" in out
    assert "both pools closed" in out


def test_hardware_example_runs() -> None:
    out = run_example("hardware.py")
    assert "select_with_fallback -> " in out
    assert 'identity: {"accelerator": ' in out
    assert "threads_per_worker='auto'" in out
    assert out.count("BLAS/OpenMP threads") == 2
    assert "pool closed" in out


def test_telemetry_example_runs() -> None:
    out = run_example("telemetry.py")
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[1:4]}
    assert out.startswith("tool       calls errors  p50 ms")
    assert rows == {"broken": ["3", "3"], "classify": ["40", "0"], "summarize": ["5", "0"]}
    assert "worker event adapter.model.loaded: 2" in out
    assert "worker event adapter.tokenize.stop: 40" in out
    client, root = (line.split() for line in out.splitlines()[-2:])
    assert client[:3] == ["span", "classify", "kind=CLIENT"]
    assert root[:3] == ["span", "request", "kind=INTERNAL"]
    assert client[3] == root[3]  # one trace


def test_node_worker_example_runs() -> None:
    out = run_example("node_worker/main.py")
    assert "2 node workers: ['node', 'node']" in out
    assert "tools: ['greet', 'running_total', 'word_count']" in out
    assert "word_count -> 4 words" in out
    assert "running totals: [1, 3, 6, 10]" in out
    assert "hello, Ada" in out
    assert "InvalidArguments: text" in out
    assert "pool closed" in out


def test_port_from_executor_example_runs() -> None:
    out = run_example("port_from_executor.py")
    assert "ProcessPoolExecutor: 200 scores in " in out
    assert "snakepit_trio: 200 scores in " in out
    assert "same results: True" in out
    assert "tool score(x: int): Hash a number many times over (CPU-bound, about 5 ms)." in out
    assert "tool scores(start: int, count: int): Score count numbers from start" in out
    assert (
        "score(x='7') -> InvalidArguments: 'score': invalid argument 'x': expected int, got str"
    ) in out
    assert "streamed scores: True" in out
    assert "100,000 doubled in chunks of 256: sum 9,999,900,000" in out
    assert "pools closed" in out
