"""schemathesis against /api/v1 from its own generated OpenAPI document: a real server on the
loopback interface, a real token (registering, working tasks and reviewing), bounded examples.
No answer may be a server error, and none may break the schema the document gives it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from complaintflow.engine.tokens import create_token
from webapp import INTAKE, app, svc  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
EXAMPLES = 12           # per operation and phase: the whole run stays well under two minutes on 2 cores


@pytest.fixture
def server(app):
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(server, svc, tmp_path):
    secret = create_token(svc, "fuzz", ["reception", "department", "reviewer"])
    started = svc.start("enterprise_customer", INTAKE, "reception")        # something to read and act on
    assert started.open_tasks
    config = tmp_path / "schemathesis.toml"       # a real case to read, beside the generated refs
    config.write_text(f'[parameters]\n"path.ref" = "{started.case_number}"\n', encoding="utf-8")
    cli = Path(sys.executable).with_name("schemathesis")
    env = dict(os.environ, NO_COLOR="1", HYPOTHESIS_STORAGE_DIRECTORY=str(tmp_path / "hypothesis"))
    run = subprocess.run(
        [str(cli), "--config-file", str(config), "run", f"{server}/api/v1/openapi.json", "--url", server,
         "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance",
         "--header", f"Authorization: Bearer {secret}", "--max-examples", str(EXAMPLES), "--seed", "16",
         "--phases", "examples,coverage,fuzzing", "--workers", "1", "--request-timeout", "30",
         "--report", "junit", "--report-dir", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert re.search(r"Tested: +13\b", out), out[-3000:]                 # every operation was exercised
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", out).groups())
    assert generated == passed > 300, out[-3000:]
