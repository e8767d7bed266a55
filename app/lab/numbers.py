"""The lectures' numbers, checked: every figure the course's slides quote,
recomputed by the analysis engine and the lab's calculators, with a verdict.

The quotes (deck, wording, the number as printed) are typed in, since they are
what the slides say; every computed value comes from the engine at request
time, and the verdict is derived from the two, never typed:

- ``exact``: the quote equals the count (under the quote's own convention,
  e.g. weights without biases where the slide multiplies kernel sizes);
- ``rounded``: it equals the count rounded or truncated to the quote's last
  printed digit ("138 million" for 138,357,544; "62.3" for 62.38);
- ``other_variant``: it fits another version of the network or layer, which
  is computed too and named (AlexNet on one GPU, d2l's AlexNet);
- ``wrong``: neither the count nor any variant gives it.

The quotes and their computations live in app/lab/quotes.py.
"""

from __future__ import annotations

import functools
import threading
from typing import Literal

from pydantic import BaseModel

from app.analysis_cache import AnalysisCache
from app.lab.quotes import QUOTES, Facts, Number, Quote, VariantValue

Verdict = Literal["exact", "rounded", "other_variant", "wrong"]
VERDICTS: tuple[Verdict, ...] = ("exact", "rounded", "other_variant", "wrong")


class Link(BaseModel):
    label: str
    href: str


class Claim(BaseModel):
    id: str
    source: str
    claim: str          # the slide's words
    quoted: Number      # the number as the slide prints it, in ``unit``
    unit: str
    computed: Number    # the engine's count for the network the slide names
    verdict: Verdict
    explanation: str
    links: list[Link]
    # Extensions: the group it is listed in, the zoo models it concerns, the
    # variant checked, and the lab calculator's inputs where the lab shows it.
    topic: str
    models: list[str] = []
    variant: VariantValue | None = None
    lab: dict[str, int | bool] | None = None


class NumbersPage(BaseModel):
    claims: list[Claim]
    counts: dict[str, int]   # claims per verdict


# ------------------------------------------------------------------- verdicts


def _fits(quoted: Number, value: Number, step: float) -> Verdict | None:
    """``exact`` or ``rounded`` (to the nearest, or truncated to, the quote's last digit), else None."""
    if value == quoted:
        return "exact"
    tolerance = step * 1e-9  # float noise in ratios
    if step and (abs(value - quoted) <= step / 2 + tolerance or 0 <= value - quoted < step):
        return "rounded"
    return None


def verdict_for(quoted: Number, step: float, value: Number, variant: Number | None = None,
                below: bool = False) -> Verdict:
    """The verdict of a quote against a count; ``below`` for quotes of the form "< N"."""
    if below:
        if value < quoted:
            return "exact"
        return "other_variant" if variant is not None and variant < quoted else "wrong"
    fit = _fits(quoted, value, step)
    if fit:
        return fit
    if variant is not None and _fits(quoted, variant, step):
        return "other_variant"
    return "wrong"


def check(quote: Quote, facts: Facts) -> Claim:
    figure = quote.compute(facts)
    variant = figure.variant.value if figure.variant else None
    return Claim(id=quote.id, source=quote.source, claim=quote.claim, quoted=quote.quoted, unit=quote.unit,
                 computed=figure.value, verdict=verdict_for(quote.quoted, quote.step, figure.value, variant, quote.below),
                 explanation=figure.explanation, links=[Link(label=label, href=href) for label, href in quote.links],
                 topic=quote.topic, models=list(quote.models), variant=figure.variant, lab=quote.lab)


_LOCK = threading.Lock()


def numbers_data(cache: AnalysisCache, model: str | None = None) -> NumbersPage:
    """Every quote checked (or those about one zoo ``model``): the /lab/numbers
    page and /api/lab/numbers. Pure given the library versions, so computed
    once per app, by one request at a time (like the lab's first view)."""
    with _LOCK:
        page = _numbers_data(cache)
    if model is None:
        return page
    return _page([c for c in page.claims if model in c.models])


def _page(claims: list[Claim]) -> NumbersPage:
    return NumbersPage(claims=claims, counts={v: sum(c.verdict == v for c in claims) for v in VERDICTS})


@functools.cache
def _numbers_data(cache: AnalysisCache) -> NumbersPage:
    facts = Facts(cache)
    return _page([check(q, facts) for q in QUOTES])
