"""An extra handler module, loaded through COMPLAINTFLOW_HANDLERS in the CLI tests and by the
worker processes of the contention tests.

`test.flaky` can be held at a gate so that a test makes two processes collide for certain
(rather than hoping two starts line up): with CF_TEST_GATE naming a directory and a file
`block-<instance id>` in it, the handler records its arrival (`arrived-<instance id>-<pid>`)
and waits until `open-<instance id>` appears. Without the block file it returns at once.
"""

import os
import time
from pathlib import Path

GATE_WAIT_LIMIT = 120.0     # seconds; a test that never opens the gate fails instead of hanging


def flaky(ctx):
    gate = os.environ.get("CF_TEST_GATE")
    if gate and (Path(gate) / f"block-{ctx.instance_id}").exists():
        Path(gate, f"arrived-{ctx.instance_id}-{os.getpid()}").touch()
        wait_for(Path(gate) / f"open-{ctx.instance_id}")
    return {"verdict_seen": ctx.params["verdict"]}


def wait_for(path: Path, limit: float = GATE_WAIT_LIMIT) -> None:
    """Wait for a file another process creates (polling: the processes share nothing else)."""
    end = time.monotonic() + limit
    while not path.exists():
        if time.monotonic() > end:
            raise TimeoutError(f"{path} did not appear within {limit:g} s")
        time.sleep(0.01)


class GateNotifier:
    """A notifier whose gateway hangs for chosen recipients: with CF_TEST_GATE set and a file
    `block-<to>` there, `send` records its arrival (`arrived-<to>-<pid>`) and waits until
    `open-<to>` appears — an SMS gateway timing out, as long as the test wants."""

    def send(self, kind, to, message, case_number=None):
        gate = os.environ.get("CF_TEST_GATE")
        if gate and to and (Path(gate) / f"block-{to}").exists():
            Path(gate, f"arrived-{to}-{os.getpid()}").touch()
            wait_for(Path(gate) / f"open-{to}")
        return {"kind": kind, "to": to, "message": message, "case_number": case_number, "channel": "gate"}


def register(registry):
    registry.register("test.flaky", flaky)
