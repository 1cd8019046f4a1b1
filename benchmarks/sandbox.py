"""The provider sandbox serving benchmark invoices from pre-built blobs.

The real :class:`include.sandbox.SandboxServer` answers every request (token, invoice, export,
operation, manifest, blob) exactly as for the demo data; only the step that cuts an invoice's JSONL
into gzip blobs (reconciliation lines and daily-rated usage) is replaced by the cached blobs of
:mod:`benchmarks.data`, read from disk when a blob is requested. That keeps the provider's cost (which
is not ours to optimise) out of the numbers.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping
from pathlib import Path

from benchmarks.data import BenchInvoice, usage_blobs

_INVOICES: dict[str, BenchInvoice] = {}


class _BlobFiles(Mapping):
    """``name -> gzip bytes``, read on access so a 1M-line invoice is never held in memory."""

    def __init__(self, folder: Path, names: tuple[str, ...]):
        self.folder, self.names = folder, names

    def __getitem__(self, name: str) -> bytes:
        if name not in self.names:
            raise KeyError(name)
        return (self.folder / name).read_bytes()

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def _install() -> None:
    from include.providers.microsoft import sandbox as sandbox_microsoft

    if getattr(sandbox_microsoft._build_manifest, "_bench", False):
        return
    original = sandbox_microsoft._build_manifest

    def build_manifest(request, invoice_id: str, export: str = "reconciliation") -> str:
        bench = _INVOICES.get(invoice_id.split("-", 1)[-1])
        if bench is None:
            return original(request, invoice_id, export)
        folder, blobs = (bench.root / "blobs", bench.blobs) if export == "reconciliation" else _usage(bench)
        manifest_id = str(uuid.uuid4())
        signature = secrets.token_hex(16)
        request.server.state(sandbox_microsoft.__name__).setdefault("manifests", {})[manifest_id] = {
            "id": manifest_id,
            "schemaVersion": "2",
            "dataFormat": "compressedJSONLines",
            "createdDateTime": sandbox_microsoft._now(),
            "eTag": hashlib.sha256(repr(blobs).encode()).hexdigest()[:16],
            "partnerTenantId": sandbox_microsoft.TENANT_ID,
            "rootDirectory": f"{request.server.url}/blobs/billing/{manifest_id}",
            "sasToken": f"sv=2023-11-03&sr=c&sp=rl&sig={signature}",
            "partitionType": "default",
            "blobCount": len(blobs),
            "blobs": [{"name": name, "partitionValue": str(n)} for n, name in enumerate(blobs, start=1)],
            "_content": _BlobFiles(folder, blobs),
            "_signature": signature,
        }
        return manifest_id

    build_manifest._bench = True
    sandbox_microsoft._build_manifest = build_manifest


def _usage(bench: BenchInvoice) -> tuple[Path, tuple[str, ...]]:
    """The daily-rated usage export's blobs, cut once from the invoice's JSON lines (:func:`usage_blobs`)."""
    return bench.root / "usage-blobs", usage_blobs(bench)


def bench_sandbox(*invoices: BenchInvoice):
    """A started-on-enter sandbox serving ``invoices`` (they must share one data dir or be registered)."""
    from include.sandbox import SandboxServer

    _install()
    for bench in invoices:
        _INVOICES[bench.invoice_id] = bench
    roots = {bench.data_dir for bench in invoices}
    if len(roots) != 1:
        raise ValueError("serve one benchmark data dir per sandbox")
    return SandboxServer(roots.pop(), export_retry_after=0)
