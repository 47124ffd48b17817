"""DMN files in a validation run: parsed once, checked once.

DMN cells are Python expressions too (SpiffWorkflow evaluates them), so input expressions,
output entries and input entries (unary tests such as `< 5`, `"a"`, `4 < ? < 6`, `-`) are
held to the same allowed subset as every other expression.
"""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from .expressions import ExpressionRefused, check_expression
from .problems import Problem

_KINDS = {"inputExpression": "DMN input expression", "inputEntry": "DMN input entry",
          "outputEntry": "DMN output entry"}


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


class DmnFiles:
    def __init__(self, paths: list[Path]):
        self.roots: dict[Path, etree._Element] = {}
        self.problems: list[Problem] = []
        for path in paths:
            try:
                self.roots[path] = etree.parse(str(path)).getroot()
            except etree.XMLSyntaxError as err:
                self.problems.append(Problem(str(path), None, f"is not well-formed XML: {err.msg}", err.lineno))
                continue
            self.problems += _check_cells(path, self.roots[path])

    def _nodes(self, paths, local_name):
        for path in paths:
            root = self.roots.get(path)
            if root is not None:
                yield from (n for n in root.iter() if _local(n.tag) == local_name)

    def decision_ids(self, paths) -> set[str]:
        return {d.get("id") for d in self._nodes(paths, "decision")}

    def output_names(self, paths) -> set[str]:
        return {o.get("name").split(".")[0] for o in self._nodes(paths, "output") if o.get("name")}

    def output_entries(self, paths, name) -> list[str] | None:
        """The texts of every output entry of the column named `name` (None: no DMN outputs it)."""
        found = None
        for table in self._nodes(paths, "decisionTable"):
            columns = [o.get("name") for o in table if _local(o.tag) == "output"]
            if name not in columns:
                continue
            found = found if found is not None else []
            at = columns.index(name)
            for rule in (r for r in table if _local(r.tag) == "rule"):
                entries = [e for e in rule if _local(e.tag) == "outputEntry"]
                text = next((c.text for c in entries[at] if _local(c.tag) == "text"), "") if at < len(entries) else ""
                found.append((text or "").strip())
        return found


_DMN_PLACEHOLDER = re.compile(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)")


def _check_cells(path: Path, root) -> list[Problem]:
    problems = []

    def report(node, what, text, err):
        owner = node
        while owner is not None and not owner.get("id"):
            owner = owner.getparent()
        problems.append(Problem(str(path), owner.get("id") if owner is not None else None,
                                f"{what} refused: {err}", node.sourceline))

    for node in root.iter():
        tag = _local(node.tag)
        if tag not in ("inputExpression", "inputEntry", "outputEntry"):
            continue
        text_node = next((c for c in node if _local(c.tag) == "text"), None)
        text = (text_node.text or "").strip() if text_node is not None else ""
        if not text or (tag == "inputEntry" and text == "-"):
            continue
        try:
            if tag == "inputEntry":
                candidate = _DMN_PLACEHOLDER.sub("dmninputexpr", text)
                try:
                    check_expression(candidate)
                except ExpressionRefused as first:
                    if "is not a valid expression" not in str(first):
                        raise
                    check_expression(f"dmninputexpr {candidate}")
            else:
                check_expression(text)
        except ExpressionRefused as err:
            report(node, _KINDS[tag], text, err)
    return problems
