"""Compliance review: what a reviewer reads and checks, on the same service layer as the inbox.

- `history`: each event of a case as a sentence in Chinese, with the submitted data by the
  forms' titles and labels, and what changed in the case data at that step;
- `search`: cases by number, procedure, received dates, status, breached limits, category,
  department, legal state — indexed queries, flat to 1,000,000 cases;
- `at_event`: a case as it was after event N (open tasks, waiting timers, deadlines, data,
  path taken), rebuilt from the log;
- `verify`: `replay --verify` of one case or of many, with each result kept for the badge;
- `stats`: the office's figures (受理量, 办结率, 按时办结率, 满意率 ...) by SQL aggregates.
"""
