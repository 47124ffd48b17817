"""Errors a user can cause. Each carries a sentence meant for the person who caused it.

Raising one of these inside a unit of work rolls the transaction back, so stored data is
unchanged.

An error a page can show carries a `Message`: a language-neutral code and its parameters.
The command line prints its English sentence (`str(err)`); the inbox renders the same code
and parameters in the page's language (`err.text("zh", ...)`). Both sentences come from one
entry of `MESSAGES`, so they cannot drift apart, and nothing ever parses English text.
Parameters are shown as they are, except: a moment (datetime) in Beijing time to the minute,
a `Term` in the language's word, a `Field` by its title (「投诉渠道」, a table's
「调查核实人员」第1行「姓名」), a `Person` or `Role` by the name the caller looks up (the
login or role id when it has none), a nested `Message` rendered in the same language, and a
list joined in the language's way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable


@dataclass(frozen=True)
class Term:
    """A word with a translation in TERMS (a JSON type, a task status)."""

    key: str


@dataclass(frozen=True)
class Field:
    """A form field by its title, or one cell of a table field (row from 1, column title)."""

    title: str
    row: int | None = None
    column: str | None = None


@dataclass(frozen=True)
class Person:
    """A user, shown by name where the caller knows it (the login otherwise)."""

    login: str


@dataclass(frozen=True)
class Role:
    """A role, shown by its name where the caller knows it (the id otherwise)."""

    id: str


# code -> (Chinese, English). The English sentences are what the CLI prints (docs/cli.md).
MESSAGES: dict[str, tuple[str, str]] = {
    # tasks and cases
    "no_task": ("找不到任务 {task}。", "there is no task '{task}'"),
    "no_task_cli": ("找不到任务 {task}。", "there is no task '{task}' (see `complaintflow tasks`)"),
    "no_case": ("找不到案件 {case}。", "there is no case '{case}'"),
    "task_role": ("任务「{task}」由{role}办理，{user}不具有该角色。",
                  "task '{task}' is for role '{role}', which {user} does not hold"),
    "task_assigned": ("任务「{task}」已指派给{assignee}，只有{assignee}本人可以办理；{user}不能认领或办理。",
                      "task '{task}' is assigned to {assignee}; only they can claim or complete it, not {user}"),
    # /api/v1: a token acts in its roles, never for a person (engine/tokens.py)
    "task_assigned_token": ("任务「{task}」已指派给{assignee}本人。API 令牌按角色办理、不代表任何个人，不能查看、认领或"
                            "办理指派给个人的任务；请{assignee}在收件箱中办理。",
                            "task '{task}' is assigned to {assignee} in person. An API token acts in its roles, "
                            "never for a person, so it may not read, claim or complete a task given to one person; "
                            "{assignee} completes it in the inbox"),
    "start_role": ("登记「{process}」需要{role}角色。", "registering '{process}' needs role '{role}'"),
    "task_done_by": ("任务「{task}」已由{by}于 {at} 办理完毕；未作任何更改。",
                     "task '{task}' ({id}) was already completed by {by} at {at}; nothing was changed"),
    "task_not_open": ("任务「{task}」已不在办理中（{status}）；未作任何更改。",
                      "task '{task}' ({id}) is no longer open ({status}); nothing was changed"),
    "task_closed_by": ("任务「{task}」已不在办理中（{by}于 {at} {status}）；未作任何更改。",
                       "task '{task}' is no longer open ({status} by {by} at {at}); nothing was changed"),
    "task_closed": ("任务「{task}」已不在办理中（{status}）；未作任何更改。",
                    "task '{task}' is no longer open ({status}); nothing was changed"),
    "task_claimed": ("任务「{task}」已由{by}于 {at} 认领；未作任何更改。",
                     "task '{task}' was claimed by {by} at {at}; nothing was changed"),
    "release_other": ("任务「{task}」由{by}认领，只有认领人可以释放。",
                      "task '{task}' is claimed by {by}; only the user who claimed it can release it"),
    "release_unclaimed": ("任务「{task}」未被认领，无需释放。",
                          "task '{task}' is not claimed; only the user who claimed it can release it"),
    "task_not_ready": ("任务「{task}」已不再等待填写；未作任何更改。",
                       "task '{task}' is not waiting for input any more; nothing was changed"),
    "race": ("另一操作同时修改了案件；未作任何更改，请刷新后重试。",
             "a case was changed by another action at the same time; nothing was changed — reload and try again"),
    "case_race": ("案件 {case} 被另一操作同时修改；未作任何更改，请刷新后重试。",
                  "case {case} was changed by another action at the same time; nothing was changed — "
                  "reload and try again"),
    "case_changed_by": ("案件 {case} 在您操作期间已由{by}于 {at} 修改（{what}）；未作任何更改，请刷新后重试。",
                        "case {case} was changed by {by} at {at} ({what}) while this action ran; "
                        "nothing was changed — reload and try again"),
    "case_version": ("案件 {case} 在您打开后已有变化（版本 {expected}，现为 {actual}）；未作任何更改，请刷新后重试。",
                     "case {case} has changed since you loaded it (version {expected}, now {actual}); "
                     "nothing was changed — reload and try again"),
    "case_closed": ("案件 {case} 已结案；未作任何更改。", "case {case} is closed; nothing was changed"),
    "no_incident": ("案件 {case} 没有待重试的故障。", "case {case} has no open incident to retry"),
    "no_message_wait": ("案件 {case} 目前不在等待「{label}」（目前等待：{waiting}）；未作任何更改。",
                        "case {case} is not waiting for message '{message}' (it waits for: {waiting}); "
                        "nothing was changed"),
    "awaited_item": ("「{name}」", "'{message}' ({name})"),
    "message_role": ("登记「{event}」需要{roles}角色，{user}不具有该角色。",
                     "recording '{event}' (message '{message}') needs role {roles}, which {user} does not hold"),
    "message_done_by": ("「{event}」已由{by}于 {at} 登记；未作任何更改。",
                        "'{event}' (message '{message}') was already recorded by {by} at {at}; nothing was changed"),
    # what an action did (a step of the case, for conflicts)
    "did_complete": ("完成了「{task}」", "completed task '{task}'"),
    "did_timer": ("时限到期", "a timer fired"),
    "did_message": ("收到消息「{message}」", "delivered message '{message}'"),
    "did_start": ("登记了案件", "registered the case"),
    "did_retry": ("重试了失败的步骤", "retried a failed step"),
    "did_recompute": ("重新计算了时限", "recomputed its deadlines"),
    "did_other": ("{kind}", "{kind}"),
    # form submissions (engine.forms): one per JSON Schema keyword, naming the field by its title
    "form_invalid": ("表单「{form}」有误：{errors}", "form {form} has errors: {errors}"),
    "not_an_object": ("提交的数据必须是 JSON 对象。", "the submitted data must be a JSON object, e.g. {{\"field\": \"value\"}}"),
    "required": ("{field}必填", "{field} is required"),
    "min_length_empty": ("{field}不能为空", "{field} must not be empty"),
    "min_length": ("{field}至少 {limit} 字，现为 {count} 字", "{field}: at least {limit} characters, not {count}"),
    "max_length": ("{field}最多 {limit} 字，现为 {count} 字", "{field}: at most {limit} characters, not {count}"),
    "minimum": ("{field}不能小于 {limit}，现为 {value}", "{field}: {value} is less than the minimum of {limit}"),
    "maximum": ("{field}不能大于 {limit}，现为 {value}", "{field}: {value} is more than the maximum of {limit}"),
    "exclusive_minimum": ("{field}必须大于 {limit}，现为 {value}", "{field}: {value} must be more than {limit}"),
    "exclusive_maximum": ("{field}必须小于 {limit}，现为 {value}", "{field}: {value} must be less than {limit}"),
    "multiple_of": ("{field}应为 {limit} 的整数倍，现为 {value}", "{field}: {value} is not a multiple of {limit}"),
    "min_items": ("{field}至少{verb} {limit} 项，现为 {count} 项", "{field}: at least {limit} item(s), not {count}"),
    "max_items": ("{field}最多{verb} {limit} 项，现为 {count} 项", "{field}: at most {limit} item(s), not {count}"),
    "unique_items": ("{field}有重复的项：{value}", "{field}: {value} is listed more than once"),
    "contains": ("{field}须包含「{choice}」", "{field} must include {choice}"),
    "pattern": ("{field}的格式不对：{value}", "{field}: '{value}' does not have the required form"),
    "priority_value": ("{field}只能为 1（急）、2（优先）或 3（一般），现为 {value}",
                       "{field}: the priority must be 1 (urgent), 2 (priority) or 3 (normal), not {value}"),
    "not_org_person": ("{field}不是组织架构中的人员：{value}", "{field}: '{value}' is not a person of the organisation file"),
    "not_future": ("{field}不能晚于现在（{now}），现为 {value}", "{field}: {value} is later than now ({now})"),
    "must_be_future": ("{field}须晚于现在（{now}），现为 {value}", "{field}: {value} is not later than now ({now})"),
    "format_datetime": ("{field}应为日期和时间，例如 2026-05-06 17:00，现为 {value}",
                        "{field}: '{value}' is not a valid date-time (e.g. 2026-05-06T17:00:00+08:00)"),
    "format_date": ("{field}应为日期，例如 2026-05-06，现为 {value}",
                    "{field}: '{value}' is not a valid date (e.g. 2026-05-06)"),
    "format_other": ("{field}的格式不对：{value}", "{field}: '{value}' is not a valid {format}"),
    "choice": ("{field}只能从所列选项中选择（{choices}）", "{field}: '{value}' is not one of the choices ({choices})"),
    "choice_any": ("{field}所选的值不在选项中", "{field}: '{value}' is not one of the choices"),
    "const": ("此情形下{field}只能为「{choice}」", "{field} must be {choice} here"),
    "confirm": ("{field}须勾选确认", "{field} must be confirmed"),
    "not_here": ("此情形下不应填写{field}", "{field} must be left empty here"),
    "type": ("{field}应为{expected}", "{field}: expected {expected}"),
    "unknown_field": ("表单中没有「{field}」这一项", "'{field}' is not a field of this form"),
    "dependent_required": ("填写{field}时{other}必填", "{other} is required when {field} is given"),
    "invalid_value": ("{field}的值不符合要求", "{field}: {detail}"),
    "form_rule": ("提交的内容不符合表单的要求", "{detail}"),
}

# word -> (Chinese, English)
TERMS: dict[str, tuple[str, str]] = {
    "string": ("文本", "text"), "integer": ("整数", "a whole number"), "number": ("数字", "a number"),
    "boolean": ("是或否", "yes or no"), "array": ("列表", "a list"), "object": ("一组数据", "an object"),
    "null": ("空值", "nothing"),
    "open": ("办理中", "open"), "completed": ("已完成", "completed"), "cancelled": ("已取消", "cancelled"),
    "choose": ("选择", "choose"), "fill": ("填写", "fill in"),
    "yes": ("是", "yes"), "no": ("否", "no"),
    "no_message": ("无外部消息", "no message"),
}


def term(key: str, lang: str = "en") -> str:
    pair = TERMS.get(key)
    return key if pair is None else pair[1 if lang == "en" else 0]


Namer = Callable[[str], str | None]


@dataclass(frozen=True)
class Message:
    """A sentence as a code and its parameters; `text(lang)` says it."""

    code: str
    params: dict = field(default_factory=dict)

    def text(self, lang: str = "en", *, person: Namer | None = None, role: Namer | None = None) -> str:
        pair = MESSAGES.get(self.code)
        if pair is None:
            return self.code
        shown = {k: _show(v, lang, person, role) for k, v in self.params.items()}
        return pair[1 if lang == "en" else 0].format(**shown)

    def __str__(self) -> str:
        return self.text("en")


def msg(code: str, **params) -> Message:
    return Message(code, params)


def _show(value, lang, person, role) -> str:
    from .clock import local_minute
    if isinstance(value, Message):
        return value.text(lang, person=person, role=role)
    if isinstance(value, datetime):
        return local_minute(value)
    if isinstance(value, Term):
        return term(value.key, lang)
    if isinstance(value, Field):
        if lang == "en":
            return value.title + (f", row {value.row}" if value.row else "") + (f", {value.column}" if value.column else "")
        return f"「{value.title}」" + (f"第{value.row}行" if value.row else "") + (f"「{value.column}」" if value.column else "")
    if isinstance(value, Person):
        return (person(value.login) if person else None) or value.login
    if isinstance(value, Role):
        return (role(value.id) if role else None) or value.id
    if isinstance(value, bool):
        return term("yes" if value else "no", lang)
    if isinstance(value, (list, tuple)):
        parts = [_show(v, lang, person, role) for v in value]
        if value and all(isinstance(v, Message) for v in value):
            return ("; " if lang == "en" else "；").join(parts)
        return (", " if lang == "en" else "、").join(parts)
    return str(value)


class ComplaintflowError(Exception):
    """Base class: `str(err)` is the message shown to the user (English); `text(lang)` the
    same in another language when the error carries a `Message` (else None)."""

    exit_code = 1

    def __init__(self, message):
        self.message = message if isinstance(message, Message) else None
        super().__init__(str(message))

    def text(self, lang: str = "en", **names) -> str | None:
        return self.message.text(lang, **names) if self.message else None


class NotFound(ComplaintflowError):
    exit_code = 3


class InvalidInput(ComplaintflowError):
    """Bad data from a user: a form value, a JSON payload, an option.

    `field_messages` (field -> [Message]) are the form's errors; `field_errors` the same in
    English (the CLI and the JSON API), `field_texts(lang)` in another language."""

    exit_code = 2

    def __init__(self, message, field_errors=None):
        super().__init__(message)
        self.field_messages = field_errors or {}

    @property
    def field_errors(self) -> dict[str, list[str]]:
        return self.field_texts("en")

    def field_texts(self, lang: str = "en", **names) -> dict[str, list[str]]:
        return {k: [m.text(lang, **names) if isinstance(m, Message) else str(m) for m in v]
                for k, v in self.field_messages.items()}


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
