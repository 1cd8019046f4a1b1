"""``make demo``: every DAG, run by the real ``airflow dags test`` CLI, on the bundled demo data.

No server is needed: the provider sandbox and a mail catcher run in this process on 127.0.0.1,
the invoice database is a SQLite file under ``$AIRFLOW_HOME/demo``. The demo checks each invoice
against the outcome its generator promises and exits 1 if any differs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from include.notification.render import money
from include.providers import PROVIDERS
from include.sandbox import SandboxServer
from include.sandbox.demo_data import write_demo_data
from include.sandbox.mail import MailCatcher

RECIPIENTS = ["billing@reseller.example"]
EXPECTED = {name: spec.demo().EXPECTED for name, spec in PROVIDERS.items()}
"""provider -> invoice id -> the outcome its demo data promises."""
MICROSOFT_DEMO = EXPECTED["microsoft"]
"""The invoices of step 2 (override, deactivate, re-download)."""


class Demo:
    def __init__(self, home: Path):
        self.root = home / "demo"
        shutil.rmtree(self.root, ignore_errors=True)
        (self.root / "logs").mkdir(parents=True)
        self.env = {
            **os.environ,
            "AIRFLOW_CONN_INVOICE_DB": json.dumps({"conn_type": "sqlite", "host": str(self.root / "invoices.db")}),
            "AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS": json.dumps(RECIPIENTS),
            "INVOICE_DATA_DOCS_DIR": str(self.root / "data_docs"),
        }
        self.problems: list[str] = []
        self._runs = 0

    def airflow(self, *args: str, settings: dict | None = None) -> None:
        """One ``airflow`` CLI call; its output goes to a log file (a failing DAG run is expected here)."""
        self._runs += 1
        env = dict(self.env)
        if settings is not None:
            env["AIRFLOW_VAR_INVOICE_SYNC_SETTINGS"] = json.dumps(settings)
        log = self.root / "logs" / f"{self._runs:02d}-{args[2] if len(args) > 2 else args[0]}.log"
        with log.open("w") as out:
            subprocess.run([sys.executable, "-m", "airflow", *args], env=env, stdout=out, stderr=subprocess.STDOUT)

    def migrate_invoice_db(self) -> None:
        """``python -m include.sql.migrate`` on the demo's invoice database, as a deployment runs it."""
        subprocess.run(
            [sys.executable, "-m", "include.sql.migrate"], env=self.env, check=True, stdout=subprocess.DEVNULL
        )

    def dag_test(self, dag_id: str, conf: dict | None = None, settings: dict | None = None) -> None:
        self.airflow("dags", "test", dag_id, *(["--conf", json.dumps(conf)] if conf else []), settings=settings)

    def store(self):
        os.environ["AIRFLOW_CONN_INVOICE_DB"] = self.env["AIRFLOW_CONN_INVOICE_DB"]
        from plugins.hooks.invoice_db import InvoiceDbHook

        return InvoiceDbHook().get_store()

    def check(self, provider: str, invoice_id: str, status: str, difference: Decimal | None = None) -> str:
        invoice = self.store().get_invoice(provider, invoice_id) or {}
        ok = invoice.get("status") == status and (difference is None or invoice.get("difference") == difference)
        if not ok:
            self.problems.append(
                f"{provider} {invoice_id}: expected {status} / {difference}, got "
                f"{invoice.get('status')} / {invoice.get('difference')}"
            )
        return "ok" if ok else "UNEXPECTED"


def print_invoices(demo: Demo, title: str) -> None:
    print(f"\n{title}")
    print(f"  {'provider':<10}{'invoice':<14}{'status':<16}{'header':>14}{'detail':>14}{'difference':>12}  check")
    for provider, expectations in EXPECTED.items():
        for invoice_id, expected in expectations.items():
            verdict = demo.check(provider, invoice_id, expected.status, expected.difference)
            row = demo.store().get_invoice(provider, invoice_id) or {}
            print(
                f"  {provider:<10}{invoice_id:<14}{row.get('status', '-'):<16}{money(row.get('header_total')):>14}"
                f"{money(row.get('detail_total')):>14}{money(row.get('difference')):>12}  {verdict}"
            )


def show_variant(demo: Demo, provider: str, display_name: str, variant) -> None:
    """Re-run the provider's sync under the variant's settings; check the invoices whose outcome it changes."""
    changed = {i: e for i, e in variant.expected.items() if EXPECTED[provider][i] != e}
    demo.dag_test(f"provider_invoice_sync_{provider}", settings=variant.settings)
    for invoice_id, expected in changed.items():
        print(
            f"  - {display_name} {variant.title} {json.dumps(variant.settings)} -> invoice {invoice_id}: "
            f"{demo.check(provider, invoice_id, expected.status, expected.difference)}, now "
            f"{demo.store().get_invoice(provider, invoice_id)['status']}"
        )


def show_usage_checksum(demo: Demo, data_dir: Path) -> None:
    """The usage checksum's outcome per invoice with Azure usage; then Microsoft publishes the rest of the partial
    set and the next daily run activates that invoice by itself."""
    from include.providers.microsoft.demo import USAGE_LINE_TYPE, partial_usage_invoice, write_microsoft_invoice
    from include.sql.usage import mismatches, usage_lines

    print("\n2. Azure usage checksum (billed daily-rated usage against the reconciliation lines):")
    store = demo.store()
    from include.settings import ProviderSettings

    tolerance = ProviderSettings().usage_mismatch_tolerance  # a header check that fails skips the usage check
    for invoice_id, expected in MICROSOFT_DEMO.items():
        if expected.usage_difference is None or abs(expected.difference) > tolerance:
            continue
        invoice = store.get_invoice("microsoft", invoice_id) or {}
        usage = json.loads(store.attempts("microsoft", invoice_id)[-1]["diagnostics"] or "{}").get("usage") or {}
        difference = Decimal(usage["difference"]) if usage.get("difference") is not None else None
        ok = invoice.get("status") == expected.status and difference == expected.usage_difference
        if not ok:
            demo.problems.append(
                f"microsoft {invoice_id}: usage difference {difference}, expected {expected.usage_difference}"
            )
        loaded = len(usage_lines(store.engine, "microsoft", invoice_id))
        reconciliation, daily = (
            Decimal(usage.get(key) or 0) for key in ("reconciliation_pre_tax", "daily_rated_pre_tax")
        )
        print(
            f"  - {invoice_id} {invoice.get('status')}: reconciliation {money(reconciliation)}"
            f" - daily-rated {money(daily)} = {money(difference)} EUR;"
            f" {loaded} daily-rated lines loaded  {'ok' if ok else 'UNEXPECTED'}"
        )
    partial, full = partial_usage_invoice()
    invoice_id = partial.invoice["id"]
    rows = mismatches(store.engine, "microsoft", invoice_id)
    usage = json.loads(store.attempts("microsoft", invoice_id)[-1]["diagnostics"] or "{}").get("usage") or {}
    if rows:
        top = rows[0]
        print(
            f"    top subscription {top['subscription_id']}: difference {top['difference']}, daily-rated usage "
            f"stops at {top['last_usage_date']}; mismatch CSV: {usage.get('csv')}"
        )
    else:
        demo.problems.append(f"microsoft {invoice_id}: no usage mismatch rows")
    sets = {
        **{k: v for k, v in partial.line_sets.items() if k[1] != USAGE_LINE_TYPE},
        ("one_time", USAGE_LINE_TYPE): full,
    }
    write_microsoft_invoice(data_dir, partial.invoice, sets)
    demo.dag_test("provider_invoice_sync_microsoft")
    loaded = len(usage_lines(store.engine, "microsoft", invoice_id))
    print(
        f"  - Microsoft publishes the rest; the next daily run: {invoice_id} "
        f"{demo.check('microsoft', invoice_id, 'active')}, {loaded} of {len(full)} daily-rated lines loaded"
    )
    if loaded != len(full):
        demo.problems.append(f"microsoft {invoice_id}: {loaded} daily-rated lines loaded, expected {len(full)}")


def main() -> int:
    home = Path(os.environ.get("AIRFLOW_HOME", ".airflow")).resolve()
    demo = Demo(home)
    print(f"Provider invoice sync demo (Airflow home {home})")
    demo.airflow("db", "migrate")
    demo.migrate_invoice_db()
    write_demo_data(demo.root / "sandbox-data")
    with SandboxServer(demo.root / "sandbox-data") as sandbox, MailCatcher(demo.root / "mail") as mail:
        demo.env.update(sandbox.env())
        demo.env["AIRFLOW_CONN_SMTP_DEFAULT"] = json.dumps(mail.connection())
        print(f"Provider sandbox on {sandbox.url}, mail catcher on 127.0.0.1:{mail.port}")

        for provider in EXPECTED:
            demo.dag_test(f"provider_invoice_sync_{provider}")
        print_invoices(demo, f"1. Daily syncs ({', '.join(f'provider_invoice_sync_{p}' for p in EXPECTED)}):")
        show_usage_checksum(demo, demo.root / "sandbox-data")

        print("\n3. What a billing team does next:")
        for provider, spec in PROVIDERS.items():
            for variant in spec.demo().VARIANTS:
                show_variant(demo, provider, spec.display_name, variant)
        credit_id = next(i for i, e in MICROSOFT_DEMO.items() if e.status == "checksum_error" and e.difference < 0)
        override = abs(MICROSOFT_DEMO[credit_id].difference)
        reason = f"Credit note on {credit_id} confirmed in Partner Center"
        demo.dag_test(
            "provider_invoice_manual_sync",
            {
                "provider": "microsoft",
                "invoice_id": credit_id,
                "override_tolerance": float(override),
                "override_reason": reason,
            },
        )
        invoice = demo.store().get_invoice("microsoft", credit_id)
        print(
            f"  - manual sync of {credit_id} with override_tolerance {override} (applied as "
            f"{invoice['tolerance_applied']:.0f}): {invoice['status']} {demo.check('microsoft', credit_id, 'active')}"
        )
        balanced = next(i for i, e in MICROSOFT_DEMO.items() if e.status == "active")
        demo.dag_test(
            "provider_invoice_deactivate",
            {"provider": "microsoft", "invoice_id": balanced, "reason": "Re-download requested by billing"},
        )
        after_deactivation = demo.check("microsoft", balanced, "inactive")
        demo.dag_test("provider_invoice_manual_sync", {"provider": "microsoft", "invoice_id": balanced})
        lines = demo.store().lines("microsoft", balanced)
        one_copy = len(lines) == len({line["line_no"] for line in lines}) == MICROSOFT_DEMO[balanced].line_count
        if not one_copy:
            demo.problems.append(f"microsoft {balanced}: {len(lines)} lines after re-download")
        print(
            f"  - deactivate {balanced} ({after_deactivation}), then manual re-sync: "
            f"{demo.store().get_invoice('microsoft', balanced)['status']} "
            f"{demo.check('microsoft', balanced, 'active')}, {len(lines)} lines, one copy each: {one_copy}"
        )

        demo.dag_test("provider_invoice_daily_notification")
        print("\n4. Daily notification (provider_invoice_daily_notification):")
        if mail.messages:
            print(f"  - to {', '.join(mail.messages[-1].envelope_to)}: {mail.messages[-1].subject}")
            print(f"  - read it: {sorted((demo.root / 'mail').glob('*.eml'))[-1]}")
        else:
            demo.problems.append("no notification mail was delivered")

    print(f"\nGX Data Docs, one page per validation: {demo.root / 'data_docs' / 'validations'}")
    print(f"Invoice database: {demo.root / 'invoices.db'}; Airflow logs of each run: {demo.root / 'logs'}")
    if demo.problems:
        print("\nDEMO FAILED:\n  " + "\n  ".join(demo.problems))
        return 1
    print("\nEvery invoice ended as its demo data promises.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
