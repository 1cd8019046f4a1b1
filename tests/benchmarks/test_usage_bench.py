"""The usage benchmark at a tiny size: every daily-rated line staged and loaded, the exact total checked."""

from __future__ import annotations

import pytest

from benchmarks.usage import STEPS, run_db, table

LINES = 1_500  # five subscriptions of ten meters over 30 days


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_usage_bench_stages_checks_and_loads_every_line(kind, tmp_path, request):
    if kind == "postgres":
        request.getfixturevalue("postgres_available")
    result = run_db(kind, LINES, tmp_path)  # raises on a lost line or an inexact total

    assert set(result["steps"]) == set(STEPS) and result["recon_lines"] == 50
    assert result["steps"]["check"]["result"]["daily_rated_lines"] == LINES
    assert f"| {LINES:,} | {kind} | 50 |" in table([result])
