"""What the Docs tab of each invoice DAG tells its users (billing staff, on-call), in Markdown.

Kept apart from the DAG files so that their docstrings can stay written for the people who maintain
them, while the UI shows what a user needs: what the DAG does and what to do when an invoice is red.
"""

from __future__ import annotations

WORKSPACE = "[Provider invoices](/provider-invoices/)"

_RED_INVOICE = f"""
### When an invoice is red (`checksum_error`)
Its header total and the sum of its lines differ by more than the tolerance, so nothing of it was loaded.

1. Open the invoice in the {WORKSPACE} workspace (Browse menu), or the failed `checksum_validation`
   task's log: both start with the difference, the breakdown by category, the likely causes (best
   first) and the next step. The **GX Data Docs** link shows the validation itself.
2. If the likely cause is expected (a credit note, fees the provider bills without lines), sync the
   invoice by hand with an **override tolerance** of the suggested amount and a **reason**: the Sync
   button of the workspace, or `provider_invoice_manual_sync`. The reason is kept as a note, signed
   with your name.
3. If lines are late or a setting is wrong, fix it (Admin > Variables, `invoice_sync_settings`) and
   let the next daily run retry the invoice.
"""

SYNC_DOC = (
    """
## Daily import of {display_name} invoices
Every day this DAG asks {display_name} which invoices exist, then for each new or not yet active one:
**fetch** (download every line), **checksum_validation** (the header total must equal the sum of the
lines, within the tolerance), **load** (all lines or none) and **activate**. Each invoice runs on its
own: one red invoice does not stop the others (the task instances are labelled with the invoice id).
A provider with several accounts (`accounts` in `invoice_sync_settings`) is listed account by account;
an account whose listing fails does not stop the others' invoices, and `check_listings` turns red
naming it.

Active invoices are not downloaded again; deactivated ones wait for a manual sync. Invoices with a
checksum error or a failure are retried by the next run.
"""
    + _RED_INVOICE
)

MANUAL_SYNC_DOC = (
    f"""
## Sync one invoice by hand
Downloads one invoice (provider + invoice id) and runs the same checksum, load and activation as the
daily import. Easiest from the {WORKSPACE} workspace, which lists what each provider offers.

* **Account** (optional): the connection of the provider account the invoice comes from, when the
  provider has several; empty means the provider's default account (the workspace fills it in).
* **Override tolerance** (optional): accept a difference up to this amount (rounded up to a whole
  number) for this run only; a **reason** is required with it and is stored as a note.
* An invoice that is already **active** is refused: deactivate it first.
"""
    + _RED_INVOICE
)

DEACTIVATE_DOC = f"""
## Deactivate an invoice
Takes an active invoice out of use so that it can be downloaded again (then sync it by hand). A
**reason** is required and kept as a note with your name. Refused, naming each line, while any line
of the invoice is already referenced by a customer invoice: unlink those first.
Also available as the Deactivate button of an active invoice in the {WORKSPACE} workspace.
"""
