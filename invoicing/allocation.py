"""How invoice-level amounts are spread across an invoice's lines (docs/invoicing.md, "Allocation").

One rule, pure and in exact integers: an amount is split over the invoice's **positive** lines pro rata by
line amount, by the largest-remainder method (each line gets ``floor(amount × line / Σ lines)``, and the
minor units left over go one each to the lines with the largest remainders, ties to the earlier line). The
shares of one split always add up to the amount exactly, and none is negative.

The rule is applied in stages, from the line amounts to the amount due:

1. after discount: ``subtotal − discount`` (credit lines — negative amounts — count with the discount);
2. after tax: stage 1 + the exclusive tax (inclusive tax is already inside the line amounts);
3. due: the invoice's ``amountDue`` (stage 2 less credit notes, credits and payments already applied).

A line's share of a stage is that stage's total split by the rule; its discount, tax and credited shares
are the differences between successive stages, so per line ``amount − discount + tax − credited = netDue``
and over the invoice each kind of share adds up to its invoice total exactly. Credit collection pays each
metered line's ``netDue`` from the grants eligible for its meter and everything else from unrestricted
credit, so a grant restricted to a meter never pays more than its lines' net share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LineShare:
    """One line's part of the invoice totals (all in minor units)."""

    amount: int     # the line's own amount
    discount: int   # its share of the discount and of the credit lines
    tax: int        # its share of the exclusive tax
    credited: int   # its share of credit notes, credits and payments already applied
    net_due: int    # amount − discount + tax − credited (0 for a credit line: its amount is in the discounts)


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` ≥ 0 over ``weights`` ≥ 0 pro rata, largest remainder, ties to the earlier index.
    Σ result == total. All weights 0 with a positive total is a ``ValueError`` (nothing to split over)."""
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("allocate: total and weights must not be negative")
    whole = sum(weights)
    if whole == 0:
        if total:
            raise ValueError("allocate: no positive weight to split over")
        return [0] * len(weights)
    quotients, remainders = [], []
    for weight in weights:
        q, r = divmod(total * weight, whole)
        quotients.append(q)
        remainders.append(r)
    left = total - sum(quotients)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        quotients[index] += 1
    return quotients


def line_shares(amounts: Sequence[int], *, discount: int, tax: int, amount_due: int,
                exempt: Sequence[bool] | None = None) -> list[LineShare]:
    """Each line's discount, tax and credited share and its net due (see the module docstring).

    ``exempt`` marks lines that bear no discount and no tax (a "Previous balance" line: money owed from
    before, outside the discount and tax bases): stages 1–2 are split over the other lines only, and the
    amount due (stage 3) over every line pro rata by its stage-2 amount.
    ``amount_due`` is split exactly when some line is positive; an invoice without a positive line has
    nothing to split over and every share is 0 (its amount due, if any, is not attributable to a line)."""
    flags = list(exempt) if exempt is not None else [False] * len(amounts)
    if any(flags):
        return _line_shares_exempt(amounts, flags, discount=discount, tax=tax, amount_due=amount_due)
    weights = [max(0, a) for a in amounts]
    if not any(weights):
        return [LineShare(amount=a, discount=max(0, a), tax=0, credited=0, net_due=0) for a in amounts]
    after_discount = max(0, sum(amounts) - discount)
    after_tax = after_discount + max(0, tax)
    due = min(max(0, amount_due), after_tax)
    stage1 = allocate(after_discount, weights)
    stage2 = allocate(after_tax, weights)
    stage3 = allocate(due, weights)
    return [LineShare(amount=a, discount=w - s1, tax=s2 - s1, credited=s2 - s3, net_due=s3)
            for a, w, s1, s2, s3 in zip(amounts, weights, stage1, stage2, stage3, strict=True)]


def _line_shares_exempt(amounts: Sequence[int], flags: Sequence[bool], *, discount: int, tax: int,
                        amount_due: int) -> list[LineShare]:
    index = [i for i, flag in enumerate(flags) if not flag]
    inner = line_shares([amounts[i] for i in index], discount=discount, tax=tax, amount_due=0)
    stage2 = [max(0, a) for a in amounts]  # exempt lines keep their whole amount through stages 1–2
    for i, share in zip(index, inner, strict=True):
        stage2[i] = share.amount - share.discount + share.tax if share.amount > 0 else 0
    due = min(max(0, amount_due), sum(stage2))
    stage3 = allocate(due, stage2) if any(stage2) else [0] * len(amounts)
    shares: list[LineShare] = []
    inner_by_index = dict(zip(index, inner, strict=True))
    for i, a in enumerate(amounts):
        own = inner_by_index.get(i)
        discount_share, tax_share = (own.discount, own.tax) if own is not None else (0, 0)
        shares.append(LineShare(amount=a, discount=discount_share, tax=tax_share,
                                credited=stage2[i] - stage3[i], net_due=stage3[i]))
    return shares
