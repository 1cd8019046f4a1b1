"""Explain why an invoice's header total and detail total differ, for whoever opens the failed task.

The checksum task calls :func:`diagnose` when header - detail falls outside the tolerance and puts
:func:`render_report` at the top of the failed task's log, so the on-call engineer sees the numbers,
the likely cause and the next step without re-running anything. Each check tests one known cause of a
checksum error against the difference and says how much of it that cause accounts for.

Ranking, best first:

1. a cause whose own amount (a tax, a credit note, a sibling invoice...) equals the difference exactly;
2. one whose own amount equals it within the tolerance;
3. a cause whose amount *is* the difference (a declared category without lines, rounding drift, late
   lines): plausible from circumstantial evidence, not proved by an independent sum;
4. causes that do not explain the difference.

When nothing explains it, an ``unexplained`` hint comes first and says so. Money is Decimal throughout.

Over 350 lines on purpose: one small function per known cause plus the report that ranks and prints
them, all sharing the same money formatting; each cause reads best beside the others it competes with.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_CEILING, Decimal
from itertools import combinations

from include.model import CATEGORIES, CENT, Amendment, InvoiceHeader
from include.settings import SETTINGS_VARIABLE, ProviderSettings

CAUSES = (
    "header_tax",
    "credit_note",
    "adjustment_note",
    "missing_category",
    "rounding",
    "inactive_currency",
    "foreign_currency_lines",
    "split_invoice",
    "late_lines",
    "unexplained",
)
"""Every value :attr:`Hint.cause` can take."""

"""Providers truncate each line to the cent, so n lines can drift by up to n cents in total."""

MAX_AMENDMENT_GROUP = 8
"""Up to this many notes every combination is tried (255 sums); longer lists only alone and all together."""

REPORT_WIDTH = 100
"""Evidence and actions are wrapped to this width so the report reads in a terminal or log viewer."""

_NOTE_CAUSES = {
    "credit_note": "credit_note",
    "adjustment_note": "adjustment_note",
    "void_note": "adjustment_note",
}
_INFERRED = frozenset({"missing_category", "rounding", "late_lines"})
_MATCH_LABELS = ("exact", "tolerance", "likely", "no")


@dataclass(frozen=True)
class SiblingInvoice:
    """Another invoice of the same provider, billing period and currency."""

    invoice_id: str
    header_total: Decimal
    status: str


@dataclass(frozen=True)
class DiagnosisInput:
    """Everything the checksum task knows about one invoice when its totals disagree."""

    header: InvoiceHeader
    detail_total: Decimal
    tolerance: Decimal
    breakdown: Mapping[str, Decimal]
    line_counts: Mapping[str, int]
    currency_totals: Mapping[str, Decimal]
    usage_last_charge_end: date | None
    settings: ProviderSettings
    provider_display_name: str
    sibling_invoices: Sequence[SiblingInvoice] = ()
    unreported_categories: Mapping[str, str] = field(default_factory=dict)
    """Category -> why this provider leaves it out of its line data without declaring it."""


@dataclass(frozen=True)
class Hint:
    """One possible cause of the difference, with the amount it accounts for and what to do about it."""

    cause: str
    amount: Decimal
    explains: bool
    evidence: str
    action: str


def difference(inp: DiagnosisInput) -> Decimal:
    """Header minus detail: positive when the lines fall short of the header."""
    return inp.header.header_total - inp.detail_total


def override_suggestion(diff: Decimal) -> int:
    """The override tolerance the manual sync takes: |diff| rounded up to a whole number."""
    return int(abs(diff).to_integral_value(rounding=ROUND_CEILING))


def diagnose(inp: DiagnosisInput) -> list[Hint]:
    """Ranked hints, best first; an inactive currency is reported even when the totals agree."""
    diff = difference(inp)
    if abs(diff) <= inp.tolerance:
        return _inactive_currency(inp, diff)
    hints = sorted((hint for check in _CHECKS for hint in check(inp, diff)), key=lambda h: _rank(h, diff))
    if not any(hint.explains for hint in hints):
        hints.insert(0, _unexplained(inp, diff))
    return hints


def _rank(hint: Hint, diff: Decimal) -> int:
    """Index into ``_MATCH_LABELS``: exact, within tolerance, inferred, does not explain."""
    if not hint.explains:
        return 3
    if hint.cause in _INFERRED:
        return 2
    return 0 if hint.amount == diff else 1


def _text(amount: Decimal) -> str:
    """Positional notation (never ``1E+3``) with at least two decimals, so columns line up; never rounds."""
    return f"{amount.quantize(CENT) if amount.as_tuple().exponent > -2 else amount:f}"


def _money(inp: DiagnosisInput, amount: Decimal) -> str:
    return f"{_text(amount)} {inp.header.currency_code}"


def _matches(amount: Decimal, diff: Decimal, tolerance: Decimal) -> bool:
    return abs(amount - diff) <= tolerance


def _signed(amount: Decimal, diff: Decimal) -> Decimal:
    """``amount`` or its negation, whichever is nearer the difference: providers sign credits either way."""
    return min((amount, -amount), key=lambda candidate: abs(candidate - diff))


def _as_counted(inp: DiagnosisInput, raw: Decimal, amount: Decimal) -> str:
    """The provider's amount, and how it is counted when its sign was reversed to match the difference."""
    text = _money(inp, raw)
    return text if amount == raw else f"{text} (counted as {_money(inp, amount)})"


def _relation(inp: DiagnosisInput, amount: Decimal, diff: Decimal) -> str:
    """How ``amount`` compares with the difference, for an evidence sentence."""
    if amount == diff:
        return f"equals the difference of {_money(inp, diff)} exactly"
    if _matches(amount, diff, inp.tolerance):
        return f"is within the tolerance of {_text(inp.tolerance)} of the difference of {_money(inp, diff)}"
    return f"does not match the difference of {_money(inp, diff)}"


def _setting(inp: DiagnosisInput, key: str) -> str:
    return f"{SETTINGS_VARIABLE}.{inp.header.provider}.{key}"


def _override(inp: DiagnosisInput, diff: Decimal, reason: str) -> str:
    """The manual re-import that accepts a difference once it is understood."""
    return (
        f"re-run provider_invoice_manual_sync with provider={inp.header.provider}, "
        f"invoice_id={inp.header.invoice_id}, override_tolerance={override_suggestion(diff)} "
        f'and override_reason "{reason}"'
    )


def _header_tax(inp: DiagnosisInput, diff: Decimal) -> list[Hint]:
    """Tax or levies on the header that the lines lack, while the settings say the lines carry the tax."""
    tax = inp.header.header_tax
    if not tax or inp.settings.tax != "lines":
        return []
    return [
        Hint(
            "header_tax",
            tax,
            _matches(tax, diff, inp.tolerance),
            f'The header states tax/levies of {_money(inp, tax)} but {_setting(inp, "tax")} is "lines", '
            f"so no tax is added to the detail total; the tax {_relation(inp, tax, diff)}.",
            f'Set "tax": "header" for {inp.header.provider} in the {SETTINGS_VARIABLE} variable, then re-run the sync.',
        )
    ]


def _note_cause(amendment: Amendment) -> str | None:
    """Map the document type onto a cause; Partner Center spells it "Credit Note" or adjustment_note."""
    key = amendment.document_type.strip().lower().replace(" ", "_").replace("-", "_")
    return _NOTE_CAUSES.get(key)


def _note_groups(notes: tuple[Amendment, ...]) -> Iterator[tuple[Amendment, ...]]:
    """Each note alone, then ever larger groups, so the smallest matching group is found first."""
    sizes = range(1, len(notes) + 1) if len(notes) <= MAX_AMENDMENT_GROUP else (1, len(notes))
    for size in sizes:
        yield from combinations(notes, size)


def _note_total(group: tuple[Amendment, ...]) -> Decimal:
    return sum((note.total for note in group), Decimal(0))


def _best_note_group(notes: tuple[Amendment, ...], diff: Decimal, tolerance: Decimal) -> tuple[Amendment, ...]:
    """The smallest group nearest the difference if it matches; otherwise all notes, as weak evidence."""
    group = min(_note_groups(notes), key=lambda g: abs(abs(_note_total(g)) - abs(diff)))
    return group if _matches(_signed(_note_total(group), diff), diff, tolerance) else notes


def _amendments(inp: DiagnosisInput, diff: Decimal) -> list[Hint]:
    """Credit, adjustment or void notes that the header total includes but the line files do not."""
    notes = tuple(a for a in inp.header.amendments if _note_cause(a))
    if not notes:
        return []
    group = _best_note_group(notes, diff, inp.tolerance)
    total = _note_total(group)
    amount = _signed(total, diff)
    explains = _matches(amount, diff, inp.tolerance)
    cause = "credit_note" if all(_note_cause(a) == "credit_note" for a in group) else "adjustment_note"
    documents = ", ".join(f"{a.document_id} ({a.document_type}, amends {a.amends_of or 'unknown'})" for a in group)
    ids = ", ".join(a.document_id for a in group)
    several = len(group) > 1
    subject = f"Amendments {documents} together total" if several else f"Amendment {documents} totals"
    reason = f"{cause} {ids} not in the line files"
    action = (
        f"If {ids} {'are' if several else 'is'} expected, {_override(inp, diff, reason)}."
        if explains
        else f"Reconcile {ids} with the provider's invoice summary before any override."
    )
    return [
        Hint(
            cause,
            amount,
            explains,
            f"{subject} {_as_counted(inp, total, amount)}, which {_relation(inp, amount, diff)}.",
            action,
        )
    ]


def _foreign_currency_lines(inp: DiagnosisInput, diff: Decimal) -> list[Hint]:
    """Lines in another currency: a provider bills each currency on its own invoice."""
    own = inp.header.currency_code.upper()
    foreign = {code: total for code, total in sorted(inp.currency_totals.items()) if code.upper() != own}
    if not foreign:
        return []
    amount = _signed(sum(foreign.values(), Decimal(0)), diff)
    listing = ", ".join(f"{_text(total)} {code}" for code, total in foreign.items())
    return [
        Hint(
            "foreign_currency_lines",
            amount,
            _matches(amount, diff, inp.tolerance),
            f"The invoice is in {own} but lines in other currencies total {listing}, which as "
            f"{_money(inp, amount)} {_relation(inp, amount, diff)}.",
            f"Check how the {inp.header.provider} normaliser sets line currencies (lines must be in the "
            f"billing currency) or move the {', '.join(foreign)} lines to their own invoice, then re-run.",
        )
    ]


def _split_invoices(inp: DiagnosisInput, diff: Decimal) -> list[Hint]:
    """Charges of one period split over several invoices of the same provider, period and currency."""
    return [_sibling_hint(inp, diff, sibling) for sibling in inp.sibling_invoices]


def _sibling_hint(inp: DiagnosisInput, diff: Decimal, sibling: SiblingInvoice) -> Hint:
    amount = _signed(sibling.header_total, diff)
    return Hint(
        "split_invoice",
        amount,
        _matches(amount, diff, inp.tolerance),
        f"Invoice {sibling.invoice_id} (status {sibling.status}) has the same provider, billing period and "
        f"currency; its header total {_as_counted(inp, sibling.header_total, amount)} "
        f"{_relation(inp, amount, diff)}.",
        f"Import {sibling.invoice_id} as well, check that no lines of one invoice were staged under the "
        f"other, then re-run {inp.header.invoice_id}.",
    )


def _missing(inp: DiagnosisInput) -> tuple[str, ...]:
    """Categories the header declares line sets for that have no lines in the detail."""
    return tuple(c for c in inp.header.declared_categories if not inp.line_counts.get(c))


def _missing_categories(inp: DiagnosisInput, diff: Decimal) -> list[Hint]:
    """A declared block (marketplace, reserved instances...) absent from the line files is the difference."""
    missing = ", ".join(_missing(inp))
    if not missing:
        return []
    return [
        Hint(
            "missing_category",
            diff,
            True,
            f"The header declares line sets for {missing} but the detail has no lines in them; "
            f"the missing block would total {_money(inp, diff)}.",
            f"Download the invoice summary from {inp.provider_display_name}, confirm that the {missing} "
            f"charges total {_money(inp, diff)}, then {_override(inp, diff, f'{missing} not in the lines')}.",
        )
    ]


def _unreported_categories(inp: DiagnosisInput, diff: Decimal) -> list[Hint]:
    """Charges a provider is known to bill without reporting their lines: only ever a positive gap."""
    if diff <= 0:
        return []
    return [
        Hint(
            "missing_category",
            diff,
            True,
            f"{why}; this invoice has no {category} lines and its header is {_money(inp, diff)} above the detail.",
            f"Check the {category} charges on the {inp.provider_display_name} invoice; if they total "
            f"{_money(inp, diff)}, {_override(inp, diff, f'{category} charges not in the line data')}.",
        )
        for category, why in inp.unreported_categories.items()
        if not inp.line_counts.get(category)
    ]


def _rounding(inp: DiagnosisInput, diff: Decimal) -> list[Hint]:
    """Line-level truncation to the cent: n lines can drift by up to n cents."""
    lines = sum(inp.line_counts.values())
    bound = max(CENT, CENT * lines)
    if abs(diff) > bound:
        return []
    return [
        Hint(
            "rounding",
            diff,
            True,
            f"|{_text(diff)}| is within the rounding bound of {_money(inp, bound)} for {lines} lines "
            "that are each rounded to the cent.",
            f"If this recurs, raise {_setting(inp, 'usage_mismatch_tolerance')} to "
            f"{override_suggestion(diff)}; for this invoice, {_override(inp, diff, 'rounding drift')}.",
        )
    ]


def _late_lines(inp: DiagnosisInput, diff: Decimal) -> list[Hint]:
    """Usage that stops before the period ends may still be arriving; it can only add charges."""
    last, end = inp.usage_last_charge_end, inp.header.billing_period_end
    if last is None or end is None or last >= end:
        return []
    gap = f"The last usage line ends on {last}, {(end - last).days} day(s) before the period ends on {end}"
    outcome = (
        f"usage still to come would total {_money(inp, diff)}"
        if diff > 0
        else f"late usage only adds charges, so it cannot explain a difference of {_money(inp, diff)}"
    )
    return [
        Hint(
            "late_lines",
            diff,
            diff > 0,
            f"{gap}; {outcome}.",
            "Wait for the next sync window (usage is finalised days after the period closes), then re-run "
            "the sync; override only once the difference is confirmed.",
        )
    ]


def _inactive_currency(inp: DiagnosisInput, diff: Decimal) -> list[Hint]:
    """A currency outside active_currencies blocks activation even when the totals agree."""
    code = inp.header.currency_code
    if inp.settings.currency_is_active(code):
        return []
    active = ", ".join(inp.settings.active_currencies or ())
    return [
        Hint(
            "inactive_currency",
            Decimal(0),
            False,
            f"The invoice currency {code} is not in {_setting(inp, 'active_currencies')} ({active}), "
            "so the invoice cannot be activated even when it adds up.",
            f'Add "{code}" to active_currencies for {inp.header.provider} in the {SETTINGS_VARIABLE} '
            "variable, then re-run the sync.",
        )
    ]


def _unexplained(inp: DiagnosisInput, diff: Decimal) -> Hint:
    return Hint(
        "unexplained",
        diff,
        False,
        f"No known cause explains the difference of {_money(inp, diff)} (checked header tax, credit and "
        "adjustment notes, declared categories, rounding, currencies, sibling invoices and late lines).",
        f"Compare the {inp.provider_display_name} invoice summary with the breakdown by category and review "
        f"the {SETTINGS_VARIABLE} variable and the category mapping; do not override until it is understood.",
    )


_CHECKS = (
    _header_tax,
    _amendments,
    _foreign_currency_lines,
    _split_invoices,
    _missing_categories,
    _unreported_categories,
    _rounding,
    _late_lines,
    _inactive_currency,
)
"""Every check, in the order that breaks ties between hints of equal rank."""


def _categories(inp: DiagnosisInput) -> list[str]:
    """Categories worth a breakdown row: any with an amount, lines or a declaration; canonical first."""
    present = set(inp.breakdown) | set(inp.line_counts) | set(inp.header.declared_categories)
    return [c for c in CATEGORIES if c in present] + sorted(present - set(CATEGORIES))


def _table(rows: list[tuple[str, ...]], align: str) -> list[str]:
    """Fixed-width rows, each column as wide as its widest cell; ``align`` holds ``<``/``>`` per column."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(align))]
    return [
        "  " + "  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths, strict=True)).rstrip()
        for row in rows
    ]


def _wrapped(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, REPORT_WIDTH, initial_indent=indent, subsequent_indent=indent)


def _headline(inp: DiagnosisInput, hints: list[Hint], invoice_label: str) -> str:
    """First line of the log: which invoice, and the verdict in one sentence."""
    diff = difference(inp)
    state = "FAILED" if abs(diff) > inp.tolerance else "passed"
    title = f"Checksum {state}: {inp.provider_display_name} invoice {invoice_label}"
    if not hints:
        return f"{title} - adds up within the tolerance of {_text(inp.tolerance)}."
    top = hints[0]
    if top.explains:
        match = _MATCH_LABELS[_rank(top, diff)]
        explained = f"is most likely explained by {top.cause} ({match} match)"
        return f"{title} - the difference of {_money(inp, diff)} {explained}."
    return f"{title} - {top.evidence}"


def _totals_section(inp: DiagnosisInput) -> list[str]:
    cur = inp.header.currency_code
    period = f"  Billing period {inp.header.billing_period_start} to {inp.header.billing_period_end}"
    rows = [
        ("Header total", _text(inp.header.header_total), cur),
        ("Detail total", _text(inp.detail_total), cur),
        ("Difference", _text(difference(inp)), f"{cur} (header - detail)"),
        ("Tolerance", _text(inp.tolerance), cur),
    ]
    return [period, *_table(rows, "<><")]


def _breakdown_section(inp: DiagnosisInput) -> list[str]:
    missing = _missing(inp)
    rows = [("Category", "Lines", "Amount", "")] + [
        (
            category,
            str(inp.line_counts.get(category, 0)),
            _text(inp.breakdown.get(category, Decimal(0))),
            "declared, no lines" if category in missing else "",
        )
        for category in _categories(inp)
    ]
    return _table(rows, "<>><")


def _hints_section(inp: DiagnosisInput, hints: list[Hint]) -> list[str]:
    diff = difference(inp)
    rows = [("#", "Cause", "Match", "Amount")] + [
        (str(n), hint.cause, _MATCH_LABELS[_rank(hint, diff)], _text(hint.amount))
        for n, hint in enumerate(hints, start=1)
    ]
    header, *lines = _table(rows, "><<>")
    section = [header]
    for line, hint in zip(lines, hints, strict=True):
        section += [line, *_wrapped(hint.evidence, "       ")]
    return section


def render_report(inp: DiagnosisInput, hints: list[Hint], *, invoice_label: str, data_docs: str | None) -> str:
    """Plain fixed-width text for the top of the failed task's log: numbers, causes, next step, Data Docs."""
    report = [_headline(inp, hints, invoice_label), "", *_totals_section(inp), "", *_breakdown_section(inp)]
    if hints:
        report += ["", "Likely causes, best first:", *_hints_section(inp, hints)]
        report += ["", "Next step:", *_wrapped(hints[0].action, "  ")]
    report += ["", f"Data Docs: {data_docs or 'not available for this run'}"]
    return "\n".join(report)


def report_json(inp: DiagnosisInput, hints: list[Hint]) -> dict:
    """The same facts as :func:`render_report`, JSON-safe (money as strings) for XCom and the attempt row."""
    diff = difference(inp)
    return {
        "header": inp.header.to_xcom(),
        "detail": {
            "total": _text(inp.detail_total),
            "line_count": sum(inp.line_counts.values()),
            "currency_totals": {code: _text(total) for code, total in inp.currency_totals.items()},
        },
        "difference": _text(diff),
        "tolerance": _text(inp.tolerance),
        "override_suggestion": override_suggestion(diff),
        "breakdown": {
            category: {
                "amount": _text(inp.breakdown.get(category, Decimal(0))),
                "lines": inp.line_counts.get(category, 0),
            }
            for category in _categories(inp)
        },
        "hints": [
            {
                "cause": hint.cause,
                "amount": _text(hint.amount),
                "explains": hint.explains,
                "match": _MATCH_LABELS[_rank(hint, diff)],
                "evidence": hint.evidence,
                "action": hint.action,
            }
            for hint in hints
        ],
    }
