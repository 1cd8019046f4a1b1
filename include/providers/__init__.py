"""The provider registry: a provider is a hook, a normaliser, a GX suite and settings.

Adding a provider means adding one ``ProviderSpec`` here plus its hook, normaliser module and
suite file; every operator and the DAG builder work from the spec alone. Hooks and normalisers are
named by dotted path and imported only when a task runs, so DAG files stay fast to parse.
"""

from __future__ import annotations

import importlib
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
    unreported_categories: Mapping[str, str] = field(default_factory=dict)
    """Category -> why the provider bills it without reporting its lines (a known cause of differences)."""

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
        ),
        ProviderSpec(
            name="synnex",
            display_name="TD SYNNEX StreamOne Ion",
            hook_path="plugins.hooks.streamone_ion.StreamOneIonHook",
            conn_id="streamone_ion_default",
            normaliser_path="include.providers.synnex.normaliser",
            suite_file="synnex.json",
            unreported_categories={
                "marketplace": "TD SYNNEX does not report Azure Marketplace fees in its platform data (KB 44002357719)"
            },
        ),
    )
}


class UnknownProvider(ValueError):
    pass


def get_provider(name: str) -> ProviderSpec:
    try:
        return PROVIDERS[name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise UnknownProvider(f"Unknown provider {name!r}: choose one of {known}.") from None
