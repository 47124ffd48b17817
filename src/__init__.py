"""complaintflow: complaint-handling procedures run as BPMN 2.0 processes."""

__version__ = "0.1.0"
