# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (not a test): where one module process's time goes, for ping and for diagnose's memory_facts.

bench_fleet_scale.py finds that the module process on the target is what diagnose adds over ping. This takes
the module files of one host's run (kept with their arguments, on a fixture proc_root as in that benchmark) and
prints, for each:

* the lines of memfrag.linux code the run imports (what the target compiles at each run; the payload may
  hold more, such as the log scanner memory_facts imports only when it scans);
* instructions of the whole process (``perf stat``: the count does not move with machine load), as it runs and
  with an experiment that caches zipimport's first compile of each file (Python 3.11's zipimport compiles a
  file once to name it and again to run it): the difference is what the second compile costs;
* the module's own work: one run inside a process whose imports are already done (median of several).

    python tests/benchmarks/bench_module_anatomy.py [--runs 10]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_fleet_scale as fleet  # noqa: E402

PLAYBOOKS = {"ping": fleet.PING, "diagnose": None}

# Loaded into the module's Python through PYTHONPATH: remember what zipimport compiled, by importer and name.
COMPILE_CACHE = """
import zipimport
_compiled = {}
_first = zipimport._get_module_code
def _once(importer, fullname):
    key = (id(importer), fullname)
    if key not in _compiled:
        _compiled[key] = _first(importer, fullname)
    return _compiled[key]
zipimport._get_module_code = _once
"""


def payload(path):
    """The module's zip (as bytes), its FQN and its JSON arguments, from a kept AnsiballZ file."""
    with open(path) as f:
        text = f.read()
    data = base64.b64decode(re.search(r"zip_data='([^']*)'", text).group(1))
    fqn = re.search(r"module_fqn='([^']*)'", text).group(1)
    params = re.search(r"params='([^']*)'", text).group(1)
    return data, fqn, params


def collection_lines(data, modules):
    """(lines, files) of the memfrag.linux .py files among ``modules`` (dotted names), read from the payload."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = set(z.namelist())
        lines = files = 0
        for module in modules:
            if not module.startswith("ansible_collections.memfrag."):
                continue
            for name in (module.replace(".", "/") + ".py", module.replace(".", "/") + "/__init__.py"):
                if name in names:
                    lines += z.read(name).count(b"\n")
                    files += 1
        return lines, files


def instructions(path, runs, env=None):
    """Mean instructions of ``python path`` over runs, or None where perf cannot count them."""
    out = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "-r", str(runs), sys.executable, path],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, check=False)
    for line in out.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("instructions") and fields[0].isdigit():
            return int(fields[0])
    return None


def own_work(data, fqn, params, base, runs):
    """(median ms of one module run in a child process whose imports a first run did, memfrag modules imported)."""
    zpath = os.path.join(base, "payload-%s.zip" % fqn.rsplit(".", 1)[-1])
    with open(zpath, "wb") as f:
        f.write(data)
    script = """
import io, json, statistics, sys, time
sys.path.insert(0, %r)
from ansible.module_utils._internal._ansiballz import _loader
times = []
for i in range(%d + 1):
    real, sys.stdout = sys.stdout, io.StringIO()
    t0 = time.perf_counter()
    try:
        _loader._run_module(json_params=%r.encode(), profile="legacy", module_fqn=%r, modlib_path=%r)
    except SystemExit:
        pass
    times.append(time.perf_counter() - t0)
    sys.stdout = real
print(json.dumps([times[1:], sorted(m for m in sys.modules if m.startswith("ansible_collections.memfrag."))]))
""" % (zpath, runs, params, fqn, zpath)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    times, modules = json.loads(out.stdout.strip().splitlines()[-1])
    return 1000 * statistics.median(times), modules


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="memfrag-anatomy-")
    try:
        (root,) = fleet.make_trees(os.path.join(base, "trees"), 1)
        cache_dir = os.path.join(base, "compile-cache")
        os.makedirs(cache_dir)
        with open(os.path.join(cache_dir, "sitecustomize.py"), "w") as f:
            f.write(COMPILE_CACHE)
        ping_book = os.path.join(base, "ping.yml")
        with open(ping_book, "w") as f:
            f.write(fleet.PING)
        books = {"ping": ping_book, "diagnose": os.path.join(fleet.REPO_ROOT, "playbooks", "diagnose.yml")}
        perf = shutil.which("perf") is not None
        print("python=%s  %d runs each" % (sys.version.split()[0], args.runs))
        for book, playbook in books.items():
            for name, path in fleet.kept_modules(playbook, base, root).items():
                data, fqn, params = payload(path)
                plain = instructions(path, args.runs) if perf else None
                cached = None
                if plain is not None:
                    env = dict(os.environ, PYTHONPATH=cache_dir)
                    cached = instructions(path, args.runs, env)
                work_ms, imported = own_work(data, fqn, params, base, args.runs)
                # The module file itself runs as __main__; count it with what it imported.
                lines, files = collection_lines(data, set(imported) | {fqn})
                print("%s / %s: compiles %d lines of memfrag.linux code (%d files, module included); own work %.1f ms "
                      "(median, imports done)" % (book, name, lines, files, work_ms))
                if plain is None:
                    print("    instructions: perf cannot count them here")
                else:
                    print("    instructions: %.2f G as it runs, %.2f G with zipimport's first compile cached "
                          "(the second compile: %.2f G)" % (plain / 1e9, cached / 1e9, (plain - cached) / 1e9))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
