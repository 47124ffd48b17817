"""A problem found in a process definition: file, element, a sentence a designer understands.

An *error* stops `deploy`; a *warning* is printed (`warning:`) but deploys. A *structural*
problem (a flow that leads nowhere, an element without an outgoing flow, a gateway whose
flows do not cover every case, an element that cannot be reached) is the root cause of
others, so it is listed first; `follow_on` holds the ids of the elements whose own problems
(can never be reached) were folded into this one's sentence.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    element: str | None
    message: str
    line: int | None = None
    name: str | None = None
    severity: str = "error"
    follow_on: tuple[str, ...] = ()
    structural: bool = False

    @property
    def is_warning(self) -> bool:
        return self.severity == "warning"

    def __str__(self):
        where = self.file + (f":{self.line}" if self.line else "")
        level = " warning:" if self.is_warning else ""
        elem = ""
        if self.element:
            label = f" ({self.name})" if self.name and self.name != self.element else ""
            elem = f" element '{self.element}'{label}:"
        return f"{where}:{level}{elem} {self.message}"

    def as_dict(self):
        return {"file": self.file, "element": self.element, "line": self.line, "message": self.message,
                "name": self.name, "severity": self.severity, "follow_on": list(self.follow_on)}


def ordered(problems: list[Problem]) -> list[Problem]:
    """Root causes first: structural errors, then the other errors, then warnings; within each,
    files in the order they were checked and elements in file order."""
    files: dict[str, int] = {}
    for p in problems:
        files.setdefault(p.file, len(files))
    return sorted(problems, key=lambda p: (p.is_warning, not p.structural, files[p.file], p.line or 0))
