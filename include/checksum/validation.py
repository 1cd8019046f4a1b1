"""Run a provider's GX expectation suite on staged lines, in the database, with run-time parameters.

GX reads the lines through its SQL datasource (a table asset on a view of the stage), so every metric is
a query the database answers: the sum of the amounts, the null and set checks, the duplicate line
numbers. Nothing is read back into Python, however many lines the invoice has.

Money reaches GX as integer micros computed by the database from the exact stored amounts (NUMERIC on
PostgreSQL, integer micros on SQLite), and the database adds them up as integers (PostgreSQL's
``SUM(bigint)`` is NUMERIC; SQLite's integer ``SUM`` raises on overflow instead of rounding). GX hands
the sum back as a float in its result, which is exact for integers below 2**53; the bounds
``header_total_micros -/+ tolerance_micros`` stay below 2**53 (about nine billion currency units,
enforced by :func:`validate_lines`), and a sum beyond them fails whichever way it is rounded.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
logging.getLogger("great_expectations").setLevel(logging.ERROR)
"""Set before GX is imported: its import logs hundreds of INFO lines, a run logs every parsed suite
parameter, and an index rebuild warns "Validation result not found" for every other invoice's page.
The on-call report must be the first thing of the failed task's log."""

from include.checksum.deferred_imports import defer  # noqa: E402

defer("scipy.stats", "altair")  # imported by GX for expectations and charts no suite of ours uses

import great_expectations as gx  # noqa: E402  (only task code imports this module)
from great_expectations.checkpoint import UpdateDataDocsAction  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier  # noqa: E402
from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder  # noqa: E402

import include.checksum.exact_sum  # noqa: E402, F401  (registers expect_column_exact_sum_to_be_within with GX)
from include.checksum.data_docs import AmountRow, data_docs_root, rewrite_page  # noqa: E402
from include.model import from_micros  # noqa: E402

for _name in list(logging.root.manager.loggerDict):
    if _name.startswith("great_expectations."):  # some GX modules set their own logger to INFO
        logging.getLogger(_name).setLevel(logging.NOTSET)

SUITES_DIR = Path(__file__).parent / "suites"
DATA_DOCS_SITE = "invoice_checksums"
_EXACT_LIMIT = 2**53
_WITHOUT_SAMPLES = {"result_format": "SUMMARY", "partial_unexpected_count": 0}
"""GX's SUMMARY (counts, observed values) without its samples of unexpected values: each sample is a query
of its own (``LIMIT 20``) that reads every line when none is unexpected (about 0.2 s per million lines on
PostgreSQL; for the uniqueness of ``line_no`` a second window over every line), where ``LIMIT 0`` reads
nothing.
A run that fails is validated once more with the samples, for its Data Docs page."""


class KeepPagesSiteIndexBuilder(DefaultSiteIndexBuilder):
    """GX's default index builder deletes every page its (ephemeral) context has no result for, which
    would delete the pages of all earlier validations; this one keeps them."""

    def build(self, skip_and_clean_missing=True, build_index=True):
        return super().build(skip_and_clean_missing=False, build_index=build_index)


@dataclass(frozen=True)
class StagedLines:
    """Where GX reads the lines: a database, and a table or view of ``line_no, category, currency_code,
    amount_micros`` in it."""

    url: str
    """The SQLAlchemy URL, password included (it goes to GX's datasource only, never into a log)."""
    table: str


@dataclass(frozen=True)
class SuiteOutcome:
    success: bool
    observed_sum_micros: int | Decimal | None
    """The sum GX observed; ``None`` when it is beyond 2**53 micros, where GX's float no longer holds it exactly."""
    failed_expectations: tuple[str, ...]
    data_docs_page: str | None


def load_suite_definition(suite_file: str) -> dict:
    """The reviewable suite file, as a dict GX can build an ExpectationSuite from."""
    return json.loads((SUITES_DIR / suite_file).read_text())


def validate_lines(
    suite_file: str,
    lines: StagedLines,
    *,
    header_total_micros: int,
    tolerance_micros: int,
    invoice_currencies: list[str],
    validation_name: str,
    run_name: str,
    docs_dir: Path | None = None,
) -> SuiteOutcome:
    """Validate the lines of ``lines.table``, where they are."""
    if abs(header_total_micros) + tolerance_micros >= _EXACT_LIMIT:
        raise ValueError("The header total is too large for an exact checksum bound (over 9 billion units).")
    context = _context(docs_dir)
    add_datasource = (
        context.data_sources.add_postgres if lines.url.startswith("postgresql") else context.data_sources.add_sqlite
    )
    # create_temp_table=False: GX would otherwise copy the query's rows into a temporary table first.
    datasource = add_datasource("staged_lines", connection_string=lines.url, create_temp_table=False)
    asset = datasource.add_table_asset("lines", table_name=lines.table)
    batch = asset.add_batch_definition_whole_table("invoice")
    checkpoint = _checkpoint(
        context, suite_file, batch, validation_name, result_format=dict(_WITHOUT_SAMPLES), docs=False
    )
    parameters = {
        "header_total_micros": header_total_micros,
        "tolerance_micros": tolerance_micros,
        "invoice_currencies": invoice_currencies,
    }
    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
    try:
        result = checkpoint.run(expectation_parameters=parameters, run_id=run_id)
        if not result.success:  # the same run once more, with GX's samples of what was unexpected, for its page
            checkpoint.result_format = "SUMMARY"
            checkpoint.save()
            result = checkpoint.run(expectation_parameters=parameters, run_id=run_id)
            if result.success:
                from include.checksum.run import StageChanged

                raise StageChanged(
                    "The staged lines failed the checksum suite, then passed it: they changed meanwhile."
                )
    finally:
        # The datasource's engines are this validation's alone: close their pooled connections now, or
        # a long-lived process (a test session, a worker) keeps them open for every validation it ran.
        datasource.get_execution_engine().close()
        datasource.get_engine().dispose()
    identifier, validation = next(iter(result.run_results.items()))
    context.build_data_docs(  # this context's site, for this validation and its suite (what the docs action does)
        site_names=[DATA_DOCS_SITE],
        resource_identifiers=[identifier, ExpectationSuiteIdentifier(name=validation.suite_name)],
    )
    failed = tuple(r.expectation_config.type for r in validation.results if not r.success)
    sum_results = [r for r in validation.results if r.expectation_config.type == "expect_column_sum_to_be_between"]
    observed = sum_results[0].result.get("observed_value") if sum_results else None
    urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=DATA_DOCS_SITE)
    page = urls[0]["site_url"] if urls else None
    observed_micros = int(observed or 0) if abs(observed or 0) < _EXACT_LIMIT else None
    rewrite_page(
        page,
        f"Checksum {validation_name}: {'passed' if validation.success else 'FAILED'}",
        invoice_currencies[0] if invoice_currencies else "",
        _amount_rows(header_total_micros, observed_micros, tolerance_micros),
    )
    return SuiteOutcome(
        success=bool(validation.success),
        observed_sum_micros=observed_micros,
        failed_expectations=failed,
        data_docs_page=page,
    )


def validate_usage(
    suite_file: str,
    frame,
    *,
    reconciliation_pre_tax: Decimal,
    tolerance: Decimal,
    invoice_currencies: list[str],
    validation_name: str,
    run_name: str,
    docs_dir: Path | None = None,
) -> SuiteOutcome:
    """Validate the usage ``frame`` (one row per subscription: ``subscription_id``, ``currency_code`` and the
    Decimal ``daily_rated_pre_tax``) against the reconciliation's pre-tax usage; exact at any scale.

    A pandas frame, not the stage table: it has one row per subscription (small), and its Decimals are added by
    :mod:`include.checksum.exact_sum` in Python, exact at 16 decimals, which neither GX's SQL sum (a float in
    its result) nor SQLite (text at that scale) would be. ``observed_sum_micros`` holds that exact Decimal.
    """
    context = _context(docs_dir)
    asset = context.data_sources.add_pandas("daily_rated_usage").add_dataframe_asset("subscriptions")
    checkpoint = _checkpoint(
        context, suite_file, asset.add_batch_definition_whole_dataframe("invoice"), validation_name
    )
    result = checkpoint.run(
        batch_parameters={"dataframe": frame},
        expectation_parameters={
            "reconciliation_pre_tax": str(reconciliation_pre_tax),
            "tolerance": str(tolerance),
            "invoice_currencies": invoice_currencies,
        },
        run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(UTC)),
    )
    identifier, validation = next(iter(result.run_results.items()))
    sums = [r for r in validation.results if r.expectation_config.type == "expect_column_exact_sum_to_be_within"]
    observed = sums[0].result.get("observed_value") if sums else None
    urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=DATA_DOCS_SITE)
    return SuiteOutcome(
        success=bool(validation.success),
        observed_sum_micros=Decimal(observed) if observed is not None else None,
        failed_expectations=tuple(r.expectation_config.type for r in validation.results if not r.success),
        data_docs_page=urls[0]["site_url"] if urls else None,
    )


def _context(docs_dir: Path | None):
    """An ephemeral GX context that writes its Data Docs pages under ``docs_dir`` and keeps earlier ones."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name=DATA_DOCS_SITE,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir or data_docs_root()),
            },
            "site_index_builder": {"class_name": "KeepPagesSiteIndexBuilder", "module_name": __name__},
        },
    )
    return context


def _checkpoint(
    context, suite_file: str, batch, validation_name: str, *, result_format: str | dict = "SUMMARY", docs: bool = True
):
    """A checkpoint of ``suite_file`` on ``batch``; with ``docs``, it updates the Data Docs."""
    suite = context.suites.add(gx.ExpectationSuite(**load_suite_definition(suite_file)))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=validation_name, data=batch, suite=suite)
    )
    return context.checkpoints.add(
        gx.Checkpoint(
            name=f"{validation_name}_checkpoint",
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs", site_names=[DATA_DOCS_SITE])] if docs else [],
            result_format=result_format,
        )
    )


def _amount_rows(header_micros: int, detail_micros: int | None, tolerance_micros: int) -> list[AmountRow]:
    """The suite's run-time bounds and the observed sum (when exact), as a billing person reads them."""
    observed = (
        [
            ("Detail total (sum of the lines)", detail_micros),
            ("Difference (header - detail)", header_micros - detail_micros),
        ]
        if detail_micros is not None
        else []
    )
    return [
        AmountRow(label, from_micros(micros), micros)
        for label, micros in (
            ("Header total", header_micros),
            *observed,
            ("Tolerance", tolerance_micros),
            ("Accepted detail total from", header_micros - tolerance_micros),
            ("Accepted detail total to", header_micros + tolerance_micros),
        )
    ]
