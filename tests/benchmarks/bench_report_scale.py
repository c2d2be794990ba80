# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report benchmark (not part of the test suite): the report role alone on 10,000 synthetic hosts' facts.

The hosts are tests/helpers/synthetic_fleet.py's (real fact shapes, judged by the collection's own judge). Their
facts go into a jsonfile fact cache written through ansible-core's own cache plugin, as a module run would leave
them; ``memfrag_reclaim`` (a set_fact) goes into the inventory. Then one ansible-playbook run of a play with only
the report role, local connection, no module run on any host. Printed:

* the playbook's wall time and the controller task's (split into reading hostvars, shaping, writing);
* the size of index.html, report.json and all metrics/*.prom;
* the same shaping and rendering in plain Python, without Ansible (what the action adds is hostvars);
* the page opened in headless Chromium at 1400x900: load time and first contentful paint.

    python tests/benchmarks/bench_report_scale.py [--hosts 10000] [--forks 10]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, TESTS)
from collection_tree import CALLBACK_PLUGINS, collections_root  # noqa: E402

sys.path.append(collections_root())
from helpers import chromium  # noqa: E402
from helpers.synthetic_fleet import fleet, extra_host_vars  # noqa: E402
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_html import render_html  # noqa: E402
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_prometheus import prometheus_text  # noqa: E402
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_report import fleet_report  # noqa: E402

PLAY = """
- name: The report role alone
  hosts: all
  gather_facts: false
  tasks:
    - name: Report
      ansible.builtin.import_role:
        name: memfrag.linux.report
        rolespec_validate: false
"""

# ansible-core's own cache plugin writes the cache, so its file format is the installed version's.
WRITE_CACHE = """
import json, sys
from ansible.plugins.loader import cache_loader, init_plugin_loader
init_plugin_loader()
from ansible import constants as C
cache = cache_loader.get(C.CACHE_PLUGIN)
with open(sys.argv[1]) as f:
    facts = json.load(f)
for host, host_facts in facts.items():
    cache.set(host, host_facts)
"""

MEASURE = "JSON.stringify({rows: document.querySelectorAll('#hosts .host').length, " \
          "fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime})"


def _mib(nbytes):
    return "%.1f MiB" % (nbytes / 1048576.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--forks", type=int, default=10)
    args = parser.parse_args()

    base = tempfile.mkdtemp(prefix="memfrag-bench-report-scale-")
    try:
        t0 = time.monotonic()
        hostvars = fleet(args.hosts, hostile=False)
        print("synthetic fleet of %d hosts made in %.1f s" % (args.hosts, time.monotonic() - t0), flush=True)

        # Plain Python: what shaping and rendering cost without Ansible.
        t0 = time.monotonic()
        report = fleet_report(hostvars, list(hostvars), 4, None, "2026-11-21T00:00:00Z")
        t1 = time.monotonic()
        page = render_html(report)
        t2 = time.monotonic()
        data = json.dumps(report, separators=(",", ":"), sort_keys=True)
        t3 = time.monotonic()
        prom = sum(len(prometheus_text(row, 1.0)) for row in report["hosts"])
        t4 = time.monotonic()
        print("plain Python: shape %.2f s, HTML %.2f s (%s), JSON %.2f s (%s), Prometheus %.2f s (%s)"
              % (t1 - t0, t2 - t1, _mib(len(page)), t3 - t2, _mib(len(data)), t4 - t3, _mib(prom)), flush=True)
        print("hosts by severity: %s" % json.dumps(report["counts"]))
        del page, data

        cache = os.path.join(base, "facts")
        env = dict(os.environ)
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": collections_root(), "ANSIBLE_STDOUT_CALLBACK": "memfrag_test_json",
            "ANSIBLE_CALLBACK_PLUGINS": CALLBACK_PLUGINS, "ANSIBLE_FORKS": str(args.forks),
            "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_RETRY_FILES_ENABLED": "false", "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_CACHE_PLUGIN": "jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": cache,
            "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "0", "ANSIBLE_GATHERING": "explicit",
        })
        facts_file = os.path.join(base, "facts.json")
        with open(facts_file, "w") as f:
            json.dump(dict((h, hv["ansible_facts"]) for h, hv in hostvars.items() if hv.get("ansible_facts")), f)
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", WRITE_CACHE, facts_file], env=env, check=True)
        print("fact cache written in %.1f s" % (time.monotonic() - t0), flush=True)
        inventory = os.path.join(base, "inventory.json")
        with open(inventory, "w") as f:
            json.dump({"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                               "hosts": dict((h, extra_host_vars(hv)) for h, hv in hostvars.items())}}, f)
        playbook = os.path.join(base, "report.yml")
        with open(playbook, "w") as f:
            f.write(PLAY)
        out = os.path.join(base, "report")
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), playbook, "-i", inventory,
               "-e", json.dumps({"report_output_dir": out})]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            raise SystemExit("report failed (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
        data = json.loads(proc.stdout[proc.stdout.index("{"):])
        results = dict((task["task"]["name"].split(" : ")[-1], list(task["hosts"].values()))
                       for play in data["plays"] for task in play["tasks"])
        (write,) = results["Write the fleet report on the controller"]
        seconds = (datetime.datetime.fromisoformat(write["_end"]) - datetime.datetime.fromisoformat(write["_start"])).total_seconds()
        print("ansible-playbook (report role alone, %d hosts, forks %d): %.1f s wall; controller task %.1f s "
              "(read hostvars %.1f s, shape %.1f s, write %.1f s); textfile task: %d execution(s)"
              % (args.hosts, args.forks, wall, seconds, write["seconds"]["read"], write["seconds"]["shape"],
                 write["seconds"]["write"], len(results["Write each host's node_exporter textfile"])), flush=True)
        sizes = dict((name, os.path.getsize(os.path.join(out, name))) for name in ("index.html", "report.json"))
        metrics = os.listdir(os.path.join(out, "metrics"))
        prom_bytes = sum(os.path.getsize(os.path.join(out, "metrics", m)) for m in metrics)
        print("files: index.html %s, report.json %s, metrics/*.prom %d files, %s (%.1f KiB per host)"
              % (_mib(sizes["index.html"]), _mib(sizes["report.json"]), len(metrics), _mib(prom_bytes),
                 prom_bytes / 1024.0 / max(len(metrics), 1)), flush=True)
        try:
            seen = chromium.open_page(os.path.join(out, "index.html"), MEASURE, 1400, 900)
        except chromium.ChromiumUnavailable as exc:
            print("headless Chromium: not run (%s)" % exc)
            return
        measure = json.loads(seen["measure"])
        print("headless Chromium 1400x900: load %.1f s, first contentful paint %.2f s, %d host rows"
              % (seen["load_seconds"], (measure["fcp"] or 0) / 1000.0, measure["rows"]))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
