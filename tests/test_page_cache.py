"""The case page's diagram is drawn once per process version and marked per case
(engine/drawing.py, web/diagram_view.py); the task page's POST reads the case once.

A redeployed procedure shows its new drawing on its new cases (the kept drawing is the
version's, by content), while a case of the old version keeps the old one; two cases of one
version at different steps each show their own path, whichever page was drawn first."""

from __future__ import annotations

import json
import re
import shutil

from complaintflow.engine.spec import Serializer
from conftest import PROCESSES, open_task
from webapp import INTAKE, app, as_user, svc, token  # noqa: F401 (fixtures)

ACCEPT = {"outcome": "accepted", "severity": "general", "department": "品质部"}


def states(page: str) -> dict[str, str]:
    """Element id -> its mark in the page's diagram ("", "done" or "current")."""
    return dict(re.findall(r'<g (?:data-open="true" )?data-element="([^"]+)" data-state="([^"]*)"', page))


def shown(page: str) -> str:
    """The page without its CSRF tokens (signed with the second they were made in)."""
    return re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token"', page)


def taken(page: str) -> set[str]:
    """Sequence flows drawn as taken (green, thick)."""
    return set(re.findall(r'<polyline data-element="([^"]+)" points="[^"]*" fill="none" stroke="#2e7d32"', page))


def test_two_cases_of_one_version_at_different_steps_show_their_own_path(as_user, svc):
    waiting = svc.start("enterprise_customer", INTAKE, "reception")
    further = svc.start("enterprise_customer", INTAKE, "reception")
    svc.complete_task(open_task(svc, further.instance_id, "preliminary_check")["task_id"], "reception", ACCEPT)
    client = as_user("reception")

    first = client.get(f"/cases/{waiting.instance_id}").get_data(as_text=True)
    second = client.get(f"/cases/{further.instance_id}").get_data(as_text=True)
    again = client.get(f"/cases/{waiting.instance_id}").get_data(as_text=True)

    assert states(first)["preliminary_check"] == "current" and states(first)["investigate"] == ""
    assert states(second)["preliminary_check"] == "done" and states(second)["investigate"] == "current"
    assert "flow_checked" in taken(second) and "flow_checked" not in taken(first)
    assert shown(again) == shown(first)          # the later case's marks did not stay on the drawing
    # each page opens on its own open task
    assert '<g data-open="true" data-element="preliminary_check"' in first
    assert '<g data-open="true" data-element="investigate"' in second
    assert 'data-open="true" data-element="preliminary_check"' not in second


def test_a_new_version_of_a_procedure_shows_its_new_drawing_and_old_cases_keep_theirs(as_user, svc, tmp_path):
    old_case = svc.start("enterprise_customer", INTAKE, "reception")
    client = as_user("reception")
    before = client.get(f"/cases/{old_case.instance_id}").get_data(as_text=True)
    assert "<title>初步核实</title>" in before

    copy = tmp_path / "processes"
    copy.mkdir()
    shutil.copy(PROCESSES / "roles.json", copy)
    shutil.copytree(PROCESSES / "forms" / "enterprise_customer", copy / "forms" / "enterprise_customer")
    text = (PROCESSES / "enterprise_customer.bpmn").read_text(encoding="utf-8")
    renamed = '<bpmn:userTask id="preliminary_check" name="初步核实登记">'
    assert text.count('<bpmn:userTask id="preliminary_check" name="初步核实">') == 1
    (copy / "enterprise_customer.bpmn").write_text(
        text.replace('<bpmn:userTask id="preliminary_check" name="初步核实">', renamed), encoding="utf-8")
    (v2,) = svc.deploy([copy])
    assert v2.version == 2 and v2.created
    new_case = svc.start("enterprise_customer", INTAKE, "reception")

    new_page = client.get(f"/cases/{new_case.instance_id}").get_data(as_text=True)
    old_page = client.get(f"/cases/{old_case.instance_id}").get_data(as_text=True)
    assert "<title>初步核实登记</title>" in new_page and "<title>初步核实</title>" not in new_page
    assert "<title>初步核实</title>" in old_page and "<title>初步核实登记</title>" not in old_page
    assert states(new_page)["preliminary_check"] == "current" == states(old_page)["preliminary_check"]


def test_a_task_posted_from_its_page_reads_the_case_state_once(as_user, svc, monkeypatch):
    case = svc.start("enterprise_customer", INTAKE, "reception")
    task = open_task(svc, case.instance_id, "preliminary_check")
    client = as_user("reception")
    csrf = token(client, f"/tasks/{task['task_id']}")
    reads = []
    restore = Serializer.state_from_dict

    def counted(self, *args, **kwargs):
        reads.append(1)
        return restore(self, *args, **kwargs)
    monkeypatch.setattr(Serializer, "state_from_dict", counted)

    response = client.post(f"/tasks/{task['task_id']}", data=dict(ACCEPT, csrf_token=csrf))
    assert response.status_code == 303
    assert len(reads) == 1                                   # complete_task's own load, nothing before it
    assert open_task(svc, case.instance_id, "investigate")   # and the task was done


def test_a_case_viewed_again_shows_what_changed_since_and_the_same_page_while_unchanged(as_user, svc):
    """The history and the diagram a page made are kept for the case's last event: the same case
    unchanged gives the same page, and once it changes (a task done elsewhere, through the
    service) the next view shows the new step, the new path and the new open task."""
    case = svc.start("enterprise_customer", INTAKE, "reception")
    client = as_user("reception")
    first = client.get(f"/cases/{case.instance_id}").get_data(as_text=True)
    assert shown(client.get(f"/cases/{case.instance_id}").get_data(as_text=True)) == shown(first)
    assert "完成了「初步核实」" not in first and states(first)["preliminary_check"] == "current"

    svc.complete_task(open_task(svc, case.instance_id, "preliminary_check")["task_id"], "reception", ACCEPT)
    after = client.get(f"/cases/{case.instance_id}").get_data(as_text=True)
    assert "完成了「初步核实」" in after and "品质部" in after
    assert states(after)["preliminary_check"] == "done" and states(after)["investigate"] == "current"
    assert "flow_checked" in taken(after)
    masked = as_user("department").get(f"/cases/{case.instance_id}").get_data(as_text=True)
    assert "王女士" in after and "王女士" not in masked and "（保密）" in masked     # read as each user may


def test_a_reviewer_reads_the_log_as_stored_even_when_an_event_was_edited_in_place(as_user, svc):
    """An event edited in the database keeps the case's last event: staff's page may show what it
    kept, but a reviewer's page always shows the log as it is stored now."""
    from sqlalchemy import update

    from complaintflow.engine.models import Event
    case = svc.start("enterprise_customer", INTAKE, "reception")
    reviewer = as_user("reviewer")
    assert "someone_else" not in reviewer.get(f"/cases/{case.instance_id}").get_data(as_text=True)
    with svc.sessions() as s:
        s.execute(update(Event).where(Event.instance_id == case.instance_id, Event.seq == 1).values(actor="someone_else"))
        s.commit()
    assert "someone_else" in reviewer.get(f"/cases/{case.instance_id}").get_data(as_text=True)


# --- a case that changed: what was kept is extended with the new events only ----------------

INVESTIGATE = {"findings": "密封圈缺陷", "responsible_party": "company"}
SOLUTION = {"solution_type": "replacement", "solution": "换新", "customer_agreed": True}


def history_reads(svc, monkeypatch) -> list[tuple[int, int]]:
    """(after, events read) of each `history` read the pages make from now on."""
    reads = []
    read = type(svc).history

    def counted(self, instance_id, after=None):
        events = read(self, instance_id, after=after)
        reads.append((after or 0, len(events)))
        return events
    monkeypatch.setattr(type(svc), "history", counted)
    return reads


def fresh(client, ref) -> str:
    """The case page made from nothing kept (as after a restart)."""
    from complaintflow.web import case_view
    case_view._LOG_VIEWS.clear()
    return shown(client.get(f"/cases/{ref}").get_data(as_text=True))


def test_a_case_viewed_after_each_change_shows_exactly_what_a_page_made_afresh_shows(as_user, svc, monkeypatch):
    """Viewed after each of several changes (tasks done through the service), a page goes on
    from what it kept and reads only the events appended since; it is the same page, to the
    character, as one made with nothing kept: for a user who sees the complainant's identity
    and for one who sees it masked."""
    case = svc.start("enterprise_customer", INTAKE, "reception")
    ref = case.instance_id
    reception, department = as_user("reception"), as_user("department")
    reads = history_reads(svc, monkeypatch)
    reception.get(f"/cases/{ref}")
    svc.complete_task(open_task(svc, ref, "preliminary_check")["task_id"], "reception", ACCEPT)
    for client in (reception, department):
        client.get(f"/cases/{ref}")
    for task, data in (("investigate", INVESTIGATE), ("agree_solution", SOLUTION)):
        svc.complete_task(open_task(svc, ref, task)["task_id"], "department", data)
        seen = len(reads)
        pages = {who: shown(client.get(f"/cases/{ref}").get_data(as_text=True))
                 for who, client in (("reception", reception), ("department", department))}
        # the log was read once (the second page reuses it), and only what came after the kept events
        assert len(reads[seen:]) == 1 and reads[seen][0] > 0 and reads[seen][1] < svc.show(ref)["events"], reads
        assert pages["reception"] == fresh(reception, ref)
        assert pages["department"] == fresh(department, ref)
        reception.get(f"/cases/{ref}")
        department.get(f"/cases/{ref}")           # kept again (made afresh just now) for the next change
    page = pages["department"]
    assert "完成了「调查核实」" in page and "密封圈缺陷" in page and "换新" in page
    assert "王女士" not in page and "王女士" in pages["reception"]


def test_a_later_event_that_brings_an_identity_string_masks_it_in_the_rows_already_kept(as_user, svc, tmp_path):
    """The rows kept for a user who may not see identity were masked with the identity strings
    known then; an event bringing a new one (a form field marked as identity, here a number to
    call back given at the investigation) masks it in the earlier rows too, as a page made
    afresh would: the history is read again, not extended."""
    copy = tmp_path / "processes"
    copy.mkdir()
    shutil.copy(PROCESSES / "roles.json", copy)
    shutil.copytree(PROCESSES / "forms" / "enterprise_customer", copy / "forms" / "enterprise_customer")
    shutil.copy(PROCESSES / "enterprise_customer.bpmn", copy)
    form = copy / "forms" / "enterprise_customer" / "investigate.json"
    schema = json.loads(form.read_text(encoding="utf-8"))
    schema["properties"]["callback"] = {"type": "string", "title": "回拨号码", "x-identity": True}
    form.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    svc.deploy([copy])
    case = svc.start("enterprise_customer", dict(INTAKE, content="电水壶漏水，请回拨13911112222"), "reception")
    ref = case.instance_id
    svc.complete_task(open_task(svc, ref, "preliminary_check")["task_id"], "reception", ACCEPT)
    department = as_user("department")
    before = department.get(f"/cases/{ref}").get_data(as_text=True)
    assert "13911112222" in before                    # not an identity string yet: shown

    svc.complete_task(open_task(svc, ref, "investigate")["task_id"], "department",
                      dict(INVESTIGATE, callback="13911112222"))
    after = shown(department.get(f"/cases/{ref}").get_data(as_text=True))
    assert "13911112222" not in after and "请回拨（保密）" in after
    assert after == fresh(department, ref)
