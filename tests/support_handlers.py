"""An extra handler module, loaded through COMPLAINTFLOW_HANDLERS in the CLI tests."""


def flaky(ctx):
    return {"verdict_seen": ctx.params["verdict"]}


def register(registry):
    registry.register("test.flaky", flaky)
