"""The benchmark harness at a tiny size: pipeline and floor import the same invoice to the same cent.

Behaviour only (nothing here is timed): the generated invoice's header total is what the pipeline
loads and activates and what the floor sums, exactly.
"""

from __future__ import annotations

from decimal import Decimal

from benchmarks.data import generate
from benchmarks.pipeline import STAGES, run_size, table

LINES = 2_000


def test_generated_invoice_is_deterministic(tmp_path):
    first = generate(LINES, tmp_path / "a", blob_lines=700)
    second = generate(LINES, tmp_path / "b", blob_lines=700)

    assert first.header_total == second.header_total
    assert len(first.blobs) == 3
    assert [first.blob_path(b).read_bytes() for b in first.blobs] == [
        second.blob_path(b).read_bytes() for b in second.blobs
    ]


def test_pipeline_and_floor_agree_exactly_on_sqlite(tmp_path):
    (result,) = run_size(LINES, ["sqlite"], cache_dir=tmp_path, log=lambda _: None)

    assert set(result.stages) == set(STAGES)
    assert result.pipeline_lines == result.floor_lines == LINES
    assert isinstance(result.pipeline_total, Decimal)
    assert result.pipeline_total == result.floor_total == result.header_total
    assert result.floor is not None and result.ratio > 0
    assert f"| {LINES:,} | sqlite |" in table([result])


def test_pipeline_floor_and_duckdb_reference_agree_exactly_on_postgres(tmp_path, postgres_available):
    (result,) = run_size(LINES, ["postgres"], cache_dir=tmp_path, log=lambda _: None)

    assert result.pipeline_total == result.floor_total == result.header_total
    assert result.reference is not None and result.reference_ratio > 0  # run_size checked its count and sum
    assert f"| {LINES:,} | postgres |" in table([result])
