"""The case dossier (归档): `complaintflow export` and the case page's download.

One enterprise_customer case is walked to its close with a controlled clock; its dossier is
rendered as PDF twice only (once by the CLI, once by the web download: WeasyPrint takes a
few seconds), and as HTML for the rest."""

from __future__ import annotations

import io
import os
import re

import pytest
from click.testing import CliRunner
from werkzeug.security import generate_password_hash

from complaintflow.engine.review.history import readable_history
from complaintflow.web.app import create_app, load_roles
from complaintflow.web.cli import cli
from complaintflow.web.users import load_users
from conftest import PROCESSES, TEST_CHAIN_KEY, open_task

INTAKE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
          "content": "新买的电水壶漏水", "promised_resolution_at": "2026-05-08T17:00:00+08:00"}

# who may download: reception (sees identity), the handling department (masked), a reviewer
# (any case, masked), finance (no role on this case: the same 404 as a missing case)
USERS = {"li": ("李客服", "reception"), "zhao": ("赵经理", "department"), "qa": ("质控员", "reviewer"),
         "qian": ("钱会计", "finance")}


@pytest.fixture
def roles():
    roles = load_roles(PROCESSES)
    roles.setdefault("reviewer", {"zh": "质控/合规审查", "en": "Compliance review"})["reviews"] = True
    return roles


@pytest.fixture
def closed_case(service, clock):
    """KH-2026-000001, registered, handled and closed over two days."""
    service.deploy([PROCESSES / "enterprise_customer.bpmn"])
    case = service.start("enterprise_customer", INTAKE, "li")

    def do(task, user, data, **later):
        clock.advance(**later)
        service.complete_task(open_task(service, case.instance_id, task)["task_id"], user, data)

    do("preliminary_check", "li", {"outcome": "accepted", "severity": "general", "department": "品质部"}, hours=1)
    do("investigate", "zhao", {"findings": "密封圈缺陷", "responsible_party": "company"}, hours=3)
    do("agree_solution", "zhao", {"solution_type": "replacement", "solution": "换新", "customer_agreed": True}, hours=1)
    do("feedback", "li", {"reply": "已为您换新", "reply_channel": "phone"}, days=1)
    do("satisfaction_survey", "li", {"satisfied": "yes"}, hours=1)
    do("summary_archive", "li", {"summary": "已处理"}, hours=1)
    assert service.show(case.instance_id)["status"] == "completed"
    return case


def users_file(tmp_path):
    digest = generate_password_hash("demo", method="pbkdf2:sha256:1000")       # fast in tests
    lines = []
    for login, (name, role) in USERS.items():
        lines += [f"[users.{login}]", f'name = "{name}"', f'roles = ["{role}"]', f'password_hash = "{digest}"', ""]
    path = tmp_path / "users.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def names(login):
    entry = USERS.get(login)
    return entry if entry else None


def flat(text: str) -> str:
    """Text without any white space: PDF text breaks lines wherever the layout did."""
    return re.sub(r"\s+", "", text)


def pdf_text_and_fonts(content: bytes) -> tuple[str, set[str]]:
    from pypdf import PdfReader
    reader = PdfReader(io.BytesIO(content))
    text = "".join(page.extract_text() for page in reader.pages)
    embedded = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            for descendant in font.get("/DescendantFonts", []):
                descriptor = descendant.get_object()["/FontDescriptor"]
                if any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                    embedded.add(str(font["/BaseFont"]))
    return text, embedded


def assert_whole_dossier(text: str, service, case, *, masked: bool):
    """The case number, every readable-history sentence, the deadline rules with their seed
    references, and the chain head are all in `text`."""
    shown = service.show(case.instance_id)
    body = flat(text)
    assert "KH-2026-000001" in body and "企业客户投诉处理" in body
    assert "已结案" in body and "品质部" in body and "产品质量" in body
    sentences = [e["sentence"] for e in readable_history(service, case.instance_id, may_see_identity=not masked,
                                                         names=names)]
    assert len(sentences) == shown["events"]
    for sentence in sentences:
        assert flat(sentence) in body, sentence
    assert any("完成了「初步核实」" in s for s in sentences)
    assert shown["deadlines"]
    for d in shown["deadlines"]:
        assert flat(d["rule"]) in body and flat(d["seed"]) in body
    head = service.history(case.instance_id)[-1]
    assert f"最后事件序号{head['seq']}" in body
    from complaintflow.engine.archive import chain_head
    assert chain_head(service, case.instance_id)["hash"] in body
    assert "一致：事件记录的哈希链完整" in body
    assert ("王女士" in body) is not masked and ("13800000000" in body) is not masked


# --- CLI -----------------------------------------------------------------------------------

@pytest.fixture
def run(tmp_path, monkeypatch, db_url):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COMPLAINTFLOW_NOW", raising=False)
    monkeypatch.setenv("COMPLAINTFLOW_DATABASE_URL", db_url)
    key = tmp_path / "chain_key"
    key.write_text(TEST_CHAIN_KEY.hex())
    monkeypatch.setenv("COMPLAINTFLOW_CHAIN_KEY_FILE", str(key))
    monkeypatch.setenv("COMPLAINTFLOW_USERS_FILE", str(users_file(tmp_path)))   # display names in the history
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return invoke


def test_export_writes_a_pdf_and_html_dossier_with_the_cjk_font_embedded(run, service, closed_case, tmp_path):
    result = run("--now", "2026-05-08T12:00", "export", "KH-2026-000001", "--pdf", tmp_path / "case.pdf",
                 "--html", tmp_path / "case.html", "--user", "qa")
    assert result.exit_code == 0, result.output
    assert "consistent" in result.output and "wrote" in result.output

    pdf = (tmp_path / "case.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    text, fonts = pdf_text_and_fonts(pdf)
    assert any("Noto-Sans-CJK-SC" in f for f in fonts), fonts
    assert_whole_dossier(text, service, closed_case, masked=True)
    assert "第1页/共" in flat(text)                       # page numbers in the footer
    assert "本次导出时核验" in flat(text)

    html = (tmp_path / "case.html").read_text(encoding="utf-8")
    assert_whole_dossier(re.sub(r"<[^>]+>", "", html), service, closed_case, masked=True)
    assert "<svg" in html and 'data-state="current"' not in html     # closed: the path, nothing current
    assert "size: A4" in html and "Noto Sans CJK SC" in html
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_export_errors_have_exit_codes_and_leave_no_file(run, service, closed_case, tmp_path):
    missing = run("export", "KH-2026-999999", "--html", tmp_path / "x.html")
    assert missing.exit_code == 3 and "KH-2026-999999" in missing.output
    assert not (tmp_path / "x.html").exists()

    nowhere = run("export", "KH-2026-000001", "--html", tmp_path / "no" / "such" / "x.html")
    assert nowhere.exit_code == 2 and "does not exist" in nowhere.output

    folder = run("export", "KH-2026-000001", "--html", tmp_path)
    assert folder.exit_code == 2 and "is a directory" in folder.output

    if os.geteuid() != 0:                   # root may write anywhere: only the checks above apply
        locked = tmp_path / "locked"
        locked.mkdir()
        (locked / "old.html").write_text("older dossier")
        locked.chmod(0o500)
        try:
            refused = run("export", "KH-2026-000001", "--html", locked / "old.html")
            assert refused.exit_code == 2 and "cannot write" in refused.output
            assert (locked / "old.html").read_text() == "older dossier"      # untouched, nothing beside it
            assert sorted(p.name for p in locked.iterdir()) == ["old.html"]
        finally:
            locked.chmod(0o700)

    neither = run("export", "KH-2026-000001")
    assert neither.exit_code == 2 and "--pdf" in neither.output


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from complaintflow.engine.errors import InvalidInput
    from complaintflow.web import dossier
    target = tmp_path / "case.pdf"
    target.write_bytes(b"the older dossier")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(dossier.os, "replace", broken_replace)
    with pytest.raises(InvalidInput, match="No space left"):
        dossier.write_atomically(target, b"%PDF-new")
    assert target.read_bytes() == b"the older dossier"
    assert [p.name for p in tmp_path.iterdir()] == ["case.pdf"]


def test_show_identity_unmasks_the_complainant_and_no_verify_uses_the_stored_result(run, service, closed_case,
                                                                                    tmp_path):
    first = run("export", "KH-2026-000001", "--html", tmp_path / "a.html", "--no-verify")
    assert first.exit_code == 0 and "not verified" in first.output
    assert "尚未核验" in (tmp_path / "a.html").read_text(encoding="utf-8")
    run("export", "KH-2026-000001", "--html", tmp_path / "b.html", "--user", "qa")       # verifies, stores it
    run("export", "KH-2026-000001", "--html", tmp_path / "c.html", "--no-verify", "--show-identity")
    html = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert "最近一次核验（非导出时）" in html and "核验人 qa" in html
    assert "王女士" in html and "13800000000" in html
    assert "王女士" not in (tmp_path / "b.html").read_text(encoding="utf-8")


# --- web -----------------------------------------------------------------------------------

@pytest.fixture
def app(service, closed_case, roles, tmp_path):
    return create_app(service, users=load_users(users_file(tmp_path), set(roles)), roles=roles, secret_key="test",
                      testing=True)


def signed_in(app, login):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"login": login, "password": "demo", "csrf_token": csrf})
    assert response.status_code == 302
    return client


def test_the_case_page_offers_the_dossier_and_the_pdf_downloads(app, service, closed_case):
    client = signed_in(app, "zhao")
    page = client.get("/cases/KH-2026-000001").get_data(as_text=True)
    assert 'href="/cases/KH-2026-000001/dossier.pdf"' in page
    response = client.get("/cases/KH-2026-000001/dossier.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert 'attachment; filename="dossier-KH-2026-000001.pdf"' == response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    # the whole content is checked on the CLI's PDF; here: it opens, and it is this case for this user
    from pypdf import PdfReader
    reader = PdfReader(io.BytesIO(response.data))
    first = flat(reader.pages[0].extract_text())
    assert "KH-2026-000001" in first and "（保密）" in first and "王女士" not in first   # department: masked
    assert "导出人：zhao" in "".join(flat(p.extract_text()) for p in reader.pages[-2:])
    logged = service.access_log()[0]
    assert (logged["user"], logged["action"], logged["target"], logged["allowed"]) == \
        ("zhao", "download_dossier", "KH-2026-000001", True)


def test_the_dossier_follows_the_case_pages_access_rules(app, service, closed_case):
    reception = signed_in(app, "li").get("/cases/KH-2026-000001/dossier.html")
    assert reception.status_code == 200 and "王女士" in reception.get_data(as_text=True)   # sees_identity

    reviewer = signed_in(app, "qa").get(f"/cases/{closed_case.instance_id}/dossier.html")
    assert reviewer.status_code == 200
    html = reviewer.get_data(as_text=True)
    assert "KH-2026-000001" in html and "王女士" not in html and "（保密）" in html

    finance = signed_in(app, "qian")
    outside = finance.get("/cases/KH-2026-000001/dossier.pdf")
    missing = finance.get("/cases/KH-2026-999999/dossier.pdf")
    assert outside.status_code == missing.status_code == 404
    assert outside.data == missing.data
    refused = [e for e in service.access_log(refused_only=True) if e["action"] == "download_dossier"]
    assert {e["target"] for e in refused} == {"KH-2026-000001", "KH-2026-999999"}
    downloads = [e for e in service.access_log() if e["action"] == "download_dossier" and e["allowed"]]
    assert {e["user"] for e in downloads} == {"li", "qa"}

    assert app.test_client().get("/cases/KH-2026-000001/dossier.pdf").status_code == 302    # signed out: sign in
