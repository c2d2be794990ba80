# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""README's way for hosts no ansible-core can manage (RHEL 6, 2.6.32, Python 2.6): scripts/capture on the host (sh,
cat, tar), then the playbook and the log scan on the controller with proc_root on the extracted tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile

from conftest import REPO_ROOT

DIAGNOSE = os.path.join(REPO_ROOT, "playbooks", "diagnose.yml")
JUDGE = "Gather memory facts, scan kernel logs and judge the host"
RHEL6_LOG = "paf-old-period-format-rhel6-2.6.32-syslog-squidanalyzer-issue69.log"  # 2.6.32-279.9.1.el6


def test_capture_then_diagnose_and_scan_offline(run_playbook, corpus, tmp_path):
    archive = tmp_path / "capture.tar.gz"
    proc = subprocess.run(["sh", os.path.join(REPO_ROOT, "scripts", "capture"), str(archive)], capture_output=True,
                          text=True, cwd=str(tmp_path), check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == str(archive), proc.stderr
    tree = tmp_path / "host"
    with tarfile.open(str(archive)) as tar:
        names = tar.getnames()
        assert all(not name.startswith("/") and ".." not in name.split("/") for name in names), names
        tar.extractall(str(tree))
    for name in ("buddyinfo", "zoneinfo", "meminfo", "vmstat", "sys/kernel/osrelease", "sys/vm/min_free_kbytes"):
        assert (tree / "proc" / name).is_file(), name
    assert not (tree / "proc" / "sys" / "vm" / "drop_caches").exists()  # write-only triggers are left out

    run = run_playbook(DIAGNOSE, extra_vars={"diagnose_proc_root": str(tree / "proc")})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    facts = run.task_result(JUDGE)["ansible_facts"]
    assert facts["memfrag_verdict"]["severity"] in ("ok", "warning", "critical")
    assert any(f.get("zone") == "Normal" for f in facts["memfrag_findings"]), facts["memfrag_findings"]

    # The host's syslog, here a RHEL 6.3 one from the corpus, scanned with the host's kernel release.
    shutil.copy(os.path.join(corpus, "logs", RHEL6_LOG), str(tree / "var" / "log" / "messages-20121006"))
    play = json.dumps([{"name": "Scan a capture", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "Scan", "register": "scan", "memfrag.linux.kernel_log_scan": {
            "sources": ["files"], "paths": [str(tree / "var" / "log" / "messages-*")],
            "kernel_release": "2.6.32-279.9.1.el6.x86_64"}}]}]) + "\n"
    run = run_playbook(play)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    scan = run.task_result("Scan")
    assert scan["counts"]["page_alloc_failure"] == 1, scan["counts"]
    event = [e for e in scan["events"] if e["kind"] == "page_alloc_failure"][0]
    assert event["order"] == 1 and "GFP_ATOMIC" in json.dumps(event), event
