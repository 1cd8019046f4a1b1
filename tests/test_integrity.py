"""Issue 12: no input, race or failure corrupts another invoice or hides what happened.

Below the DAGs: the invoice-id rule, the hooks' hosts, the per-invoice lock (two real processes at
once), failure recording, the stage lifecycle, the money parser, text lengths, settings and sentences,
on SQLite and PostgreSQL wherever a database is involved. ``tests/dags/test_integrity.py`` drives the
same through Airflow.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from include.model import InvalidProviderData, InvoiceHeader, InvoiceLine, parse_money, to_micros
from include.providers import PROVIDERS, InvalidInvoiceId, get_provider
from include.settings import InvalidSettings, parse_settings
from include.sql.schema import invoice_sync_attempt, line_stage_table, stage_id_for
from include.sql.stage import open_stages
from include.sql.store import MESSAGE_LIMIT, AttemptKey, InvoiceStateError, utcnow

VICTIM = "G0600H1X05"
HOSTILE_IDS = [
    f"{VICTIM}#x",
    f"{VICTIM}?size=1",
    f"x/../{VICTIM}",
    "../invoices",
    f"{VICTIM}/lineitems",
    f"{VICTIM}\n",
    "G\nX",
    "G" * 5000,
    "G'1",
    'G"1',
    "..",
    "",
    " ",
]


# -- 1. one invoice-id rule per provider ----------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@pytest.mark.parametrize("invoice_id", HOSTILE_IDS, ids=lambda i: repr(i[:20]))
def test_every_hostile_id_breaks_each_providers_rule_with_one_sentence(provider, invoice_id):
    with pytest.raises(InvalidInvoiceId) as refused:
        get_provider(provider).check_invoice_id(invoice_id)
    sentence = str(refused.value)
    assert sentence.endswith(".") and "\n" not in sentence and len(sentence) < 200


def test_real_ids_keep_the_rule():
    assert get_provider("microsoft").check_invoice_id("G0526A0002") == "G0526A0002"
    assert get_provider("synnex").check_invoice_id(5000001) == "5000001"  # Ion lists ids as numbers


def test_the_trigger_form_pattern_refuses_what_no_provider_allows():
    import jsonschema

    from include.params import invoice_id_param

    schema = invoice_id_param().schema
    for invoice_id in HOSTILE_IDS:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(invoice_id, schema)
    jsonschema.validate(VICTIM, schema)


@pytest.mark.parametrize("hook_path", [spec.hook_path for spec in PROVIDERS.values()])
def test_hooks_refuse_hostile_ids_before_any_request(serve, demo_data_dir, hook_path):
    import importlib

    server = serve(demo_data_dir)
    module, _, name = hook_path.rpartition(".")
    hook = getattr(importlib.import_module(module), name)()
    for invoice_id in HOSTILE_IDS:
        with pytest.raises(InvalidInvoiceId):
            hook.get_invoice(invoice_id)
    assert server.requests == []


def test_a_listed_id_that_breaks_the_rule_is_reported_not_fetched(serve, tmp_path, capsys):
    from include.sandbox.demo_data import write_demo_data
    from plugins.hooks.partner_center import PartnerCenterHook

    write_demo_data(tmp_path)
    hostile = tmp_path / "microsoft" / "HOSTILE"
    hostile.mkdir()
    victim_json = (tmp_path / "microsoft" / "D0526A0001" / "invoice.json").read_text()
    (hostile / "invoice.json").write_text(victim_json.replace('"id":"D0526A0001"', '"id":"../invoices"'))
    serve(tmp_path)

    listed = [invoice["id"] for invoice in PartnerCenterHook().list_invoices()]

    assert "../invoices" not in listed and "D0526A0001" in listed
    assert "holds an id that is not fetched: '../invoices' is not a Microsoft Partner Center invoice id" in (
        capsys.readouterr().out
    )


def test_credentialed_requests_go_only_to_the_configured_hosts(serve, demo_data_dir):
    from plugins.hooks.http import UntrustedUrl
    from plugins.hooks.partner_center import GRAPH_RESOURCE, PartnerCenterHook
    from plugins.hooks.streamone_ion import StreamOneIonHook

    server = serve(demo_data_dir)
    elsewhere = "http://127.0.0.2:9/v1/invoices"  # loopback, so nothing could leave the machine anyway
    microsoft = PartnerCenterHook()
    with pytest.raises(UntrustedUrl, match=r"pointed a request at http://127\.0\.0\.2:9, which is not a host"):
        microsoft._v1(elsewhere)  # a next link or continuation link from an answer
    with pytest.raises(UntrustedUrl):
        microsoft.get_json(elsewhere, headers=microsoft.auth_headers(GRAPH_RESOURCE))  # an operation location
    with pytest.raises(UntrustedUrl):
        StreamOneIonHook()._get(elsewhere, {})
    assert not [r for r in server.requests if "invoices" in r["path"]]


def test_export_blobs_are_read_with_their_sas_and_without_the_bearer_token(serve, demo_data_dir):
    from plugins.hooks.partner_center import PartnerCenterHook

    serve(demo_data_dir)
    hook = PartnerCenterHook()
    sent = []
    original = hook.session.request

    def recording(method, url, **kwargs):
        sent.append((url, "Authorization" in (kwargs.get("headers") or {})))
        return original(method, url, **kwargs)

    hook.session.request = recording
    assert sum(batch.count for batch in hook.iter_export_batches("G0526A0002")) == 2345
    blobs = [bearer for url, bearer in sent if "/blobs/" in url]
    graph = [bearer for url, bearer in sent if "/graph/" in url]
    assert blobs and not any(blobs)
    assert graph and all(graph)


def test_nan_in_provider_json_is_a_data_error_and_not_retried(serve, tmp_path):
    from include.sandbox.demo_data import write_demo_data
    from plugins.hooks.partner_center import PartnerCenterHook
    from tests.hooks.helpers import calls

    write_demo_data(tmp_path)
    path = tmp_path / "microsoft" / "D0526A0001" / "invoice.json"
    path.write_text(re.sub(r'"totalCharges":[^,]+', '"totalCharges":NaN', path.read_text()))
    server = serve(tmp_path)

    with pytest.raises(InvalidProviderData, match=r"returned NaN where a number belongs"):
        PartnerCenterHook().get_invoice("D0526A0001")
    assert len(calls(server, "/invoices/D0526A0001")) == 1


# -- 2. per-invoice mutual exclusion: two real processes ------------------------------------------

PROVIDER = "microsoft"
AMOUNTS = [Decimal("10.50"), Decimal("-0.25"), Decimal("100")]
TOTAL = sum(AMOUNTS)


def _header(invoice_id=VICTIM, total=TOTAL):
    return InvoiceHeader(provider=PROVIDER, invoice_id=invoice_id, currency_code="EUR", header_total=total)


def _lines():
    return [InvoiceLine(i, "licence", amount, "EUR") for i, amount in enumerate(AMOUNTS, start=1)]


def _totals():
    total = sum(AMOUNTS)
    return {"header_total": total, "detail_total": total, "difference": Decimal(0), "tolerance_applied": Decimal(1)}


def _fetched(store, run_id: str) -> tuple[AttemptKey, str]:
    """What a fetch leaves: an open attempt and a stage."""
    key = AttemptKey(PROVIDER, VICTIM, "provider_invoice_manual_sync", run_id)
    store.start_attempt(key, triggered_by="test")
    stage_id = stage_id_for(key.dag_id, key.run_id, PROVIDER, VICTIM)
    store.stage(stage_id).fill(_lines())
    return key, stage_id


def _load_and_activate(url: str, key: AttemptKey, stage_id: str, barrier, results) -> None:
    """What the load and activate tasks of one run do, failure handler included, in a process of its own."""
    from include.sql.engine import engine_for
    from include.sql.store import InvoiceStore

    store = InvoiceStore(engine_for(url))
    barrier.wait(timeout=60)
    try:
        store.load_from_stage(key, _header(), stage_id, totals=_totals())
        store.activate(key)
        results.put((key.run_id, "activated"))
    except Exception as err:
        store.record_failure(key, _header(), str(err))
        results.put((key.run_id, str(err)))


RACE_ROUNDS = 3


def test_two_runs_loading_one_invoice_at_once_leave_it_active(invoice_db):
    url = invoice_db.engine.url.render_as_string(hide_password=False)
    spawn = multiprocessing.get_context("spawn")
    for round_no in range(RACE_ROUNDS):
        if round_no:  # the next round starts from an invoice a person deactivated
            invoice_db.deactivate(AttemptKey(PROVIDER, VICTIM, "deactivate", f"d{round_no}"), reason="x", author="t")
        runs = [_fetched(invoice_db, f"r{round_no}-{n}") for n in (1, 2)]
        barrier, results = spawn.Barrier(2), spawn.Queue()
        processes = [spawn.Process(target=_load_and_activate, args=(url, *run, barrier, results)) for run in runs]
        for process in processes:
            process.start()
        outcomes = dict(results.get(timeout=120) for _ in processes)
        for process in processes:
            process.join(timeout=60)
            assert process.exitcode == 0

        invoice = invoice_db.get_invoice(PROVIDER, VICTIM)
        assert invoice["status"] == "active", outcomes
        assert [line["amount"] for line in invoice_db.lines(PROVIDER, VICTIM)] == AMOUNTS
        assert "activated" in outcomes.values()
        for outcome in outcomes.values():
            assert outcome == "activated" or outcome.startswith(f"Invoice {VICTIM} of microsoft is ")
        this_round = [a for a in invoice_db.attempts(PROVIDER, VICTIM) if a["run_id"].startswith(f"r{round_no}-")]
        assert {a["outcome"] for a in this_round} <= {"activated", "failed"}
        assert all(a["finished_at"] is not None for a in this_round)
        assert open_stages(invoice_db.engine) == []


# -- 3. failure recording cannot fail -------------------------------------------------------------


def test_recording_a_failure_with_a_40_digit_total_and_a_huge_message_cannot_fail(invoice_db):
    key = AttemptKey(PROVIDER, "G0600H1X07", "provider_invoice_manual_sync", "run")
    invoice_db.start_attempt(key, triggered_by="test")
    monster = InvoiceHeader(PROVIDER, "G0600H1X07", "EUR", Decimal("1" * 40))

    invoice_db.record_failure(key, monster, "Boom:\n" + "x" * 1_000_000)

    [attempt] = invoice_db.attempts(PROVIDER, "G0600H1X07")
    assert attempt["outcome"] == "failed" and attempt["finished_at"] is not None
    assert len(attempt["message"]) == MESSAGE_LIMIT and attempt["message"].startswith("Boom: xxx")
    assert invoice_db.get_invoice(PROVIDER, "G0600H1X07") is None  # a header the table cannot hold is left out


def test_when_the_database_refuses_the_invoice_the_attempt_still_ends_failed(invoice_db, monkeypatch):
    from sqlalchemy.exc import DataError

    key = AttemptKey(PROVIDER, VICTIM, "provider_invoice_manual_sync", "run")
    invoice_db.start_attempt(key, triggered_by="test")

    def refuse(*args, **kwargs):
        raise DataError("INSERT ...", {}, Exception("numeric field overflow\nDETAIL: a long story"))

    monkeypatch.setattr(type(invoice_db), "_write_invoice", refuse)
    invoice_db.record_failure(key, _header(), "The fetch failed.")

    [attempt] = invoice_db.attempts(PROVIDER, VICTIM)
    assert attempt["outcome"] == "failed" and attempt["finished_at"] is not None
    assert attempt["message"] == (
        "The fetch failed. Recording the failure on the invoice failed as well: numeric field overflow DETAIL: a long "
        "story"
    )


def test_a_failure_handler_never_downgrades_an_invoice_another_run_loaded_or_activated(invoice_db):
    winner, winner_stage = _fetched(invoice_db, "winner")
    loser, loser_stage = _fetched(invoice_db, "loser")
    invoice_db.load_from_stage(winner, _header(), winner_stage, totals=_totals())

    invoice_db.record_failure(loser, _header(), "The loser failed.")
    assert invoice_db.get_invoice(PROVIDER, VICTIM)["status"] == "inactive"  # still loaded, still activatable
    invoice_db.activate(winner)
    invoice_db.record_failure(loser, _header(), "The loser failed again.")

    assert invoice_db.get_invoice(PROVIDER, VICTIM)["status"] == "active"
    invoice_db.stage(loser_stage).drop()


# -- 4. stage lifecycle ---------------------------------------------------------------------------


def test_a_refused_load_drops_its_stage(invoice_db):
    first, first_stage = _fetched(invoice_db, "first")
    second, second_stage = _fetched(invoice_db, "second")
    invoice_db.load_from_stage(first, _header(), first_stage, totals=_totals())
    invoice_db.activate(first)

    with pytest.raises(InvoiceStateError, match="is active; deactivate it before it is loaded again"):
        invoice_db.load_from_stage(second, _header(), second_stage, totals=_totals())
    assert open_stages(invoice_db.engine) == []


def test_staging_that_is_interrupted_drops_its_stage(invoice_db):
    def interrupted():
        yield from _lines()
        raise KeyboardInterrupt  # what a task being stopped looks like from inside

    with pytest.raises(KeyboardInterrupt):
        invoice_db.stage("interrupted").fill(interrupted())
    assert open_stages(invoice_db.engine) == []


def test_orphan_stages_are_listed_and_dropped_once_their_run_is_over(invoice_db):
    key, stage_id = _fetched(invoice_db, "killed")
    invoice_db.stage("no-attempt-owns-this").create()
    now = utcnow()
    owned = line_stage_table(stage_id).name
    stray = line_stage_table("no-attempt-owns-this").name

    assert invoice_db.orphan_stages(now) == [stray]
    assert set(open_stages(invoice_db.engine)) == {owned, stray}
    later = now + timedelta(hours=25)
    assert sorted(invoice_db.drop_orphan_stages(later)) == sorted([owned, stray])

    assert open_stages(invoice_db.engine) == []
    [attempt] = invoice_db.attempts(PROVIDER, VICTIM)
    assert attempt["outcome"] == "failed" and attempt["message"].startswith("The attempt was abandoned")


_KILLED_FETCH = """
import sys, time
from include.model import InvoiceLine
from include.sql.engine import engine_for
from include.sql.store import InvoiceStore
from decimal import Decimal

def lines():
    for n in range(1, 10**9):
        yield InvoiceLine(n, "licence", Decimal("1.00"), "EUR")
        if n == 1000:
            print("staging", flush=True)
            time.sleep(600)  # killed long before

InvoiceStore(engine_for(sys.argv[1])).stage(sys.argv[2]).fill(lines())
"""


def test_a_killed_fetch_leaves_an_orphan_that_the_next_sync_drops(invoice_db):
    key, stage_id = _fetched(invoice_db, "killed")
    invoice_db.stage(stage_id).drop()
    url = invoice_db.engine.url.render_as_string(hide_password=False)
    fetch = subprocess.Popen(
        [sys.executable, "-c", _KILLED_FETCH, url, stage_id], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    try:
        assert fetch.stdout.readline().strip() == "staging"  # the stage exists and its transaction is open
    finally:
        fetch.send_signal(signal.SIGKILL)
        fetch.wait(timeout=30)
    assert line_stage_table(stage_id).name in open_stages(invoice_db.engine)
    with invoice_db.engine.begin() as conn:  # the run this fetch belonged to is long over
        conn.execute(update(invoice_sync_attempt).values(started_at=utcnow() - timedelta(hours=30)))

    invoice_db.drop_orphan_stages()

    assert open_stages(invoice_db.engine) == []
    assert invoice_db.attempts(PROVIDER, VICTIM)[0]["outcome"] == "failed"


# -- 5. one money parser, text lengths ------------------------------------------------------------


@pytest.mark.parametrize(
    "value, complaint",
    [
        ("10.000000000000000000000000000000000001", "more than 6 decimal places"),
        ("0.1234567", "more than 6 decimal places"),
        ("1" * 40, "more than 18 digits before the decimal point"),
        ("1E+19", "more than 18 digits before the decimal point"),
        ("NaN", "is not a finite number"),
        ("Infinity", "is not a finite number"),
        ("ten", "is not a number"),
    ],
)
def test_the_money_parser_refuses_rather_than_rounds(value, complaint):
    with pytest.raises(InvalidProviderData, match=complaint):
        parse_money(value)
    with pytest.raises(InvalidProviderData, match=complaint):
        parse_money(Decimal(value) if value != "ten" else value)


def test_the_money_parser_keeps_what_the_column_holds():
    assert parse_money("123456789012345678.123456") == Decimal("123456789012345678.123456")
    assert to_micros(Decimal("1.50000000")) == 1_500_000  # trailing zeros are not decimals
    assert to_micros(Decimal("-0.000001")) == -1


def test_a_fine_amount_is_refused_alike_by_both_databases(invoice_db):
    with pytest.raises(InvalidProviderData, match="more than 6 decimal places"):
        invoice_db.stage("fine").fill([InvoiceLine(1, "licence", Decimal("10.0000001"), "EUR")])
    key = AttemptKey(PROVIDER, VICTIM, "dag", "run")
    invoice_db.start_attempt(key, triggered_by="test")
    with pytest.raises(InvalidProviderData, match="more than 6 decimal places"):
        invoice_db.check_header(_header(total=Decimal("10.000000000000000000000000000000000001")))
    assert open_stages(invoice_db.engine) == []


def test_too_long_texts_are_refused_alike_by_both_databases(invoice_db):
    stage_id = "long"
    line = InvoiceLine(7, "licence", Decimal("1"), "EUR", customer_name="N" * 50_000)

    with pytest.raises(InvalidProviderData) as refused:
        invoice_db.stage(stage_id).fill([InvoiceLine(1, "licence", Decimal("1"), "EUR"), line])
    assert str(refused.value) == "Line 7 has a customer_name of 50000 characters; the database holds at most 255."
    assert open_stages(invoice_db.engine) == []  # the fill that failed left no stage
    with pytest.raises(InvalidProviderData, match="The currency_code of invoice .* has 4 characters; the database"):
        invoice_db.check_header(InvoiceHeader(PROVIDER, VICTIM, "EURO", Decimal(1)))


# -- 6. settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, complaint",
    [
        ('{"microsfot": {"usage_mismatch_tolerance": 0}}', "unknown provider section(s) 'microsfot'"),
        ('{"microsoft": {"usage_mismatch_tolerance": 0.0000001}}', "tolerance 1E-7 has more than 6 decimal places"),
        ('{"synnex": {"usage_mismatch_tolerance": 1e30}}', "more than 18 digits before the decimal point"),
        ('{"microsoft": {"usage_mismatch_tolerance": 5000000}}', "must be at most 1000000, got 5000000"),
    ],
)
def test_settings_refuse_unknown_sections_and_tolerances_outside_the_money_scale(raw, complaint):
    for provider in PROVIDERS:  # any sync reads the whole variable
        with pytest.raises(InvalidSettings) as refused:
            parse_settings(raw, provider)
        assert complaint in str(refused.value)


# -- 7. sentences ---------------------------------------------------------------------------------


def test_a_retried_attempt_clears_its_previous_error(invoice_db):
    key, stage_id = _fetched(invoice_db, "retried")
    invoice_db.record_failure(key, _header(), "The checksum_validation failed unexpectedly: OperationalError: gone.")
    invoice_db.record_checksum_pass(key, totals=_totals(), diagnostics={}, note=None)
    [attempt] = invoice_db.attempts(PROVIDER, VICTIM)
    assert (attempt["outcome"], attempt["message"]) == ("checksum_passed", None)

    invoice_db.record_failure(key, _header(), "The fetch failed.")
    invoice_db.start_attempt(key, triggered_by="test")  # a retried fetch
    assert invoice_db.attempts(PROVIDER, VICTIM)[0]["message"] is None
    invoice_db.stage(stage_id).drop()


def test_an_unexpected_error_becomes_one_sentence_with_the_driver_text_cut_short():
    from sqlalchemy.exc import DataError

    from plugins.operators.base import failure_sentence

    err = DataError("INSERT INTO provider_invoice ...", {}, Exception("value too long\n" + "y" * 5000))
    sentence = failure_sentence("load", PROVIDER, VICTIM, err)
    assert sentence.startswith(f"The load of microsoft invoice {VICTIM} failed unexpectedly: DataError: value too long")
    assert "\n" not in sentence and len(sentence) < 400 and "INSERT" not in sentence
