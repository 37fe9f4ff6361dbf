"""What single-column CHECK constraints say about a column's values (read by the profiler too)."""

from __future__ import annotations

import math
import re
from typing import Any

_CMP = re.compile(r"^(\w+)\s*(<>|>=|<=|>|<)\s*'?(-?[\d.]+)'?$")


def check_rules(t, col: str) -> dict[str, Any]:
    """What single-column CHECK constraints (schema, not data) say about a column's values:
    an allowed-values list (IN / = ANY(ARRAY[...])), bounds, and excluded values.

    The column's domains' CHECKs count as its own (``Table.column_checks``); a CHECK that is a
    conjunction (``VALUE >= 1901 AND VALUE <= 2155``, a BETWEEN) gives each of its comparisons."""
    rules: dict[str, Any] = {}
    for d in t.column_checks(col):
        if re.search(r"= ANY \(|\bIN \(", d):
            vals = [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", d)]
            if vals:
                rules["allowed"] = (
                    sorted(set(vals) & set(rules["allowed"])) if "allowed" in rules else vals
                )
            continue
        for op, v in _comparisons(d, col):
            if op == "<>":
                rules.setdefault("exclude", []).append(v)
            elif op in (">", ">="):  # the tightest bound, strict if any CHECK says so at it
                if v > rules.get("min", -math.inf) or (v == rules["min"] and op == ">"):
                    rules["min"], rules["min_strict"] = v, op == ">"
            elif v < rules.get("max", math.inf) or (v == rules["max"] and op == "<"):
                rules["max"], rules["max_strict"] = v, op == "<"
    return rules


def _comparisons(definition: str, col: str) -> list[tuple[str, float]]:
    """(operator, number) of each ``col <op> number`` a CHECK requires: the CHECK itself, or
    every term of a conjunction (none when OR or NOT makes a term optional)."""
    body = definition.strip()
    body = body[len("CHECK") :].strip() if body.upper().startswith("CHECK") else body
    flat = re.sub(r"::[\w ]+?(?=[)\s]|$)", "", body.replace("NOT VALID", ""))
    flat = flat.replace("(", "").replace(")", "").replace(" IS NOT NULL", " IS_NOT_NULL").strip()
    if re.search(r"\b(OR|NOT)\b", flat):
        return []
    out = []
    for term in re.split(r"\s+AND\s+", flat):
        m = _CMP.match(term.strip())
        if m and m.group(1) == col:
            out.append((m.group(2), float(m.group(3))))
    return out
