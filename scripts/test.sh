#!/usr/bin/env bash
# Run the whole test suite. Exits non-zero if any test fails or if no test ran.
source "$(dirname "$0")/_env.sh"
set +e
python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$code"
