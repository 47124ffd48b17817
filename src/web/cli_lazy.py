"""Helpers imported on their first call. A command imports only what it uses: `--help` loads
click and the command modules, a read command the read side of the service
(docs/performance.md, "How fast the command starts")."""

from __future__ import annotations

import importlib


def lazy(module: str, name: str):
    """`name` of `module` (relative to complaintflow.web), imported when first called."""
    def call(*args, **kwargs):
        return getattr(importlib.import_module(module, __package__), name)(*args, **kwargs)
    call.__name__ = call.__qualname__ = name
    return call
