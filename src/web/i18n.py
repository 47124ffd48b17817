"""The inbox's own words in Chinese (default) and English.

A dictionary rather than gettext catalogues (Flask-Babel): the inbox has a few dozen
strings, and a dict needs no compile step in set-up or CI. What staff read from the
procedures (task names, form titles, documentation) is the designers' text, shown as is.
"""

from __future__ import annotations

LANGS = ("zh", "en")

TEXT = {
    "app": ("投诉处理", "Complaints"),
    "inbox": ("待办", "Inbox"),
    "new_case": ("登记投诉", "Register a complaint"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "login": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "bad_login": ("用户名或密码不正确。", "Wrong user name or password."),
    "signed_in_as": ("当前用户", "Signed in as"),
    "roles": ("角色", "Roles"),
    "procedure": ("流程", "Procedure"),
    "category": ("类别", "Category"),
    "status": ("状态", "Status"),
    "all": ("全部", "All"),
    "mine": ("我已认领", "Claimed by me"),
    "unclaimed": ("未认领", "Unclaimed"),
    "overdue": ("已超期", "Overdue"),
    "provisional": ("暂定期限", "Provisional"),
    "filter": ("筛选", "Filter"),
    "case_number": ("编号", "Case"),
    "task": ("任务", "Task"),
    "role": ("角色", "Role"),
    "due": ("期限", "Due"),
    "claimed_by": ("认领人", "Claimed by"),
    "claim": ("认领", "Claim"),
    "release": ("释放", "Release"),
    "open": ("办理", "Open"),
    "no_tasks": ("没有待办任务。", "No open tasks."),
    "no_due": ("无期限", "no limit"),
    "provisional_note": ("期限依据尚未公布的节假日安排计算，公布后会重新计算。",
                         "Computed before the year's holiday arrangement was published; it will be recomputed."),
    "counts": ("各角色待办", "Open tasks per role"),
    "previous": ("上一页", "Previous"),
    "next": ("下一页", "Next"),
    "page_of": ("共 {total} 项", "{total} in all"),
    "submit": ("提交", "Submit"),
    "register": ("登记", "Register"),
    "form_errors": ("提交内容有误，请按提示修改；未保存任何内容。", "Some entries need correcting; nothing was saved."),
    "case_summary": ("案件概况", "Case summary"),
    "history": ("办理记录", "History"),
    "deadlines": ("时限", "Time limits"),
    "diagram": ("流程图", "Process diagram"),
    "documentation": ("说明", "What this task is for"),
    "received": ("收到时间", "Received"),
    "legal_state": ("法律状态", "Legal state"),
    "case_status": ("案件状态", "Case status"),
    "acknowledgement": ("已告知投诉人", "Told to the complainant"),
    "registered": ("投诉已登记", "Complaint registered"),
    "choose_procedure": ("选择流程", "Choose a procedure"),
    "last_day": ("最后一天", "last day"),
    "rule": ("依据", "Rule"),
    "when": ("时间", "When"),
    "who": ("人员", "Who"),
    "what": ("事项", "What"),
    "confidential": ("（保密）", "(confidential)"),
    "task_done": ("任务已办结。", "Task completed."),
    "claimed": ("已认领。", "Claimed."),
    "released": ("已释放。", "Released."),
    "not_allowed": ("您没有办理此事项的角色，已记录本次访问。", "You do not hold the role for this; the attempt was logged."),
    "not_found": ("找不到该页面或任务。", "No such page or task."),
    "conflict": ("未作任何更改：", "Nothing was changed: "),
    "case": ("案件", "Case"),
    "open_tasks": ("当前任务", "Current tasks"),
    "language": ("English", "中文"),
    "deadline_open": ("进行中", "running"),
    "deadline_paused": ("已中止计算", "paused"),
    "deadline_met": ("按时完成", "met"),
    "deadline_breached": ("已超期", "breached"),
    "status_running": ("办理中", "in progress"),
    "status_completed": ("已结案", "closed"),
    "status_incident": ("故障待处理", "incident"),
    "path_note": ("绿色为已走过的路径，红色为当前所在环节。", "Green: the path taken. Red: where the case is now."),
    "csrf": ("页面已过期，请刷新后重试；未保存任何内容。", "The page expired; reload and try again. Nothing was saved."),
    "event_started": ("登记投诉", "registered the complaint"),
    "event_task_completed": ("完成", "completed"),
    "event_timer_fired": ("时限到期", "time limit reached"),
    "event_handler_called": ("系统处理", "system step"),
    "event_message_received": ("收到消息", "message received"),
    "event_retry": ("重试", "retried"),
    "event_incident": ("故障", "incident"),
    "event_deadlines_recomputed": ("重新计算时限", "limits recomputed"),
    "event_event_unhandled": ("未处理的事件", "unhandled event"),
}


def translate(key: str, lang: str = "zh", **values) -> str:
    pair = TEXT.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" else pair[0]
    return text.format(**values) if values else text
