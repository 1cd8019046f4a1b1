"""The provider registry: a provider is a hook, a normaliser, a GX suite and settings.

Adding a provider means adding one ``ProviderSpec`` here plus its hook, normaliser module and
suite file; every operator and the DAG builder work from the spec alone. Hooks and normalisers are
named by dotted path and imported only when a task runs, so DAG files stay fast to parse.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    display_name: str
    hook_path: str
    """``module.Class`` of the hook; constructed with ``conn_id``."""
    conn_id: str
    normaliser_path: str
    """Module with ``normalize_header(raw) -> InvoiceHeader`` and
    ``normalize_lines(header, raw_lines, first_line_no=1) -> Iterator[InvoiceLine]``."""
    suite_file: str
    """File name under ``include/checksum/suites``."""
    invoice_id_pattern: str
    """The whole id (``re.fullmatch``): the provider's id alphabet, nothing that means something in a URL."""
    invoice_id_max_length: int
    unreported_categories: Mapping[str, str] = field(default_factory=dict)
    """Category -> why the provider bills it without reporting its lines (a known cause of differences)."""

    def check_invoice_id(self, invoice_id: object) -> str:
        """``invoice_id`` if the provider's rule allows it, else :class:`InvalidInvoiceId` with one sentence.

        The one invoice-id rule: the manual DAG's first task, the hooks (for listed ids too) and the
        database writes all ask here, so an id that could reach another URL or another invoice never does.
        """
        if isinstance(invoice_id, int) and not isinstance(invoice_id, bool):
            invoice_id = str(invoice_id)  # Ion lists its ids as JSON numbers
        text = invoice_id if isinstance(invoice_id, str) else ""
        if not text.strip():
            raise InvalidInvoiceId(f"The {self.display_name} invoice id must not be empty.")
        if len(text) > self.invoice_id_max_length:
            raise InvalidInvoiceId(
                f"{len(text)} characters is not a {self.display_name} invoice id: "
                f"at most {self.invoice_id_max_length} are allowed."
            )
        if not re.fullmatch(self.invoice_id_pattern, text):
            raise InvalidInvoiceId(
                f"{text!r} is not a {self.display_name} invoice id: it must match {self.invoice_id_pattern}."
            )
        return text

    def get_hook(self) -> Any:
        module_name, _, class_name = self.hook_path.rpartition(".")
        return getattr(importlib.import_module(module_name), class_name)(conn_id=self.conn_id)

    def normaliser(self) -> ModuleType:
        return importlib.import_module(self.normaliser_path)


PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            name="microsoft",
            display_name="Microsoft Partner Center",
            hook_path="plugins.hooks.partner_center.PartnerCenterHook",
            conn_id="partner_center_default",
            normaliser_path="include.providers.microsoft.normaliser",
            suite_file="microsoft.json",
            invoice_id_pattern=r"[A-Z0-9]{1,32}",
            invoice_id_max_length=32,
        ),
        ProviderSpec(
            name="synnex",
            display_name="TD SYNNEX StreamOne Ion",
            hook_path="plugins.hooks.streamone_ion.StreamOneIonHook",
            conn_id="streamone_ion_default",
            normaliser_path="include.providers.synnex.normaliser",
            suite_file="synnex.json",
            invoice_id_pattern=r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}",
            invoice_id_max_length=64,
            unreported_categories={
                "marketplace": "TD SYNNEX does not report Azure Marketplace fees in its platform data (KB 44002357719)"
            },
        ),
    )
}


SAFE_INVOICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*(?!\n)$"
"""What every provider's rule allows at most, as a JSON-schema pattern for the trigger form (which cannot
see the chosen provider). ``(?!\n)`` because Python's ``$`` also matches before a final newline."""
SAFE_INVOICE_ID_MAX_LENGTH = max(spec.invoice_id_max_length for spec in PROVIDERS.values())


class UnknownProvider(ValueError):
    pass


class InvalidInvoiceId(ValueError):
    """An invoice id that breaks its provider's rule; nothing is fetched or written for it."""


def get_provider(name: str) -> ProviderSpec:
    try:
        return PROVIDERS[name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise UnknownProvider(f"Unknown provider {name!r}: choose one of {known}.") from None
