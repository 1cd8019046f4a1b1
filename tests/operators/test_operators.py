"""The operators on their own: what fails fast with our sentence, what is recorded, what is left for a retry.

A fake store records the calls an operator makes, so these run without Airflow's database, a sandbox
or GX; the pipelines as a whole run in ``tests/dags``.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.checksum.run import ChecksumResult
from include.model import InvoiceHeader
from include.settings import InvalidSettings, ProviderSettings
from include.sql.store import InvoiceStateError
from plugins.operators.activate import ActivateInvoiceOperator
from plugins.operators.base import InvoiceOperator, InvoiceTaskError, OutcomeRecorded
from plugins.operators.checksum import ChecksumValidationOperator
from plugins.operators.deactivate import DeactivateInvoiceOperator
from plugins.operators.fetch import FetchInvoiceOperator

HEADER = InvoiceHeader("microsoft", "G1", "EUR", Decimal("10.00"))
CONTEXT = {
    "dag": SimpleNamespace(dag_id="provider_invoice_manual_sync"),
    "run_id": "manual__1",
    "ti": SimpleNamespace(log_url="http://airflow/log", try_number=1, max_tries=2),
    "dag_run": SimpleNamespace(triggering_user_name="alice", run_type="manual"),
}


class FakeStore:
    """Records every call; ``invoice`` is what ``get_invoice`` answers."""

    def __init__(self, invoice: dict | None = None):
        self.invoice = invoice
        self.errors: dict[str, Exception] = {}
        """Method name -> what it raises."""
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            if name in self.errors:
                raise self.errors[name]
            return self.invoice if name == "get_invoice" else None

        return record

    def named(self, name: str) -> list[tuple[tuple, dict]]:
        return [(args, kwargs) for called, args, kwargs in self.calls if called == name]


@pytest.fixture
def store(monkeypatch):
    fake = FakeStore()
    monkeypatch.setattr(InvoiceOperator, "store", lambda self: fake)
    monkeypatch.setattr("include.settings.load_settings", lambda provider, account=None: ProviderSettings())
    monkeypatch.setattr("include.sql.usage.compare_staged_usage", lambda engine, stage_id: ())  # no database here
    return fake


class Raising(InvoiceOperator):
    def __init__(self, *, error: Exception, **kwargs):
        super().__init__(task_id="raising", provider="microsoft", invoice_id="G1", **kwargs)
        self.error = error

    def execute_invoice(self, context):
        with self.failures_recorded(context, self.store(), HEADER):
            raise self.error


@pytest.mark.parametrize(
    "error",
    [InvalidSettings("invoice_sync_settings.microsoft.tax must be one of lines, header."), InvoiceStateError("No.")],
)
def test_our_errors_fail_at_once_with_their_sentence_and_are_recorded(store, error):
    with pytest.raises(AirflowFailException) as caught:
        Raising(error=error).execute(CONTEXT)

    assert str(caught.value) == str(error)
    [(args, _)] = store.named("record_failure")
    assert args[1:] == (HEADER, str(error), "http://airflow/log")
    assert args[0].run_id == "manual__1"


def test_other_errors_are_left_for_a_retry_and_recorded_as_one_sentence_of_ours(store):
    sentence = "The raising of microsoft invoice G1 failed unexpectedly: ConnectionResetError: peer went away"
    with pytest.raises(InvoiceTaskError) as caught:
        Raising(error=ConnectionResetError("peer went away")).execute(CONTEXT)

    assert str(caught.value) == sentence  # not an AirflowFailException: the task's retries apply
    [(args, _)] = store.named("record_failure")
    assert args[2] == sentence


def test_a_recorded_outcome_is_not_recorded_again(store):
    with pytest.raises(OutcomeRecorded, match="checksum"):
        Raising(error=OutcomeRecorded("checksum")).execute(CONTEXT)

    assert store.named("record_failure") == []


def test_fetch_refuses_an_override_without_reason_before_writing_anything(store):
    fetch = FetchInvoiceOperator(
        task_id="fetch", provider="microsoft", invoice_id="G1", override_tolerance=5.5, override_reason=None
    )
    with pytest.raises(AirflowFailException, match=r"^override_reason is required when override_tolerance is set\.$"):
        fetch.execute(CONTEXT)

    assert store.calls == []


def test_fetch_refused_by_the_store_fails_at_once_and_downloads_nothing(store, monkeypatch):
    store.errors["start_attempt"] = InvoiceStateError("Invoice 4100002 of synnex is active; run it later.")
    monkeypatch.setattr("include.providers.ProviderSpec.get_hook", lambda self: pytest.fail("nothing is downloaded"))
    fetch = FetchInvoiceOperator(task_id="fetch", provider="synnex", invoice_id="4100002")
    with pytest.raises(AirflowFailException, match=r"^Invoice 4100002 of synnex is active; run it later\.$"):
        fetch.execute(CONTEXT)

    assert [name for name, *_ in store.calls] == ["start_attempt"]


def test_fetch_refuses_an_id_that_breaks_the_providers_rule_before_anything(store):
    fetch = FetchInvoiceOperator(task_id="fetch", provider="microsoft", invoice_id="../G1")
    with pytest.raises(AirflowFailException, match="is not a Microsoft Partner Center invoice id"):
        fetch.execute(CONTEXT)

    assert store.calls == []


def test_deactivate_refuses_a_blank_reason(store):
    deactivate = DeactivateInvoiceOperator(task_id="deactivate", provider="microsoft", invoice_id="G1", reason="  ")
    with pytest.raises(AirflowFailException, match="reason is required"):
        deactivate.execute(CONTEXT)

    assert store.calls == []


def test_activate_blocks_an_inactive_currency_and_says_which(store, monkeypatch):
    accounts = {"partner_center_apac": ProviderSettings(active_currencies=("USD",))}
    monkeypatch.setattr("include.settings.load_settings", lambda provider, account: accounts[account])
    store.invoice = {"status": "inactive", "currency_code": "EUR", "account": "partner_center_apac"}
    activate = ActivateInvoiceOperator(task_id="activate", provider="microsoft", invoice_id="G1")
    with pytest.raises(OutcomeRecorded, match="EUR, which is not an active currency for Microsoft Partner Center"):
        activate.execute(CONTEXT)

    assert len(store.named("block_activation")) == 1
    assert store.named("activate") == []


def _checksum(**kwargs) -> ChecksumValidationOperator:
    staged = {"stage_id": "s1", "line_count": 1, "header": HEADER.to_xcom()}
    return ChecksumValidationOperator(
        task_id="checksum_validation", provider="microsoft", invoice_id="G1", staged=staged, **kwargs
    )


def _result(passed: bool) -> ChecksumResult:
    totals = dict.fromkeys(("header_total", "detail_total", "difference", "tolerance_applied"), Decimal(1))
    return ChecksumResult(passed, totals, {"hints": []}, None, None if passed else "Checksum error on G1.", "report")


def test_checksum_records_a_failing_result_with_the_override_note(store, monkeypatch):
    runs = []
    monkeypatch.setattr(
        "include.checksum.run.run_checksum", lambda *args, **kwargs: runs.append(kwargs) or _result(False)
    )
    with pytest.raises(OutcomeRecorded, match=r"^Checksum error on G1\.$"):
        _checksum(override_tolerance=1329.7525, override_reason="credit note").execute(CONTEXT)

    assert runs[0]["tolerance"] == Decimal(1330)
    [(args, kwargs)] = store.named("record_checksum_error")
    assert kwargs["message"] == "Checksum error on G1."
    assert kwargs["note"] == "Override tolerance 1329.7525 (applied as 1330): credit note"
    assert store.named("record_checksum_pass") == store.named("record_failure") == []


def test_checksum_records_a_pass_and_hands_the_totals_on(store, monkeypatch):
    monkeypatch.setattr("include.checksum.run.run_checksum", lambda *args, **kwargs: _result(True))
    checked = []
    monkeypatch.setattr("include.checksum.usage.check_usage", lambda *args, **kwargs: checked.append(kwargs))

    handed_on = _checksum().execute(CONTEXT)

    assert handed_on["stage_id"] == "s1" and handed_on["totals"]["difference"] == "1"
    assert [kwargs["compared"] for kwargs in checked] == [()]  # the comparison read while the lines were checked
    assert store.named("shape_stage") == [(("s1", "microsoft", "G1"), {})]  # keyed for the load meanwhile
    [(_, kwargs)] = store.named("record_checksum_pass")
    assert kwargs["note"] is None


def test_a_usage_checksum_error_before_its_escalation_day_is_recorded_and_does_not_alert(store, monkeypatch, tmp_path):
    from datetime import date

    from include.checksum.usage import UsageCheck
    from include.sql.usage import SubscriptionUsage
    from plugins.operators.base import UsageRetryPending

    row = SubscriptionUsage("sub-1", "cust-1", Decimal("5.00"), Decimal("2.5"), 1, 1, date(2026, 1, 20), "EUR")
    check = UsageCheck(HEADER, (row,), Decimal(1), False, escalates_on=date(2026, 2, 11), checked_on=date(2026, 2, 3))
    monkeypatch.setattr("include.checksum.run.run_checksum", lambda *args, **kwargs: _result(True))
    monkeypatch.setattr("include.checksum.usage.check_usage", lambda *args, **kwargs: check)
    monkeypatch.setenv("INVOICE_DATA_DOCS_DIR", str(tmp_path))

    with pytest.raises(UsageRetryPending, match="sub-1") as raised:
        _checksum().execute(CONTEXT)

    assert raised.value.alert is False
    [(_, kwargs)] = store.named("record_checksum_error")
    assert kwargs["usage_mismatches"] == (row,) and kwargs["diagnostics"]["check"] == "usage"
    assert kwargs["diagnostics"]["hints"][0]["cause"] == "usage_mismatch"
    assert (tmp_path / "usage_mismatches" / "microsoft" / "G1" / "manual__1.csv").is_file()
    assert store.named("record_checksum_pass") == []
