"""Messages from outside (part of `validate`; docs/process-design.md, "Messages from outside").

A catch event that waits for a message (boundary, intermediate, receive task, message start
event) must say which message: `messageRef` naming a `bpmn:message` of the definitions that
has a `name` (the name staff, the CLI, the API and scenario `message:` steps deliver). The
form it carries (`formJsonSchemaFilename`) must exist and be a valid form: it is what staff
fill in on the case page, and what a delivered payload is checked against.
"""

from __future__ import annotations

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
FORM_PROPERTY = "formJsonSchemaFilename"
CATCHING = {"boundaryEvent", "intermediateCatchEvent", "startEvent", "receiveTask"}


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


class MessageChecks:
    """Mixed into the file checker (through GraphChecks), which provides `root`, `problem`,
    `properties` and `load_form`."""

    def check_messages(self, proc) -> None:
        declared = {m.get("id"): m for m in self.root.iter(f"{{{BPMN}}}message")}
        for definition in proc.iter(f"{{{BPMN}}}messageEventDefinition"):
            event = definition.getparent()
            if _local(event.tag) not in CATCHING:
                continue
            self._check_catch(event, definition, declared)
        for task in proc.iter(f"{{{BPMN}}}receiveTask"):
            self._check_catch(task, task, declared)

    def _check_catch(self, event, holder, declared) -> None:
        ref = (holder.get("messageRef") or "").strip()
        if not ref:
            self.problem(event, "waits for a message but names none: add messageRef=\"msg_x\" to its "
                                "messageEventDefinition and <bpmn:message id=\"msg_x\" name=\"withdrawal\"/> to the "
                                "definitions", structural=True)
        elif ref not in declared:
            known = ", ".join(f"{k} ({(m.get('name') or '').strip() or 'no name'})" for k, m in declared.items())
            self.problem(event, f"waits for message '{ref}', which is never declared; add <bpmn:message id=\"{ref}\" "
                                f"name=\"...\"/> to the definitions (declared: {known or 'none'})", structural=True)
        elif not (declared[ref].get("name") or "").strip():
            self.problem(event, f"waits for message '{ref}', which has no name; give <bpmn:message id=\"{ref}\"> a "
                                "name (e.g. name=\"withdrawal\"): it is what staff, the CLI and the API deliver")
        form = self.properties(event).get(FORM_PROPERTY)
        if form:
            self.load_form(event, form)
