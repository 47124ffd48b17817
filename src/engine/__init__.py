"""The engine: deploy, validate, run, time, log and replay complaint processes."""
