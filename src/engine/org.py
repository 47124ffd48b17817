"""The organisation file: units, people and who reports to whom (docs/operations.md).

Operator-maintained TOML beside the users file; COMPLAINTFLOW_ORG_FILE names it, without it
the demo organisation of data/org/demo.toml is used:

    [units.sales]
    name = "销售部"
    parent = "company"      # optional
    head = "e010"           # optional: a person id

    [people.e020]
    name = "张员工"
    unit = "sales_team"
    reports_to = "e011"     # optional (the top has none)
    user = "sales_staff"    # optional: the login in the users file, for people who use the system

A procedure gives a user task to one person with the task property `assignTo`
(docs/process-design.md, "Tasks for a person and the organisation file"):

    superior(complainant_id, 2)   the person 2 levels up the reporting line from the person
                                  whose id is in case-data field `complainant_id`
    head('finance_audit')         the head of a unit named in the BPMN
    head(unit_field)              the head of the unit whose id is in a case-data field

`AssignRule.resolve` gives the login of that person, or why there is none (in Chinese, for
the case's log and the task page); the task then stays with its lane's role.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInput, Message, Person, Role, msg

log = logging.getLogger("complaintflow")

ORG_FILE_SETTING = "COMPLAINTFLOW_ORG_FILE"
DEMO_ORG = Path(__file__).resolve().parents[2] / "data" / "org" / "demo.toml"
ASSIGN_PROPERTY = "assignTo"


class OrgFileError(InvalidInput):
    """The organisation file is missing or wrong; `problems` has one sentence per entry at fault,
    each naming the file and the entry."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class Unassignable(LookupError):
    """No person (or no login) where the organisation was asked for one; `reason` says why in Chinese."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Unit:
    id: str
    name: str
    parent: str | None
    head: str | None


@dataclass(frozen=True)
class OrgPerson:
    id: str
    name: str
    unit: str
    reports_to: str | None
    user: str | None

    @property
    def label(self) -> str:
        """张员工（e020）"""
        return f"{self.name}（{self.id}）"


class Organisation:
    def __init__(self, units: dict[str, Unit], people: dict[str, OrgPerson], source: Path):
        self.units, self.people, self.source = units, people, source
        self._by_user = {p.user: p for p in people.values() if p.user}

    def person(self, person_id) -> OrgPerson:
        found = self.people.get(str(person_id)) if person_id not in (None, "") else None
        if found is None:
            raise Unassignable(f"组织架构中没有人员 {person_id}" if person_id not in (None, "") else "未填写人员")
        return found

    def superior(self, person_id: str, levels: int) -> OrgPerson:
        """The person `levels` steps up the reporting line from `person_id` (1: the direct superior)."""
        start = current = self.person(person_id)
        for _ in range(levels):
            if not current.reports_to:
                raise Unassignable(f"{start.label}的{superior_words(levels)}不存在")
            current = self.people[current.reports_to]
        return current

    def head(self, unit_id: str) -> OrgPerson:
        unit = self.units.get(str(unit_id)) if unit_id not in (None, "") else None
        if unit is None:
            raise Unassignable(f"组织架构中没有单位 {unit_id}" if unit_id not in (None, "") else "未填写单位")
        if not unit.head:
            raise Unassignable(f"{unit.name}（{unit.id}）没有负责人")
        return self.people[unit.head]

    def person_of_user(self, login: str | None) -> OrgPerson | None:
        """The person whose `user` is this login (None: the login is nobody's in the file)."""
        return self._by_user.get(login or "")

    def user_problems(self, logins: set[str], users_source=None) -> list[str]:
        """A person's `user` that is not a login of the users file."""
        where = f" ({users_source})" if users_source else ""
        return [f"organisation file '{self.source}', person '{p.id}': user '{p.user}' is not in the users file{where}"
                for p in self.people.values() if p.user and p.user not in logins]

    def counts(self) -> str:
        users = sum(1 for p in self.people.values() if p.user)
        return f"{len(self.units)} unit(s), {len(self.people)} person(s), {users} with a login"


def superior_words(levels: int) -> str:
    return {1: "直接上级", 2: "隔级上级"}.get(levels, f"第{levels}级上级")


def org_path(path: str | Path | None = None) -> Path:
    explicit = path or os.environ.get(ORG_FILE_SETTING)
    return Path(explicit) if explicit else DEMO_ORG


def load_org(path: str | Path | None = None, known_users: set[str] | None = None, users_source=None) -> Organisation:
    """Read and check the organisation file (`path`, else COMPLAINTFLOW_ORG_FILE, else the demo
    file); with `known_users` (the logins of the users file) every `user` must be one of them.
    Raises OrgFileError listing every entry at fault."""
    source = org_path(path)
    if not source.is_file():
        raise OrgFileError([f"organisation file '{source}' does not exist (set {ORG_FILE_SETTING})"])
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise OrgFileError([f"organisation file '{source}' is not valid TOML: {err}"]) from None
    problems: list[str] = []
    unit_table, people_table = raw.get("units"), raw.get("people")
    for key in sorted(set(raw) - {"units", "people"}):
        problems.append(f"organisation file '{source}': unknown table '{key}' (the file has [units.ID] and [people.ID])")
    if not isinstance(unit_table, dict) or not unit_table:
        problems.append(f"organisation file '{source}' has no [units.ID] tables")
        unit_table = {}
    if not isinstance(people_table, dict) or not people_table:
        problems.append(f"organisation file '{source}' has no [people.ID] tables")
        people_table = {}

    def text(entry, key, where, required):
        value = entry.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: '{key}' must be {'a' if required else 'an optional'} non-empty string")
            return None
        return value.strip()

    def read(table, what, keys, required):
        """(id, its values by key) of each entry of a [units] or [people] table."""
        for ident, entry in table.items():
            where = f"organisation file '{source}', {what} '{ident}'"
            if not isinstance(entry, dict):
                problems.append(f"{where}: must be a table")
                continue
            for key in sorted(set(entry) - set(keys)):
                problems.append(f"{where}: unknown key '{key}' (a {what} has {', '.join(keys)})")
            yield ident, {key: text(entry, key, where, key in required) for key in keys}

    units = {uid: Unit(uid, v["name"] or uid, v["parent"], v["head"])
             for uid, v in read(unit_table, "unit", ("name", "parent", "head"), {"name"})}
    people = {pid: OrgPerson(pid, v["name"] or pid, v["unit"] or "", v["reports_to"], v["user"])
              for pid, v in read(people_table, "person", ("name", "unit", "reports_to", "user"), {"name", "unit"})}

    def refer(what, ident, key, value, table, kind):
        if value and value not in table:
            problems.append(f"organisation file '{source}', {what} '{ident}': {key} '{value}' is not a {kind} of the file")

    for u in units.values():
        refer("unit", u.id, "parent", u.parent, units, "unit")
        refer("unit", u.id, "head", u.head, people, "person")
    logins: dict[str, str] = {}
    for p in people.values():
        refer("person", p.id, "unit", p.unit, units, "unit")
        refer("person", p.id, "reports_to", p.reports_to, people, "person")
        if p.user and p.user in logins:
            problems.append(f"organisation file '{source}', person '{p.id}': user '{p.user}' is also the login of "
                            f"person '{logins[p.user]}'")
        elif p.user:
            logins[p.user] = p.id
    problems += _cycles(source, "person", "reports_to", {p.id: p.reports_to for p in people.values()})
    problems += _cycles(source, "unit", "parent", {u.id: u.parent for u in units.values()})
    org = Organisation(units, people, source)
    if known_users is not None:
        problems += org.user_problems(known_users, users_source)
    if problems:
        raise OrgFileError(problems)
    return org


def _cycles(source, what, key, links: dict[str, str | None]) -> list[str]:
    """One problem per cycle of `links` (each entry points to at most one other)."""
    out, done = [], set()
    for start in links:
        path, cur = [], start
        while cur in links and cur not in done and cur not in path:
            path.append(cur)
            cur = links[cur]
        if cur in path:
            loop = path[path.index(cur):] + [cur]
            out.append(f"organisation file '{source}', {what} '{cur}': '{key}' goes round in a circle "
                       f"({' -> '.join(loop)})")
        done |= set(path)
    return out


# --- assignTo ------------------------------------------------------------------------------
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_SUPERIOR = re.compile(rf"superior\(\s*({_NAME})\s*,\s*(\d+)\s*\)")
_HEAD_QUOTED = re.compile(r"""head\(\s*(?:'([^'"]+)'|"([^'"]+)")\s*\)""")
_HEAD_FIELD = re.compile(rf"head\(\s*({_NAME})\s*\)")


@dataclass(frozen=True)
class AssignRule:
    """A parsed `assignTo`: superior(FIELD, N), head('UNIT') or head(FIELD)."""

    kind: str               # "superior" or "head"
    field: str | None       # the case-data field read (None: a unit named in the BPMN)
    unit: str | None = None
    levels: int = 0

    @classmethod
    def parse(cls, text: str | None) -> "AssignRule":
        """The rule, or ValueError saying what the property may be."""
        value = (text or "").strip()
        if m := _SUPERIOR.fullmatch(value):
            levels = int(m.group(2))
            if not 1 <= levels <= 20:
                raise ValueError(f"'{value}': the number of levels up must be 1 to 20, not {levels}")
            return cls("superior", m.group(1), levels=levels)
        if m := _HEAD_QUOTED.fullmatch(value):
            return cls("head", None, unit=m.group(1) or m.group(2))
        if m := _HEAD_FIELD.fullmatch(value):
            return cls("head", m.group(1))
        raise ValueError(f"'{value}' is not one of superior(FIELD, LEVELS), head('UNIT_ID') or head(FIELD), "
                         "e.g. superior(complainant_id, 2)")

    def wanted(self, org: Organisation | None = None) -> str:
        """Whom the rule asks for, in Chinese (隔级上级, 财务监察审计部负责人)."""
        if self.kind == "superior":
            return superior_words(self.levels)
        unit = org.units.get(self.unit) if org is not None and self.unit else None
        return f"{unit.name}负责人" if unit else "单位负责人"

    def resolve(self, org: Organisation, data: dict) -> tuple[OrgPerson, str]:
        """(the person, their login) for a case's data, or Unassignable with the reason in
        Chinese: 「未能指派给隔级上级：张员工（e020）的隔级上级不存在」."""
        try:
            value = data.get(self.field) if self.field else self.unit
            if self.field and value in (None, ""):
                raise Unassignable(f"案件数据中没有{self.field}")
            person = org.superior(str(value), self.levels) if self.kind == "superior" else org.head(str(value))
            if not person.user:
                raise Unassignable(f"{person.label}没有系统账号")
        except Unassignable as err:
            raise Unassignable(f"未能指派给{self.wanted(org)}：{err.reason}") from None
        return person, person.user


# --- who may act on a task ----------------------------------------------------------------------
def task_refusal(row, actor: str, roles: set[str] | None) -> Message | None:
    """Why `actor` may not claim or complete task `row` (a human_tasks row), or None.

    A task assigned to a person is theirs alone, whatever their roles (and whoever else holds
    the task's role); any other task is for the holders of its role (`roles` None: an
    operator's action, no role check)."""
    if row.assignee:
        if row.assignee == actor:
            return None
        return msg("task_assigned", task=row.name, assignee=Person(row.assignee), user=Person(actor))
    if roles is not None and row.role not in roles:
        return msg("task_role", task=row.name, role=Role(row.role), user=Person(actor))
    return None


def users_problems(org: Organisation, logins: set[str], users_source, demo_users: bool) -> list[str]:
    """The organisation's logins checked against the users file. The demo organisation is
    checked against the demo users only: beside a users file of your own it is used as it is,
    with a warning in the log (set COMPLAINTFLOW_ORG_FILE, docs/operations.md)."""
    if org.source == DEMO_ORG and not demo_users:
        log.warning("the demo organisation %s is in use beside the users file %s; set %s to your own "
                    "organisation file", DEMO_ORG, users_source, ORG_FILE_SETTING)
        return []
    return org.user_problems(logins, users_source)


PICK_MAX = 200      # a form offers the people of the file as a list up to this many; beyond, a text field


def with_people(schema: dict, org: Organisation) -> dict:
    """The form with each `x-org-person` field offering the organisation's people as choices
    (张员工（e020）· 销售一组), for the inbox's form controls; the form as it is when it has no such
    field or the file has more than PICK_MAX people (the service checks the value either way)."""
    props = schema.get("properties") or {}
    marked = [n for n, p in props.items() if isinstance(p, dict) and p.get("x-org-person") is True]
    if not marked or len(org.people) > PICK_MAX:
        return schema
    choices = [{"const": p.id, "title": f"{p.label} · {org.units[p.unit].name}"}
               for p in sorted(org.people.values(), key=lambda p: (p.unit, p.id))]
    return dict(schema, properties={n: dict(p, oneOf=choices) if n in marked else p for n, p in props.items()})
