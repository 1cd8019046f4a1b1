"""The GX suite run in the database: exact at tolerance 0 where a float sum is not, a Data Docs page per run.

Every case runs on SQLite and PostgreSQL, on lines staged as the fetch stages them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import inspect

from include.checksum.validation import StagedLines, validate_lines
from include.model import InvoiceLine, to_micros
from include.sql.stage import drop_stage_table, open_stages

# Ten 0.1s, and cents that binary floats cannot hold: summed as floats they miss the header.
AMOUNTS = [Decimal("0.1")] * 10 + [Decimal("1329.7525"), Decimal("-0.07"), Decimal("0.01")] * 300
HEADER_TOTAL = sum(AMOUNTS)


@pytest.fixture(autouse=True)
def _stages_dropped(request):
    """These tests stage lines as the fetch does, for the suite to read; nothing here drops them as a run would."""
    if "invoice_db" not in request.fixturenames:
        yield
        return
    store = request.getfixturevalue("invoice_db")
    yield
    with store.engine.begin() as conn:
        for name in open_stages(store.engine):
            drop_stage_table(conn, name)


@contextmanager
def _staged(store, lines=None, stage_id: str = "s1", **view) -> Iterator[StagedLines]:
    """``lines`` (default: one usage line in EUR per amount) in a stage, as the checksum task reads them."""
    if lines is None:
        lines = [InvoiceLine(i, "usage", a, "EUR") for i, a in enumerate(AMOUNTS, start=1)]
    store.stage(stage_id).fill(lines)
    with store.stage(stage_id).amounts_view(**view) as name:
        yield StagedLines(store.engine.url.render_as_string(hide_password=False), name)


def _validate(lines: StagedLines, header_total, tolerance, tmp_path: Path):
    return validate_lines(
        "microsoft.json",
        lines,
        header_total_micros=to_micros(header_total),
        tolerance_micros=to_micros(tolerance),
        invoice_currencies=["EUR"],
        validation_name="G1",
        run_name="test",
        docs_dir=tmp_path,
    )


def test_exact_sum_passes_at_tolerance_zero(invoice_db, tmp_path):
    with _staged(invoice_db) as lines:
        outcome = _validate(lines, HEADER_TOTAL, Decimal(0), tmp_path)

    assert outcome.success, outcome.failed_expectations
    assert outcome.observed_sum_micros == to_micros(HEADER_TOTAL)
    page = Path(outcome.data_docs_page.removeprefix("file://"))
    assert page.is_file() and tmp_path in page.parents


def test_one_micro_off_fails_at_tolerance_zero(invoice_db, tmp_path):
    with _staged(invoice_db) as lines:
        outcome = _validate(lines, HEADER_TOTAL + Decimal("0.000001"), Decimal(0), tmp_path)

    assert not outcome.success
    assert outcome.failed_expectations == ("expect_column_sum_to_be_between",)


@pytest.mark.parametrize("tolerance, passes", [(Decimal("0.99"), False), (Decimal("1"), True)])
def test_tolerance_is_inclusive(invoice_db, tmp_path, tolerance, passes):
    with _staged(invoice_db) as lines:
        assert _validate(lines, HEADER_TOTAL + 1, tolerance, tmp_path).success is passes


def test_header_tax_counts_as_one_more_line(invoice_db, tmp_path):
    with _staged(invoice_db, header_tax_micros=to_micros(Decimal("19.07")), currency_code="EUR") as lines:
        outcome = _validate(lines, HEADER_TOTAL + Decimal("19.07"), Decimal(0), tmp_path)

    assert outcome.success, outcome.failed_expectations
    assert outcome.observed_sum_micros == to_micros(HEADER_TOTAL + Decimal("19.07"))


def test_foreign_currency_and_duplicate_lines_fail_the_suite(invoice_db, tmp_path):
    lines = [InvoiceLine(i, "usage", a, "EUR") for i, a in enumerate(AMOUNTS, start=1)]
    lines[3] = lines[3]._replace(currency_code="USD")
    lines[5] = lines[5]._replace(line_no=1)
    with _staged(invoice_db, lines) as staged:
        outcome = _validate(staged, HEADER_TOTAL, Decimal(1), tmp_path)

    assert set(outcome.failed_expectations) == {
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_unique",
    }
    # A failed run is validated again with GX's samples: its one page shows what was unexpected.
    page = Path(outcome.data_docs_page.removeprefix("file://"))
    assert "USD" in page.read_text()
    assert len(list(page.parent.glob("*.html"))) == 1


def test_lines_that_change_between_the_two_validations_fail_the_checksum(invoice_db, tmp_path, monkeypatch):
    """A failed run is validated again for its samples; passing then means the stage changed under it."""
    import great_expectations as gx

    from include.checksum.run import StageChanged

    lines = [InvoiceLine(i, "usage", a, "EUR") for i, a in enumerate(AMOUNTS, start=1)]
    lines[3] = lines[3]._replace(currency_code="USD")
    stage = invoice_db.stage("s1").table
    save = gx.Checkpoint.save

    def fixed_meanwhile(checkpoint):  # between the two runs: another writer corrects the staged line
        with invoice_db.engine.begin() as conn:
            conn.execute(stage.update().where(stage.c.line_no == 4).values(currency_code="EUR"))
        return save(checkpoint)

    monkeypatch.setattr(gx.Checkpoint, "save", fixed_meanwhile)
    with _staged(invoice_db, lines) as staged, pytest.raises(StageChanged, match="changed meanwhile"):
        _validate(staged, HEADER_TOTAL, Decimal(0), tmp_path)


def test_a_passing_run_reads_no_samples_of_unexpected_values(invoice_db, tmp_path):
    """Each sample is a query of its own that scans every line when nothing is unexpected: a passing run
    asks for none (``LIMIT 0``), so the database answers them without reading a line."""
    with _staged(invoice_db) as lines, _queries() as queries:
        assert _validate(lines, HEADER_TOTAL, Decimal(0), tmp_path).success

    samples = [sql for sql in queries if "AS unexpected_values" in sql]
    assert samples and all(" LIMIT 0" in sql for sql in samples), samples


@contextmanager
def _queries() -> Iterator[list[str]]:
    """The SQL of every query GX's own engines run meanwhile (it makes them from the URL), values inlined."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    queries: list[str] = []

    def record(conn, clause, multiparams, params, execution_options):
        try:  # GX fails an expectation whose query raises here
            sql = str(clause)
            if "unexpected_values" in sql:  # the samples' queries, with their LIMIT inlined
                sql = str(clause.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        except Exception:
            sql = ""
        queries.append(" ".join(sql.split()))

    event.listen(Engine, "before_execute", record)
    try:
        yield queries
    finally:
        event.remove(Engine, "before_execute", record)


def test_each_validation_keeps_its_data_docs_page(invoice_db, tmp_path):
    with _staged(invoice_db) as lines:
        pages = [Path(_validate(lines, HEADER_TOTAL, Decimal(0), tmp_path).data_docs_page[7:]) for _ in range(3)]

    assert len(set(pages)) == 3
    assert all(page.is_file() for page in pages)  # earlier pages survive later site builds


@pytest.mark.parametrize("invoice_db", ["postgres"], indirect=True)
def test_validations_leave_no_connection_open(invoice_db, tmp_path):
    def connections() -> int:
        with invoice_db.engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).scalar()

    with _staged(invoice_db) as lines:
        before = connections()
        for _ in range(3):
            _validate(lines, HEADER_TOTAL, Decimal(0), tmp_path)
        assert connections() == before


def test_the_view_goes_with_the_block_and_a_left_one_with_the_stage(invoice_db):
    with _staged(invoice_db) as lines:
        assert lines.table in inspect(invoice_db.engine).get_view_names()
    assert lines.table not in inspect(invoice_db.engine).get_view_names()

    view = invoice_db.stage("s1").amounts_view()
    view.__enter__()  # a task killed inside the block leaves the view: dropping the stage takes it along
    invoice_db.stage("s1").drop()
    assert inspect(invoice_db.engine).get_view_names() == [] and open_stages(invoice_db.engine) == []


def test_the_orphan_sweep_takes_a_left_view_along(invoice_db):
    invoice_db.stage("s1").fill([InvoiceLine(1, "usage", Decimal("1.5"), "EUR")])
    invoice_db.stage("s1").amounts_view().__enter__()  # the checksum task was killed inside its block

    assert invoice_db.drop_orphan_stages() == [invoice_db.stage("s1").table.name]
    assert inspect(invoice_db.engine).get_view_names() == [] and open_stages(invoice_db.engine) == []
