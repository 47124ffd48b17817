"""How fast the `complaintflow` command starts: CPU time (user + system) of one whole
process for `--help`, a read command (`tasks --role reception`, `show CASE`), against the
bare interpreter (`python -c pass`) measured in the same rounds.

Setup: a SQLite file in a temporary directory with `processes/` deployed and two cases
started (through the CLI): an `enterprise_customer` case, which waits at no event, and a
`hospital_patient` case, which waits at two timer boundary events, so that `show` restores it
with the engine to find the messages it waits for. Python compiles the project's modules
once into a temporary bytecode cache (PYTHONPYCACHEPREFIX), as an installation does on its
first run: the development environment sets PYTHONDONTWRITEBYTECODE, which would make every
start compile the package from source (`--no-bytecode` measures that case). Then, for `--rounds` rounds, each
command once per round (order rotated), its CPU time read from the child's resource usage
(`os.wait4`), so that other work on a shared machine counts less than wall time would.
Reported: each command's median CPU ms, the median over rounds of its ratio to the bare
interpreter of the same round, and that ratio's range. `--before DIR` also runs each command
with an older source tree (DIR holds `complaintflow`, e.g. a link to an exported `src/`),
interleaved in the same rounds. Usage:

    python bench/bench_cli_start.py [--rounds 9] [--before DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from interleaved import paired_rounds  # noqa: E402

INTAKE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
          "content": "新买的电水壶漏水", "promised_resolution_at": "2026-05-08T17:00:00+08:00"}

HOSPITAL_INTAKE = {"channel": "visit", "complainant": "李建国", "patient": "王秀英", "relationship": "family",
                   "contact": "13900000001", "content": "分娩时新生儿锁骨骨折", "department_complained": "普外科病区",
                   "category": "medical_accident", "first_receiver": "普外科护士站 张护士", "settled_on_spot": False}


def cpu_seconds(argv, env) -> float:
    """User + system CPU time of one child process running `argv` to its end."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {err}")
    return usage.ru_utime + usage.ru_stime


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--no-bytecode", action="store_true", help="compile the package from source on every start")
    ap.add_argument("--before", help="a directory whose `complaintflow` is an older source tree, to compare")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    python = sys.executable
    cli = [str(Path(python).parent / "complaintflow")]        # the installed command, as users run it
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, COMPLAINTFLOW_DATABASE_URL=f"sqlite:///{tmp}/cli.sqlite3",
                   COMPLAINTFLOW_CHAIN_KEY_FILE=f"{tmp}/chain_key", COMPLAINTFLOW_NOW="2026-05-06T09:00")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = f"{tmp}/pycache"
        if args.no_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        subprocess.run(cli + ["deploy", str(ROOT / "processes")], env=env, check=True, capture_output=True)
        out = subprocess.run(cli + ["start", "enterprise_customer", "--user", "li", "--json",
                                    "--data", json.dumps(INTAKE, ensure_ascii=False)],
                             env=env, check=True, capture_output=True, text=True).stdout
        case_number = json.loads(out)["case_number"]
        out = subprocess.run(cli + ["start", "hospital_patient", "--user", "nurse_zhang", "--json",
                                    "--data", json.dumps(HOSPITAL_INTAKE, ensure_ascii=False)],
                             env=env, check=True, capture_output=True, text=True).stdout
        waiting_number = json.loads(out)["case_number"]
        subprocess.run(cli + ["calendar", "deadline", "--from", "2026-05-06", "--workdays", "1"], env=env,
                       check=True, capture_output=True)      # every module compiled once
        commands = {
            "baseline": [python, "-c", "pass"],
            "--help": cli + ["--help"],
            "tasks --role reception": cli + ["tasks", "--role", "reception"],
            f"show {case_number}": cli + ["show", case_number],
            f"show {waiting_number} (waits at events)": cli + ["show", waiting_number],
        }
        probes = {name: (lambda a=a: (a, env)) for name, a in commands.items()}
        if args.before:
            old = dict(env, PYTHONPATH=os.pathsep.join(filter(None, [args.before, env.get("PYTHONPATH")])))
            for name, a in list(commands.items())[1:]:
                commands[f"{name} (before)"] = a
                probes[f"{name} (before)"] = lambda a=a: (a, old)
        paired = paired_rounds(probes, args.rounds, measure=lambda fn: cpu_seconds(*fn()))

    result = {name: {"cpu_ms": round(statistics.median(paired["samples"][name]) * 1e3, 1),
                     "ratio": round(paired["median_ratio"][name], 2),
                     "ratio_range": [round(x, 2) for x in paired["ratio_range"][name]]}
              for name in commands}
    if args.json:
        print(json.dumps({"rounds": args.rounds, "commands": result}, ensure_ascii=False))
    else:
        print(f"CPU time per process, median of {args.rounds} rounds (ratio to `python -c pass` of the same round)")
        for name, r in result.items():
            label = "python -c pass" if name == "baseline" else f"complaintflow {name}"
            lo, hi = r["ratio_range"]
            print(f"  {label:43} {r['cpu_ms']:7.1f} ms   {r['ratio']:5.2f}x  ({lo}-{hi})")
    return result


if __name__ == "__main__":
    main()
