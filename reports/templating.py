"""The one Jinja2 environment of the reports package: templates in ``reports/templates``,
autoescaping on for every HTML template, and formatting filters.

Filters: ``num`` (thousands separators, ``digits`` decimals), ``pct`` (fraction → "12.3 %"),
``si`` (1.2 M, 3.4 G), ``dash`` (None/NaN → "—").  Missing numbers always render as "—".
"""

from __future__ import annotations

import math
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def num(v, digits: int = 0) -> str:
    if _missing(v):
        return "—"
    return f"{v:,.{digits}f}"


def pct(v, digits: int = 1) -> str:
    return "—" if _missing(v) else f"{100 * v:.{digits}f} %"


def si(v, digits: int = 2) -> str:
    if _missing(v):
        return "—"
    for factor, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(v) >= factor:
            return f"{v / factor:.{digits}f}{suffix}"
    return f"{v:.{digits}f}"


def dash(v) -> str:
    return "—" if _missing(v) else str(v)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("reports", "templates"),
                      autoescape=select_autoescape(["html", "htm", "xml", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=num, pct=pct, si=si, dash=dash)
    return env
