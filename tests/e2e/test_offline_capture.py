# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""README's way for hosts no ansible-core can manage (RHEL 6, 2.6.32, Python 2.6): scripts/capture on the host (sh,
cat, tar), then on the controller the archive playbook on the tarball, or the diagnose playbook and the log scan with
proc_root and paths on the extracted tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile

from conftest import REPO_ROOT, TARGET_PYTHON

DIAGNOSE = os.path.join(REPO_ROOT, "playbooks", "diagnose.yml")
ARCHIVE = os.path.join(REPO_ROOT, "playbooks", "archive.yml")
JUDGE = "Gather memory facts, scan kernel logs and judge the host"
RHEL6_LOG = "paf-old-period-format-rhel6-2.6.32-syslog-squidanalyzer-issue69.log"  # 2.6.32-279.9.1.el6


def test_capture_then_diagnose_and_scan_offline(run_playbook, corpus, tmp_path):
    archive = tmp_path / "capture.tar.gz"
    proc = subprocess.run(["sh", os.path.join(REPO_ROOT, "scripts", "capture"), str(archive)], capture_output=True,
                          text=True, cwd=str(tmp_path), check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == str(archive), proc.stderr
    with tarfile.open(str(archive)) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        assert top.startswith("memfrag-capture-") and all(name.split("/")[0] == top for name in names), names
        assert all(not name.startswith("/") and ".." not in name.split("/") for name in names), names
        tar.extractall(str(tmp_path / "host"))
    tree = tmp_path / "host" / top
    for name in ("proc/buddyinfo", "proc/zoneinfo", "proc/meminfo", "proc/vmstat", "proc/sys/kernel/osrelease",
                 "proc/sys/vm/min_free_kbytes", "sos_commands/kernel/uname_-a", "sos_commands/host/hostname",
                 "sos_commands/date/date"):
        assert (tree / name).is_file(), name
    assert not (tree / "proc" / "sys" / "vm" / "drop_caches").exists()  # write-only triggers are left out

    # The tarball is a sosreport to the archive playbook: one report row for the captured host.
    out = tmp_path / "report"
    run = run_playbook(ARCHIVE, inventory=False, extra_vars={"archive_paths": [str(archive)], "report_output_dir": str(out),
                                                             "ansible_python_interpreter": TARGET_PYTHON})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = json.loads((out / "report.json").read_text())["hosts"]
    assert len(rows) == 1 and rows[0]["severity"] in ("ok", "warning", "critical"), rows

    # By hand: the diagnose playbook with proc_root on the extracted tree ...
    run = run_playbook(DIAGNOSE, extra_vars={"diagnose_proc_root": str(tree / "proc")})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    facts = run.task_result(JUDGE)["ansible_facts"]
    assert facts["memfrag_verdict"]["severity"] in ("ok", "warning", "critical")
    assert any(f.get("zone") == "Normal" for f in facts["memfrag_findings"]), facts["memfrag_findings"]

    # ... and the log scan over its logs, here a RHEL 6.3 syslog from the corpus, with the host's kernel release.
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
