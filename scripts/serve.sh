#!/usr/bin/env bash
# Start complaintflow on the embedded default: SQLite in var/, processes/ deployed,
# demo users for every role, the staff inbox, timers ticking every 30 s. Extra arguments go to
# `complaintflow serve` (e.g. --port 8080).
source "$(dirname "$0")/_env.sh"
exec complaintflow serve "$@"
