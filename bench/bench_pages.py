"""The case page and the task page's POST against the bare service calls behind them.

A real SQLite store in a temporary directory, every procedure of processes/ deployed, the
staff inbox app (Flask test client, demo users signed in) and some cases run through the
service: enterprise_customer cases at the preliminary check and at the investigation, and
hospital_patient cases (its drawing is the largest, 12,590 px wide). Then, interleaved round
by round (bench/interleaved.py), so that a noisy machine slows every probe alike:

* baseline — `service.show` + `service.case_detail` of an enterprise case (what the case
  page needs from the service);
* case page — `GET /cases/<id>` of the same case (access checks, history, the drawing
  with the case's path, the template);
* hospital baseline / hospital case page — the same for a hospital_patient case;
* long hospital baseline / page — the same for a hospital_patient case late in its handling:
  the longest scenario of processes/tests/hospital_patient walked step by step through the
  service (engine/scenarios.py), with its many events, tasks and limits;
* task page — `GET /tasks/<id>` of an open preliminary check (against the baseline);
* complete — `service.complete_task` of a preliminary check, each call on a fresh case at
  that step;
* task POST — the same completion posted through the task page (`POST /tasks/<id>`, the
  form as the browser sends it), each on another fresh case at the same step.

Each page probe is paired with its own service probe of the same round; the report gives
the median of those per-round ratios and their range. `--cpu N` measures the case pages by
CPU time instead (`time.process_time`, less disturbed by other work on a shared machine than
wall time): N requests of each case page, each followed by its service calls, and the median
of the per-request ratios; the long case's page also with nothing kept of its event log
(case_view._by_log's entries for the case dropped before each request, as after a restart),
and as the first view after each change: the longest hospital_patient scenario walked again
step by step (`--walks` times), the page and then its service calls timed after every step,
the page going on from what it kept at the step before. Usage:

    python bench/bench_pages.py [--rounds 9] [--repeat 5] [--cpu N [--walks 3]] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from interleaved import paired_rounds  # noqa: E402

from complaintflow.engine.clock import FixedClock  # noqa: E402
from complaintflow.engine.coverage import ProcessModel  # noqa: E402
from complaintflow.engine.scenarios import ScenarioRun, load_file, scenario_files  # noqa: E402
from complaintflow.engine.service import ComplaintService  # noqa: E402
try:                                                    # what the case view keeps (web/case_view.py)
    from complaintflow.web import case_view as web_pages  # noqa: E402
except ImportError:                                     # a tree from before the split: pages.py kept it
    from complaintflow.web import pages as web_pages  # noqa: E402
from complaintflow.web.app import create_app, load_roles  # noqa: E402
from complaintflow.web.users import DEMO_USERS, load_users  # noqa: E402
from conftest import TEST_CHAIN_KEY, FakeNotifier, open_task  # noqa: E402
from webapp import sign_in, token  # noqa: E402

NOW = datetime(2026, 5, 6, 1, 0, tzinfo=timezone.utc)
PROCESSES = ROOT / "processes"
ENTERPRISE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
              "content": "新买的电水壶漏水", "promised_resolution_at": "2026-05-08T17:00:00+08:00"}
ACCEPT = {"outcome": "accepted", "severity": "general", "department": "品质部"}   # the form of the preliminary check, as the page posts it too
HOSPITAL = {"channel": "visit", "complainant": "李建国", "patient": "王秀英", "relationship": "family",
            "contact": "13900000001", "content": "母亲术后换药时护士操作粗暴，伤口渗血",
            "department_complained": "普外科病区", "category": "nursing", "first_receiver": "普外科护士站 张护士",
            "settled_on_spot": False}


class Store:
    """The store, the app and the cases the probes use."""

    def __init__(self, directory: Path, fresh: int):
        self.db_file = directory / "pages.sqlite3"
        self.service = ComplaintService(f"sqlite:///{self.db_file}", clock=FixedClock(NOW),
                                        notifier=FakeNotifier(), chain_key=TEST_CHAIN_KEY)
        self.service.deploy([PROCESSES])
        self.roles = roles = load_roles(PROCESSES)
        self.app = create_app(self.service, users=load_users(DEMO_USERS, set(roles)), roles=roles,
                              secret_key="bench", testing=True)
        self.reception = sign_in(self.app.test_client(), "reception")
        self.office = sign_in(self.app.test_client(), "complaint_office")
        self.csrf = token(self.reception, "/")
        svc = self.service
        accepted = []
        for _ in range(3):                                 # some cases further along
            case = svc.start("enterprise_customer", ENTERPRISE, "reception")
            svc.complete_task(open_task(svc, case.instance_id, "preliminary_check")["task_id"], "reception", ACCEPT)
            accepted.append(case.instance_id)
        self.case_id = accepted[0]
        self.hospital_id = svc.start("hospital_patient", HOSPITAL, "complaint_office").instance_id
        self.long_id = long_hospital_case(directory / "pages.sqlite3", roles)
        # fresh cases at the preliminary check: one per completion, by the service or the page
        self.fresh = [open_task(svc, svc.start("enterprise_customer", ENTERPRISE, "reception").instance_id,
                                "preliminary_check")["task_id"]
                      for _ in range(fresh)]
        self.view_task = self.fresh.pop()

    def check(self):
        """Every page probe answers as a user would see it before anything is timed."""
        assert self.reception.get(f"/cases/{self.case_id}").status_code == 200
        assert "<svg" in self.office.get(f"/cases/{self.hospital_id}").get_data(as_text=True)
        assert "<svg" in self.office.get(f"/cases/{self.long_id}").get_data(as_text=True)
        assert self.reception.get(f"/tasks/{self.view_task}").status_code == 200
        self.post()
        self.complete()

    def show_detail(self, ref):
        self.service.show(ref)
        self.service.case_detail(ref)

    def case_page(self, client, ref):
        response = client.get(f"/cases/{ref}")
        assert response.status_code == 200

    def complete(self):
        self.service.complete_task(self.fresh.pop(), "reception", ACCEPT, roles={"reception"})

    def post(self):
        response = self.reception.post(f"/tasks/{self.fresh.pop()}", data=dict(ACCEPT, csrf_token=self.csrf))
        assert response.status_code == 303, response.get_data(as_text=True)[:500]


def long_hospital_case(db_file: Path, roles, after_step=None) -> str:
    """The case of the longest hospital_patient scenario, walked step by step (at its own
    moments, with its expectations checked) into the store: the scenario runner's steps;
    `after_step(instance_id)` is called after each."""
    models = {"hospital_patient": ProcessModel.from_file(PROCESSES / "hospital_patient.bpmn", "hospital_patient")}
    scenarios = [s for f in scenario_files([PROCESSES / "tests" / "hospital_patient"])
                 for s in load_file(f, models, set(roles))]
    run = ScenarioRun(SimpleNamespace(chain_key=TEST_CHAIN_KEY, models=models),
                      max(scenarios, key=lambda s: len(s.steps)), db_file)
    for step in run.scenario.steps:
        run.do(step)
        if after_step is not None:
            after_step(run.instance_id)
    run.service.engine.dispose()
    return run.instance_id


def cpu_ratios(store: Store, requests: int, walks: int) -> dict:
    """Each case page's CPU time against its service calls', request by request (the page
    first, then `show` + `case_detail` of the same case), the probes taking turns; then the
    long case's first view after each change, over `walks` walks of its scenario."""
    pages = {"case page": (store.reception, store.case_id), "hospital case page": (store.office, store.hospital_id),
             "long hospital case page": (store.office, store.long_id),
             "long hospital, nothing kept": (store.office, store.long_id)}
    samples = {label: [] for label in pages}

    def timed(label, client, ref):
        t0 = time.process_time()
        store.case_page(client, ref)
        t1 = time.process_time()
        store.show_detail(ref)
        samples[label].append((t1 - t0, time.process_time() - t1))
    for _ in range(requests):
        for label, (client, ref) in pages.items():
            if label.endswith("nothing kept"):        # as after a restart: nothing kept of the case
                kept = getattr(web_pages, "_LOG_VIEWS", {})      # (a tree without it keeps nothing)
                for key in [k for k in kept if k[1] == ref]:
                    kept.pop(key)
            timed(label, client, ref)
    samples["long hospital, after each change"] = []
    for _ in range(walks):                          # each step a change, the page viewed right after it
        long_hospital_case(store.db_file, store.roles,
                           lambda ref: timed("long hospital, after each change", store.office, ref))
    return {label: {"page_ms": statistics.median(p for p, _ in s) * 1000,
                    "service_ms": statistics.median(b for _, b in s) * 1000, "against": "show + case_detail",
                    "median_ratio": statistics.median(p / b for p, b in s),
                    "range": (min(p / b for p, b in s), max(p / b for p, b in s))} for label, s in samples.items()}


PAIRS = {"case page": ("case page", "baseline"), "hospital case page": ("hospital page", "hospital show+detail"),
         "long hospital case page": ("long hospital page", "long hospital show+detail"),
         "task page (GET)": ("task page", "baseline"), "task POST": ("task POST", "complete")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--repeat", type=int, default=5, help="runs per probe per round (the best counts)")
    ap.add_argument("--cpu", type=int, metavar="N", help="the case pages by CPU time, N requests each")
    ap.add_argument("--walks", type=int, default=3, help="with --cpu: walks of the long scenario, the page "
                    "viewed after each step")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp), fresh=2 * args.rounds * args.repeat + 4)
        store.check()
        if args.cpu:
            return report_table(cpu_ratios(store, args.cpu, args.walks), args.json)
        probes = {
            "baseline": lambda: store.show_detail(store.case_id),
            "case page": lambda: store.case_page(store.reception, store.case_id),
            "hospital show+detail": lambda: store.show_detail(store.hospital_id),
            "hospital page": lambda: store.case_page(store.office, store.hospital_id),
            "long hospital show+detail": lambda: store.show_detail(store.long_id),
            "long hospital page": lambda: store.case_page(store.office, store.long_id),
            "task page": lambda: store.reception.get(f"/tasks/{store.view_task}"),
            "complete": store.complete,
            "task POST": store.post,
        }
        result = paired_rounds(probes, args.rounds, repeat=args.repeat,
                               on_round=lambda r, _: print(f"round {r + 1}/{args.rounds}", file=sys.stderr))
    samples = result["samples"]
    report = {}
    for label, (page, base) in PAIRS.items():
        ratios = [p / b for p, b in zip(samples[page], samples[base])]
        report[label] = {"page_ms": statistics.median(samples[page]) * 1000,
                         "service_ms": statistics.median(samples[base]) * 1000,
                         "against": base, "median_ratio": statistics.median(ratios),
                         "range": (min(ratios), max(ratios))}
    report_table(report, args.json)


def report_table(report: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    print(f"{'probe':<34}{'page ms':>9}{'service ms':>12}  {'ratio (median, range over rounds)':<36} service call")
    for label, r in report.items():
        lo, hi = r["range"]
        print(f"{label:<34}{r['page_ms']:>9.2f}{r['service_ms']:>12.2f}  {r['median_ratio']:>5.2f}x ({lo:.2f}-{hi:.2f})"
              f"{'':<18} {r['against']}")


if __name__ == "__main__":
    main()
