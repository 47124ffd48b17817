"""Flask application factory. Until the staff inbox exists, `/` shows a status page and
`/api/...` offers read-only JSON over the service layer."""

from __future__ import annotations

from flask import Flask, jsonify, render_template_string

from ..engine.errors import ComplaintflowError, NotFound
from ..engine.service import ComplaintService
from .schemas import dump

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>complaintflow 投诉处理</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}td,th{padding:.2rem .8rem;text-align:left}</style>
</head><body>
<h1>complaintflow 投诉处理</h1>
<p>The staff inbox is not built yet; use the <code>complaintflow</code> command (see docs/cli.md).
员工收件箱尚未上线，请使用命令行。</p>
<h2>已部署流程 Deployed processes</h2>
<table><tr><th>process</th><th>version</th><th>name</th></tr>
{% for p in processes %}<tr><td>{{p.process_id}}</td><td>{{p.version}}</td><td>{{p.name}}</td></tr>{% endfor %}
</table>
<h2>待办 Open tasks: {{ open_tasks }}</h2>
</body></html>"""


def create_app(service: ComplaintService | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SERVICE"] = service or ComplaintService()

    def svc() -> ComplaintService:
        return app.config["SERVICE"]

    @app.get("/")
    def index():
        return render_template_string(PAGE, processes=svc().processes(), open_tasks=svc().count_open_tasks())

    @app.get("/healthz")
    def health():
        return jsonify(status="ok")

    @app.get("/api/tasks")
    def api_tasks():
        return jsonify(dump("task", svc().list_tasks(), many=True))

    @app.get("/api/cases/<ref>")
    def api_case(ref):
        return jsonify(dump("case", svc().show(ref)))

    @app.get("/api/cases/<ref>/history")
    def api_history(ref):
        return jsonify(dump("event", svc().history(ref), many=True))

    @app.errorhandler(ComplaintflowError)
    def on_error(err):
        return jsonify(error=str(err)), 404 if isinstance(err, NotFound) else 400

    return app
