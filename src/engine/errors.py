"""Errors a user can cause. Each carries a sentence meant for the person who caused it.

Raising one of these inside a unit of work rolls the transaction back, so stored data is
unchanged.
"""


class ComplaintflowError(Exception):
    """Base class: `str(err)` is the message shown to the user."""

    exit_code = 1


class NotFound(ComplaintflowError):
    exit_code = 3


class InvalidInput(ComplaintflowError):
    """Bad data from a user: a form value, a JSON payload, an option."""

    exit_code = 2

    def __init__(self, message, field_errors=None):
        super().__init__(message)
        self.field_errors = field_errors or {}


class ValidationFailed(ComplaintflowError):
    """A process definition has problems; `problems` lists them all."""

    exit_code = 4

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) found; nothing was deployed")


class Conflict(ComplaintflowError):
    """The action no longer fits the stored state: already done, or changed meanwhile.

    `by` and `at` name the action that won (who, when) where it is known; `race` is true
    when this action lost a race with one committed while it ran."""

    exit_code = 5

    def __init__(self, message, *, by: str | None = None, at=None, race: bool = False):
        super().__init__(message)
        self.by, self.at, self.race = by, at, race


class NotAllowed(ComplaintflowError):
    exit_code = 6


class CaseBusy(ComplaintflowError):
    """Another process is handling the case right now (system work skips it)."""

    exit_code = 5
