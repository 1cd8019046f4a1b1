"""Run a provider's GX expectation suite on staged lines, with run-time expectation parameters.

Money reaches GX as integer micros: GX's pandas ``column.sum`` turns Decimal into float, but an int64
sum is exact, and the bounds ``header_total_micros -/+ tolerance_micros`` are exact while they stay
below 2**53 (about nine billion currency units), which :func:`validate_lines` enforces.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx  # noqa: E402  (only task code imports this module)
from great_expectations.checkpoint import UpdateDataDocsAction  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder  # noqa: E402

logging.getLogger("great_expectations").setLevel(logging.WARNING)
"""GX logs every parsed suite parameter at INFO; the on-call report must stay at the top of the task log."""

SUITES_DIR = Path(__file__).parent / "suites"
DATA_DOCS_SITE = "invoice_checksums"
_EXACT_LIMIT = 2**53


class KeepPagesSiteIndexBuilder(DefaultSiteIndexBuilder):
    """GX's default index builder deletes every page its (ephemeral) context has no result for, which
    would delete the pages of all earlier validations; this one keeps them."""

    def build(self, skip_and_clean_missing=True, build_index=True):
        return super().build(skip_and_clean_missing=False, build_index=build_index)


@dataclass(frozen=True)
class SuiteOutcome:
    success: bool
    observed_sum_micros: int
    failed_expectations: tuple[str, ...]
    data_docs_page: str | None
    statistics: dict


def load_suite_definition(suite_file: str) -> dict:
    """The reviewable suite file, as a dict GX can build an ExpectationSuite from."""
    return json.loads((SUITES_DIR / suite_file).read_text())


def data_docs_root() -> Path:
    """Where Data Docs pages are written: ``$INVOICE_DATA_DOCS_DIR`` or ``$AIRFLOW_HOME/data_docs``."""
    configured = os.environ.get("INVOICE_DATA_DOCS_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "data_docs"


def validate_lines(
    suite_file: str,
    frame,
    *,
    header_total_micros: int,
    tolerance_micros: int,
    invoice_currencies: list[str],
    validation_name: str,
    run_name: str,
    docs_dir: Path | None = None,
) -> SuiteOutcome:
    """Validate ``frame`` (columns ``line_no``, ``category``, ``currency_code``, ``amount_micros``)."""
    if abs(header_total_micros) + tolerance_micros >= _EXACT_LIMIT:
        raise ValueError("The header total is too large for an exact checksum bound (over 9 billion units).")
    docs_dir = docs_dir or data_docs_root()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name=DATA_DOCS_SITE,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "KeepPagesSiteIndexBuilder", "module_name": __name__},
        },
    )
    suite = context.suites.add(gx.ExpectationSuite(**load_suite_definition(suite_file)))
    batch = context.data_sources.add_pandas("staged_lines").add_dataframe_asset("lines")
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name=validation_name, data=batch.add_batch_definition_whole_dataframe("invoice"), suite=suite
        )
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{validation_name}_checkpoint",
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs", site_names=[DATA_DOCS_SITE])],
            result_format="SUMMARY",
        )
    )
    result = checkpoint.run(
        batch_parameters={"dataframe": frame},
        expectation_parameters={
            "header_total_micros": header_total_micros,
            "tolerance_micros": tolerance_micros,
            "invoice_currencies": invoice_currencies,
        },
        run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(UTC)),
    )
    identifier, validation = next(iter(result.run_results.items()))
    failed = tuple(r.expectation_config.type for r in validation.results if not r.success)
    sum_results = [r for r in validation.results if r.expectation_config.type == "expect_column_sum_to_be_between"]
    observed = sum_results[0].result.get("observed_value") if sum_results else None
    urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=DATA_DOCS_SITE)
    return SuiteOutcome(
        success=bool(validation.success),
        observed_sum_micros=int(observed or 0),
        failed_expectations=failed,
        data_docs_page=urls[0]["site_url"] if urls else None,
        statistics=dict(validation.statistics),
    )
