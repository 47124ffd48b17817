"""A problem found in a process definition: file, element, a sentence a designer understands."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    element: str | None
    message: str
    line: int | None = None

    def __str__(self):
        where = self.file + (f":{self.line}" if self.line else "")
        elem = f" element '{self.element}':" if self.element else ""
        return f"{where}:{elem} {self.message}"

    def as_dict(self):
        return {"file": self.file, "element": self.element, "line": self.line, "message": self.message}
