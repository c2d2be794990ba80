# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report benchmark (not part of the test suite): the report playbook against the diagnose playbook on the same
fleet, in one run. Target: report within 1.1x of diagnose at 1,000 hosts.

Hosts are on the local connection, each with its own capture tree made as bench_fleet_scale.py makes them (this
machine's /proc files, each host's buddyinfo from healthy to fragmented). Each playbook runs ``--rounds`` times,
the order rotating every round (this VM's speed drifts; see bench_fleet_scale.py). Printed: wall time of each run,
the best of each and the median of the per-round ratios, and the report play's own tasks (the controller task's
time split into reading hostvars, shaping and writing, as the action returns it).

``--textfiles`` adds a third playbook: the report with ``report_textfile_dir`` set for every host, so each host
also copies its memfrag.prom into its tree (one ansible.builtin.copy per host, in parallel); it has no target, the
copy is two module runs per host.

    python tests/benchmarks/bench_report_fleet.py [--hosts 1000] [--forks 10] [--rounds 2] [--textfiles]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, TESTS)
sys.path.insert(0, HERE)
from collection_tree import CALLBACK_PLUGINS, collections_root, REPO_ROOT  # noqa: E402
from bench_fleet_scale import make_trees  # noqa: E402

TARGET = 1.1


def run(playbook, inventory, forks, extra_vars=None):
    """Run a playbook; returns (wall seconds, {task name: [results]})."""
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_root(), "ANSIBLE_STDOUT_CALLBACK": "memfrag_test_json",
        "ANSIBLE_CALLBACK_PLUGINS": CALLBACK_PLUGINS, "ANSIBLE_FORKS": str(forks),
        "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_RETRY_FILES_ENABLED": "false", "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOST_KEY_CHECKING": "false",
    })
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), playbook, "-i", inventory]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - t0
    data = json.loads(proc.stdout[proc.stdout.index("{"):])
    bad = dict((h, s) for h, s in data["stats"].items() if s["failures"] or s["unreachable"])
    if proc.returncode != 0 or bad:
        raise SystemExit("%s failed (rc %d): %s\n%s" % (playbook, proc.returncode, bad, proc.stderr[-3000:]))
    tasks = {}
    for play in data["plays"]:
        for task in play["tasks"]:
            tasks.setdefault(task["task"]["name"].split(" : ")[-1], []).extend(task["hosts"].values())
    return wall, tasks


def _task_seconds(results):
    total = 0.0
    for res in results:
        if res.get("_start") and res.get("_end"):
            total += (datetime.datetime.fromisoformat(res["_end"]) - datetime.datetime.fromisoformat(res["_start"])).total_seconds()
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--textfiles", action="store_true", help="also run the report with a textfile per host")
    args = parser.parse_args()

    base = tempfile.mkdtemp(prefix="memfrag-bench-report-")
    try:
        roots = make_trees(os.path.join(base, "trees"), args.hosts)
        inventory = os.path.join(base, "inventory.json")
        hosts = {}
        for i, root in enumerate(roots):
            os.makedirs(os.path.join(root, "textfile"))
            hosts["host%04d" % i] = {"diagnose_proc_root": root, "bench_textfile_dir": os.path.join(root, "textfile")}
        with open(inventory, "w") as f:
            json.dump({"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                               "hosts": hosts}}, f)
        out = os.path.join(base, "report")
        books = {"diagnose": (os.path.join(REPO_ROOT, "playbooks", "diagnose.yml"), None),
                 "report": (os.path.join(REPO_ROOT, "playbooks", "report.yml"), {"report_output_dir": out})}
        if args.textfiles:
            books["report+textfiles"] = (books["report"][0],
                                         {"report_output_dir": out, "report_textfile_dir": "{{ bench_textfile_dir }}"})
        order = list(books)
        best, best_tasks, per_round = {}, {}, []
        for rnd in range(args.rounds):
            walls = {}
            shift = rnd % len(order)
            for name in order[shift:] + order[:shift]:
                wall, tasks = run(books[name][0], inventory, args.forks, books[name][1])
                walls[name] = wall
                print("round %d  %-17s %8.2f s" % (rnd + 1, name, wall), flush=True)
                if name not in best or wall < best[name]:
                    best[name], best_tasks[name] = wall, tasks
            per_round.append(walls)
        print()
        print("hosts=%d forks=%d rounds=%d cpus=%d python=%s" % (args.hosts, args.forks, args.rounds, os.cpu_count(),
                                                                 sys.version.split()[0]))
        print("best wall time: " + ", ".join("%s %.2f s" % (name, best[name]) for name in order))
        for name in order[1:]:
            best_ratio = best[name] / best["diagnose"]
            ratios = sorted(walls[name] / walls["diagnose"] for walls in per_round)
            median = statistics.median(ratios)
            target = "target <= %.2fx: %s" % (TARGET, "MET" if max(best_ratio, median) <= TARGET else "MISSED"
                                              if min(best_ratio, median) > TARGET else "MET by one measure only") \
                if name == "report" else "no target"
            print("%-17s / diagnose = %.2fx best-of, %.2fx median of rounds (%s) (%s)"
                  % (name, best_ratio, median, ", ".join("%.2f" % r for r in ratios), target))
        for name in order[1:]:
            tasks = best_tasks[name]
            (write,) = tasks["Write the fleet report on the controller"]
            copies = tasks.get("Write each host's node_exporter textfile", [])
            print("%s, best run: controller task %.2f s (read hostvars %.2f, shape %.2f, write %.2f), bytes %s; "
                  "textfile task: %d executions, %.1f host-s, %d changed"
                  % (name, _task_seconds([write]), write["seconds"]["read"], write["seconds"]["shape"],
                     write["seconds"]["write"], json.dumps(write["bytes"], sort_keys=True), len(copies),
                     _task_seconds(copies), sum(1 for c in copies if c.get("changed"))))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
