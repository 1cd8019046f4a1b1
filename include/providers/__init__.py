"""The provider registry: one ``ProviderSpec`` per provider, and the contracts its parts fulfil.

A provider is a package ``include/providers/<name>/`` (``normaliser``, ``sandbox``, ``demo``
modules), a hook in ``plugins/hooks/``, a GX suite in ``include/checksum/suites/`` and a three-line
DAG file; this registry names them. Everything else (the operators, the DAG builder, the sandbox
server, the demo data, the demo, the compose checks and the parametrised tests) iterates over
``PROVIDERS``. Hooks and modules are named by dotted path and imported only when used, so DAG files
stay fast to parse. See "Adding a provider" in the README.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from include.exact_json import LineBatch
    from include.model import InvoiceHeader, InvoiceLine
    from include.sandbox.demo_data import DemoExpectation
    from include.sandbox.server import Route


class ProviderHook(Protocol):
    """What the operators ask of a provider's hook (constructed with ``conn_id``)."""

    def list_invoices(self) -> list[dict]:
        """Every invoice (raw header) the sync DAG covers."""

    def get_invoice(self, invoice_id: str) -> dict:
        """One raw invoice header; raises :class:`~include.model.InvoiceNotFound` for an unknown id."""

    def iter_line_items(self, invoice: dict) -> Iterator[tuple[str, dict]]:
        """``(source, raw_line)`` for every line of the invoice, never silently truncated."""

    def iter_line_batches(self, invoice: dict) -> Iterator[LineBatch] | None:
        """The lines as JSON-lines batches (parsed in worker processes), or ``None`` to use
        :meth:`iter_line_items`; :class:`plugins.hooks.http.ProviderHttpHook` answers ``None``."""


class Normaliser(Protocol):
    """A provider's ``normaliser`` module: raw provider JSON -> the canonical model."""

    def normalize_header(self, raw: dict) -> InvoiceHeader: ...

    def normalize_lines(
        self, header: InvoiceHeader, raw_lines: Iterable[tuple[str, dict]], first_line_no: int = 1
    ) -> Iterator[InvoiceLine]:
        """Canonical lines numbered from ``first_line_no`` (a later batch of the invoice) in the order given."""


class SandboxEndpoints(Protocol):
    """A provider's ``sandbox`` module: the routes the sandbox serves and the connection pointing at them."""

    ROUTES: list[Route]

    def connection(self, base_url: str) -> dict:
        """The Airflow connection (``conn_type``, ``host``, ``login``, ``password``, ``extra``) for ``base_url``."""


class DemoData(Protocol):
    """A provider's ``demo`` module: its bundled demo invoices and the outcome each must produce."""

    EXPECTED: dict[str, DemoExpectation]
    """Invoice id -> outcome under the default settings."""
    VARIANTS: list[DemoVariant]
    """Other settings under which some invoices end differently (``make demo`` shows them)."""

    def write_demo(self, data_dir: str | Path) -> dict[str, DemoExpectation]: ...


@dataclass(frozen=True)
class DemoVariant:
    """``settings`` (the ``invoice_sync_settings`` value) changes the outcome of some demo invoices."""

    title: str
    settings: dict
    expected: dict[str, DemoExpectation]


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    """The ``provider`` key everywhere: DAG id suffix, database rows, settings section, Params enum."""
    display_name: str
    hook_path: str
    """``module.Class`` of the hook (a :class:`ProviderHook`); constructed with ``conn_id``."""
    conn_id: str
    """The Airflow connection of the provider API; the hook's default, the sandbox's connection and the provider's
    one account unless ``invoice_sync_settings`` names its ``accounts``."""
    package: str
    """Dotted package with the ``normaliser``, ``sandbox`` and ``demo`` modules."""
    suite_file: str
    """File name under ``include/checksum/suites`` (or an absolute path)."""
    invoice_id_pattern: str
    """The whole id (``re.fullmatch``): the provider's id alphabet, nothing that means something in a URL."""
    invoice_id_max_length: int
    unreported_categories: Mapping[str, str] = field(default_factory=dict)
    """Category -> why the provider bills it without reporting its lines (a known cause of differences)."""
    usage_normaliser_path: str | None = None
    """Module with ``normalize_usage_lines(header, raw_items, first_line_no=1) -> Iterator[UsageLine]`` (and
    optionally ``normalize_usage_batch``, an Arrow table of a JSON-lines batch) for a provider whose hook has
    ``iter_usage_items`` and ``iter_usage_batches`` (billed daily-rated usage); None: the provider has no
    usage checksum."""
    usage_suite_file: str | None = None
    """The usage checksum's suite under ``include/checksum/suites``."""

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

    @property
    def normaliser_path(self) -> str:
        return f"{self.package}.normaliser"

    def get_hook(self, conn_id: str | None = None) -> ProviderHook:
        """The hook on an account's connection ``conn_id`` (default: the provider's ``_default`` connection)."""
        module_name, _, class_name = self.hook_path.rpartition(".")
        return getattr(importlib.import_module(module_name), class_name)(conn_id=conn_id or self.conn_id)

    def normaliser(self) -> Normaliser:
        return cast(Normaliser, importlib.import_module(self.normaliser_path))

    def sandbox(self) -> SandboxEndpoints:
        return cast(SandboxEndpoints, importlib.import_module(f"{self.package}.sandbox"))

    def demo(self) -> DemoData:
        return cast(DemoData, importlib.import_module(f"{self.package}.demo"))


PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            name="microsoft",
            display_name="Microsoft Partner Center",
            hook_path="plugins.hooks.partner_center.PartnerCenterHook",
            conn_id="partner_center_default",
            package="include.providers.microsoft",
            suite_file="microsoft.json",
            invoice_id_pattern=r"[A-Z0-9]{1,32}",
            invoice_id_max_length=32,
            usage_normaliser_path="include.providers.microsoft.usage",
            usage_suite_file="microsoft_usage.json",
        ),
        ProviderSpec(
            name="synnex",
            display_name="TD SYNNEX StreamOne Ion",
            hook_path="plugins.hooks.streamone_ion.StreamOneIonHook",
            conn_id="streamone_ion_default",
            package="include.providers.synnex",
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


def conn_id_of(name: str) -> str:
    """The provider's connection id, for its hook's ``default_conn_name`` (stated once, in the spec)."""
    return get_provider(name).conn_id
