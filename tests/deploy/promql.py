"""PromQL expressions -> the metric names, label matchers and grouping labels they use (real parser)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import promql_parser

# Grafana variables and macros are not PromQL: give them values the parser accepts.
_MACROS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


@dataclass
class Usage:
    metrics: set[str] = field(default_factory=set)
    # metric -> label names it is filtered on
    matchers: dict[str, set[str]] = field(default_factory=dict)
    # labels used in by()/without()/on()/ignoring()
    grouping: set[str] = field(default_factory=set)


def expand_grafana(expr: str) -> str:
    for macro, value in _MACROS.items():
        expr = expr.replace(macro, value)
    return re.sub(r"\$\{?(\w+)\}?", "x", expr)


def usage(expr: str) -> Usage:
    out = Usage()
    _walk(promql_parser.parse(expr), out)
    return out


def _walk(node: object, out: Usage) -> None:
    kind = type(node).__name__
    if kind == "VectorSelector":
        name = node.name
        labels = {m.name for m in node.matchers.matchers} | {
            m.name for group in node.matchers.or_matchers for m in group
        }
        if name is None:  # {__name__="..."} form
            names = [m.value for m in node.matchers.matchers if m.name == "__name__"]
            name = names[0] if names else None
        if name:
            out.metrics.add(name)
            out.matchers.setdefault(name, set()).update(labels - {"__name__"})
    elif kind == "MatrixSelector":
        _walk(node.vector_selector, out)
    elif kind == "Call":
        for arg in node.args:
            _walk(arg, out)
    elif kind == "AggregateExpr":
        if node.modifier is not None:
            out.grouping.update(node.modifier.labels)
        _walk(node.expr, out)
        if node.param is not None:
            _walk(node.param, out)
    elif kind == "BinaryExpr":
        matching = getattr(node.modifier, "matching", None) if node.modifier is not None else None
        if matching is not None:
            out.grouping.update(matching.labels)
        _walk(node.lhs, out)
        _walk(node.rhs, out)
    elif kind in {"ParenExpr", "UnaryExpr", "SubqueryExpr"}:
        _walk(node.expr, out)
    elif kind not in {"NumberLiteral", "StringLiteral"}:
        raise TypeError(f"unknown PromQL node {kind}")
