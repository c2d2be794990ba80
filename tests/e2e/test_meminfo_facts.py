# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""meminfo_facts through real ansible-playbook: the live kernel, fixture trees via proc_root, bad input."""

from __future__ import annotations

import os
import re

KIB = 1024

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Gather memory facts
      memfrag.linux.meminfo_facts:
{args}
      register: gathered
      ignore_errors: true
"""


def _play(**args):
    lines = "".join("        %s: %s\n" % (key, value) for key, value in args.items())
    return PLAY.format(args=lines.rstrip("\n") if lines else "")


def _gather(run_playbook, check=False, **args):
    run = run_playbook(_play(**args), check=check)
    assert run.data, run.stdout[-3000:] + run.stderr[-3000:]
    return run, run.task_result("Gather memory facts")


def test_live_kernel(run_playbook):
    run, result = _gather(run_playbook, top_slab_caches=5)
    assert run.rc == 0 and not result.get("failed"), result
    facts = result["ansible_facts"]["memfrag_meminfo"]
    with open("/proc/meminfo") as handle:
        total_kb = int(re.search(r"^MemTotal:\s+(\d+) kB", handle.read(), re.M).group(1))
    assert facts["meminfo"]["MemTotal"] == total_kb * KIB
    assert facts["sources"] == {"meminfo": "ok", "slabinfo": "ok", "pid/statm": "ok"}  # run as root
    caches = facts["slab"]["top_caches"]
    assert 0 < len(caches) <= 5
    assert [cache["bytes"] for cache in caches] == sorted((cache["bytes"] for cache in caches), reverse=True)
    assert set(caches[0]) == {"name", "active_objects", "objects", "object_size", "bytes"}
    acc = facts["accounting"]
    assert acc["used_bytes"] == acc["explained_bytes"] + acc["unexplained_bytes"]
    assert acc["total_bytes"] == facts["meminfo"]["MemTotal"]
    assert acc["available_source"] == "meminfo"
    assert facts["processes"]["count"] > 10 and facts["processes"]["rss_bytes"] > 0
    assert acc["process_rss_bytes"] == facts["processes"]["rss_bytes"]
    assert "is used" in acc["explanation"] and "process RSS adds up to" in acc["explanation"]
    assert result["changed"] is False


def test_live_kernel_check_mode_and_subset(run_playbook):
    run, result = _gather(run_playbook, check=True, gather_subset="[meminfo]")
    assert run.rc == 0 and not result.get("failed"), result
    facts = result["ansible_facts"]["memfrag_meminfo"]
    assert facts["sources"] == {"meminfo": "ok", "slabinfo": "skipped", "pid/statm": "skipped"}
    assert facts["processes"] is None and facts["accounting"]["process_rss_bytes"] is None


def test_fixture_host_where_slab_explains_used_memory(run_playbook, fixtures_dir):
    root = os.path.join(fixtures_dir, "proc", "meminfo-slab-heavy")
    run, result = _gather(run_playbook, proc_root=root, page_size=4096, top_slab_caches=3)
    assert run.rc == 0 and not result.get("failed"), result
    assert not result.get("warnings")
    facts = result["ansible_facts"]["memfrag_meminfo"]
    assert [cache["name"] for cache in facts["slab"]["top_caches"]] == ["dentry", "ext4_inode_cache", "radix_tree_node"]
    assert facts["slab"]["top_caches"][0] == {"name": "dentry", "active_objects": 66000000, "objects": 66060288,
                                              "object_size": 192, "bytes": 3145728 * 4096}
    acc = facts["accounting"]
    # 16777216 - 409600 - 20480 - (1048576 - 10240) = 15308800 kB used; 13631488 kB of it reclaimable slab
    assert acc["used_bytes"] == 15308800 * KIB
    assert acc["slab_reclaimable_bytes"] == 13631488 * KIB
    assert acc["unexplained_bytes"] == 509952 * KIB
    assert acc["explanation"].startswith("14.60 GiB of 16 GiB is used")
    assert "reclaimable slab 13 GiB" in acc["explanation"]
    assert "process RSS adds up to only 55 MiB" in acc["explanation"]


def test_fixture_old_kernel_warns_for_missing_optional_files(run_playbook, fixtures_dir):
    root = os.path.join(fixtures_dir, "proc", "meminfo-2.6-slab-only")
    run, result = _gather(run_playbook, proc_root=root)
    assert run.rc == 0 and not result.get("failed"), result
    warnings = "\n".join(result.get("warnings", []))
    assert "slabinfo: does not exist" in warnings and "no process directories" in warnings
    facts = result["ansible_facts"]["memfrag_meminfo"]
    assert facts["slab"]["reclaimable_bytes"] is None and facts["slab"]["total_bytes"] == 603744 * KIB
    assert facts["accounting"]["available_source"] == "estimate"
    assert facts["accounting"]["anon_bytes"] is None


def test_malformed_meminfo_fails_naming_file_and_line(run_playbook, fixtures_dir):
    root = os.path.join(fixtures_dir, "proc", "meminfo-malformed")
    run, result = _gather(run_playbook, proc_root=root)
    assert result.get("failed")
    assert result["msg"] == ("cannot account memory: %s/meminfo line 6: expected 'Name: number [kB]', got 'SwapCac'" % root)
    assert result["line"] == 6
    assert "Traceback" not in run.stdout


def test_missing_proc_root_and_bad_options_fail_cleanly(run_playbook, tmp_path):
    run, result = _gather(run_playbook, proc_root=str(tmp_path / "absent"))
    assert result.get("failed") and result["msg"].endswith("/absent/meminfo: does not exist")
    run, result = _gather(run_playbook, page_size=1000)
    assert result.get("failed") and "power of two" in result["msg"]
    run, result = _gather(run_playbook, top_slab_caches=-1)
    assert result.get("failed") and "0 or more" in result["msg"]
