"""Issue 12 through Airflow (``dag.test()``), on SQLite and PostgreSQL.

A database where G0600H1X05 is active with lines invoiced to customers; then every hostile input the
issue names, as a user (trigger form) and as a provider (answers). None of them may change any row
but its own failed attempt, and no stage table may remain.
"""

from __future__ import annotations

import json
import random
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from include.providers.microsoft.demo import microsoft_invoice, office_line, sets_total, write_microsoft_invoice
from include.sql.schema import (
    invoice_sync_attempt,
    provider_invoice,
    provider_invoice_line,
    provider_invoice_note,
)
from include.sql.stage import open_stages
from include.sql.store import utcnow
from tests.dags.helpers import run_dag, task_states
from tests.test_integrity import HOSTILE_IDS, VICTIM

MANUAL, DEACTIVATE = "provider_invoice_manual_sync", "provider_invoice_deactivate"
BILLING = "billing_line_items"
START = date(2026, 1, 1)
CLAIMS_VICTIM, HUGE_TOTAL, FINE_TOTAL, LONG_NAME, USD_HEADER, NAN_TOTAL = (f"G0600H1X{n:02d}" for n in range(6, 12))


def _write(root, invoice_id, lines, **changes):
    sets = {("office", BILLING): lines}
    invoice = {**microsoft_invoice(invoice_id, START, sets_total(sets), sets), **changes}
    write_microsoft_invoice(root, invoice, sets)
    return root / "microsoft" / invoice_id / "invoice.json"


@pytest.fixture(scope="module")
def hostile_data(tmp_path_factory):
    """The victim, and one invoice for each way a provider's answer can be hostile."""
    root = tmp_path_factory.mktemp("hostile")
    rng = random.Random(12)
    lines = [office_line(rng, VICTIM, START) for _ in range(8)]
    _write(root, VICTIM, lines)
    claim = _write(root, CLAIMS_VICTIM, lines)  # served for G0600H1X06, but says it is the victim
    claim.write_text(claim.read_text().replace(f'"id":"{CLAIMS_VICTIM}"', f'"id":"{VICTIM}"'))
    _write(root, HUGE_TOTAL, lines, totalCharges=Decimal("1" * 40))
    _write(root, FINE_TOTAL, lines, totalCharges=Decimal("10.000000000000000000000000000000000001"))
    _write(root, LONG_NAME, [{**lines[0], "customerName": "N" * 300}, *lines[1:]])
    _write(root, USD_HEADER, lines, currencyCode="USD")  # lines in EUR, same total: difference 0.00
    nan = _write(root, NAN_TOTAL, lines)
    nan.write_text(re.sub(r'"totalCharges":[^,]+', '"totalCharges":NaN', nan.read_text()))
    return root


TABLES = (provider_invoice, provider_invoice_line, invoice_sync_attempt, provider_invoice_note)


def _rows(store) -> dict[str, list[tuple]]:
    """Every row of every invoice table, in a stable order, without columns a read cannot change."""
    with store.engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr) for t in TABLES}


def _manual(invoice_id, **conf):
    return run_dag(MANUAL, {"provider": "microsoft", "invoice_id": invoice_id, **conf})


@pytest.fixture
def active_victim(airflow_db, invoice_db, serve, hostile_data):
    """G0600H1X05 active, two of its lines invoiced to customers; returns the sandbox."""
    server = serve(hostile_data)
    dag_run = _manual(VICTIM)
    assert set(task_states(dag_run, "activate").values()) == {"success"}
    with invoice_db.engine.begin() as conn:
        conn.execute(
            update(provider_invoice_line)
            .where(provider_invoice_line.c.invoice_id == VICTIM, provider_invoice_line.c.line_no <= 2)
            .values(customer_invoice_ref="CUST-1")
        )
    server.clear_requests()
    return server


def test_no_hostile_id_from_the_trigger_form_starts_a_run(active_victim, invoice_db):
    from airflow.sdk.definitions.param import ParamValidationError

    before = _rows(invoice_db)
    for invoice_id in HOSTILE_IDS:
        for dag_id, extra in ((MANUAL, {}), (DEACTIVATE, {"reason": "hostile"})):
            with pytest.raises(ParamValidationError):
                run_dag(dag_id, {"provider": "microsoft", "invoice_id": invoice_id, **extra})
    assert _rows(invoice_db) == before
    assert active_victim.requests == []
    assert open_stages(invoice_db.engine) == []


@pytest.mark.parametrize(
    "invoice_id, sentence",
    [
        (
            CLAIMS_VICTIM,
            f"Microsoft Partner Center sent unusable data for invoice {CLAIMS_VICTIM}: asked for invoice "
            f"{CLAIMS_VICTIM}, it answered with invoice '{VICTIM}'.",
        ),
        (HUGE_TOTAL, f"totalCharges of invoice {HUGE_TOTAL} {'1' * 40} has more than 18 digits before the decimal"),
        (
            FINE_TOTAL,
            "totalCharges of invoice G0600H1X08 10.000000000000000000000000000000000001 has more than 6 decimal",
        ),
        (
            LONG_NAME,
            f"Microsoft Partner Center sent unusable data for invoice {LONG_NAME}: Line 1 has a customer_name of 300 "
            "characters; the database holds at most 255.",
        ),
        (NAN_TOTAL, f"/v1/invoices/{NAN_TOTAL} returned NaN where a number belongs; JSON numbers must be finite."),
    ],
)
def test_a_hostile_provider_answer_changes_no_row_but_its_own_failed_attempt(
    active_victim, invoice_db, capsys, invoice_id, sentence
):
    before = _rows(invoice_db)

    dag_run = _manual(invoice_id)

    assert list(task_states(dag_run, "fetch").values()) == ["failed"]
    after = _rows(invoice_db)
    [attempt] = invoice_db.attempts("microsoft", invoice_id)
    assert attempt["outcome"] == "failed" and attempt["finished_at"] is not None
    assert sentence in attempt["message"] and "\n" not in attempt["message"]
    assert sentence in capsys.readouterr().out
    assert after["invoice_sync_attempt"] == sorted([*before["invoice_sync_attempt"], tuple(attempt.values())], key=repr)
    for table in ("provider_invoice_line", "provider_invoice_note"):
        assert after[table] == before[table], table
    own = invoice_db.get_invoice("microsoft", invoice_id)  # a well-formed header is kept, marked failed
    assert own is None or (own["status"], own["status_message"]) == ("failed", attempt["message"])
    assert [row for row in after["provider_invoice"] if invoice_id not in row] == before["provider_invoice"]
    assert open_stages(invoice_db.engine) == []
    if invoice_id == NAN_TOTAL:  # a data error, not a transient one: asked once
        assert len([r for r in active_victim.requests if r["path"].endswith(NAN_TOTAL)]) == 1


def test_lines_in_another_currency_than_the_header_say_so(active_victim, invoice_db):
    dag_run = _manual(USD_HEADER)

    assert list(task_states(dag_run, "checksum_validation").values()) == ["failed"]
    [attempt] = invoice_db.attempts("microsoft", USD_HEADER)
    assert attempt["message"].startswith(
        f"Checksum error on Microsoft Partner Center invoice {USD_HEADER}: the header is in USD but lines are in "
        "other currencies ("
    )
    assert "outside the tolerance" not in attempt["message"]
    assert invoice_db.get_invoice("microsoft", VICTIM)["status"] == "active"
    assert open_stages(invoice_db.engine) == []


def test_settings_are_checked_before_the_first_request_of_a_scheduled_sync(
    airflow_db, invoice_db, serve, hostile_data, monkeypatch, capsys
):
    server = serve(hostile_data)
    monkeypatch.setenv("AIRFLOW_VAR_INVOICE_SYNC_SETTINGS", json.dumps({"microsfot": {"usage_mismatch_tolerance": 0}}))

    dag_run = run_dag("provider_invoice_sync_microsoft")

    assert list(task_states(dag_run, "list_invoices").values()) == ["failed"]
    assert (
        "has unknown provider section(s) 'microsfot': the providers are microsoft, synnex." in capsys.readouterr().out
    )
    assert server.requests == []
    assert _rows(invoice_db) == {t.name: [] for t in TABLES}


def test_the_next_scheduled_sync_drops_what_a_killed_run_left(airflow_db, invoice_db, provider_connections):
    from include.sql.schema import stage_id_for
    from include.sql.store import AttemptKey

    killed = AttemptKey("synnex", "4999999", "provider_invoice_sync_synnex", "scheduled__killed")
    invoice_db.start_attempt(killed, triggered_by="scheduled")
    invoice_db.stage(stage_id_for(*vars(killed).values())).create()
    with invoice_db.engine.begin() as conn:
        conn.execute(update(invoice_sync_attempt).values(started_at=utcnow() - timedelta(days=2)))

    run_dag("provider_invoice_sync_synnex")

    assert open_stages(invoice_db.engine) == []
    [attempt] = invoice_db.attempts("synnex", "4999999")
    assert attempt["outcome"] == "failed" and attempt["message"].startswith("The attempt was abandoned")
    with invoice_db.engine.connect() as conn:
        running = select(func.count()).where(invoice_sync_attempt.c.outcome == "running")
        assert conn.execute(running).scalar() == 0
