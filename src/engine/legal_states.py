"""Legal states and their names for people.

A procedure records a change of legal state with the `case.set_state` handler (e.g.
`deemed_withdrawn`). What staff and reviewers read is the state's name in
`processes/legal_states.json`, beside roles.json:

    {"deemed_withdrawn": {"zh": "视为撤回投诉", "en": "Deemed withdrawn"}, ...}

`validate` refuses a literal state the file does not name; a computed state (an expression)
is named when the file has every value it can take (string constants in the expression, or
every entry starting with an f-string's fixed beginning). The names of the states a process
uses are stored with its deployed version (and hashed with it), so every page, the dossier
and the history read them from the version, whatever the working directory.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

FILE_NAME = "legal_states.json"


def load(directory: Path) -> tuple[dict | None, list[str]]:
    """The vocabulary beside a BPMN file and the problems with it; None without the file
    (a folder without one is not checked, and its states are shown as their ids)."""
    path = directory / FILE_NAME
    if not path.is_file():
        return None, []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        return {}, [f"{path}: is not valid JSON: {err}"]
    if not isinstance(data, dict):
        return {}, [f"{path}: must be an object of state -> {{\"zh\": ..., \"en\": ...}}"]
    problems = [f"{path}: state '{state}' needs a Chinese name: {{\"zh\": \"…\", \"en\": \"…\"}}"
                for state, names in data.items()
                if not isinstance(names, dict) or not isinstance(names.get("zh"), str) or not names["zh"].strip()]
    return data, problems


def possible_states(expression: str | None) -> tuple[set[str], set[str], bool]:
    """What a `state` expression can give: literal states, the fixed beginnings of f-strings,
    and whether some value comes from data (a variable, a call) and cannot be known here.
    Only the values an expression returns count: `"a" if x == "yes" else "b"` gives a and b."""
    try:
        tree = ast.parse((expression or "").strip(), mode="eval").body
    except SyntaxError:
        return set(), set(), True
    literals, prefixes, opaque = set(), set(), False
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.IfExp):
            todo += [node.body, node.orelse]
        elif isinstance(node, ast.BoolOp):
            todo += node.values
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            literals.add(node.value)
        elif isinstance(node, ast.JoinedStr):
            head = node.values[0] if node.values else None
            prefixes.add(head.value if isinstance(head, ast.Constant) and isinstance(head.value, str) else "")
        else:
            opaque = True
    return literals, prefixes, opaque


def names_for(vocabulary: dict, literals: set[str], prefixes: set[str]) -> dict:
    """The vocabulary entries of a process's states: the literals and every prefix match."""
    out = {s: vocabulary[s] for s in literals if s in vocabulary}
    for prefix in prefixes:
        out.update({s: v for s, v in vocabulary.items() if s.startswith(prefix)})
    return dict(sorted(out.items()))


def label(meta: dict | None, state: str | None, lang: str = "zh") -> str | None:
    """The state's name for people from the deployed version; the id if it has none."""
    if not state:
        return None
    names = ((meta or {}).get("legal_states") or {}).get(state) or {}
    return names.get("en" if lang == "en" else "zh") or state
