"""SpiffWorkflow's BPMN parser as complaintflow configures it: service tasks parse into
`HandlerServiceTask`. The serializer (specs and instance state to JSON and back) is in
`serializer.py`, which loads no parser; its names are re-exported here.
"""

from __future__ import annotations

from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser, VALIDATOR
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser

from .serializer import HandlerServiceTask, Serializer, canonical_json

__all__ = ["ComplaintBpmnParser", "HandlerServiceTask", "Serializer", "canonical_json"]      # the last three re-exported


class ComplaintBpmnParser(SpiffBpmnParser):
    OVERRIDE_PARSER_CLASSES = dict(SpiffBpmnParser.OVERRIDE_PARSER_CLASSES)
    OVERRIDE_PARSER_CLASSES[full_tag("serviceTask")] = (ServiceTaskParser, HandlerServiceTask)

    def __init__(self, validate: bool = True):
        super().__init__(validator=VALIDATOR if validate else None)
