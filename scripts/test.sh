#!/usr/bin/env bash
# Run the whole test suite. Exits non-zero if any test fails or if no test ran.
source "$(dirname "$0")/_env.sh"
# bpmn-js (the modeler inside bpmn.io and Camunda Modeler) for the modeler round-trip test
if [ ! -d tests/modeler/node_modules/bpmn-js ] && command -v npm >/dev/null 2>&1; then
  echo "installing bpmn-js into tests/modeler (npm ci)" >&2
  (cd tests/modeler && npm ci --no-audit --no-fund --loglevel=error) || echo "warning: npm ci failed; the modeler round trip will be skipped" >&2
fi
set +e
python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$code"
