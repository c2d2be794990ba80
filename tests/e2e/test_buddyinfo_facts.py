# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""buddyinfo_facts through real ansible-playbook: the live kernel and fixture trees via proc_root."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess

import pytest

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: facts
      memfrag.linux.buddyinfo_facts:
        {args}
      register: result
      ignore_errors: true
    - name: save what the task returned and what later tasks see
      ansible.builtin.copy:
        content: "{{{{ {{'result': result, 'fact': ansible_facts['memfrag_buddyinfo'] | default(none)}} | to_json }}}}"
        dest: "{out}"
        mode: "0600"
"""


class Run(object):
    def __init__(self, proc, saved):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.result = saved["result"]
        self.fact = saved["fact"]


def _e2e_helpers():
    """The e2e conftest's ansible_env and _bin (its json stdout callback needs ansible.posix, so the
    playbook here saves the registered result to a file instead)."""
    spec = importlib.util.spec_from_file_location("memfrag_e2e_conftest", os.path.join(os.path.dirname(__file__), "conftest.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    return helpers


@pytest.fixture
def play(tmp_path):
    """play(module_args, wrapper=()) runs ansible-playbook against localhost and returns a Run."""
    helpers = _e2e_helpers()
    counter = [0]

    def _run(args=None, wrapper=()):
        counter[0] += 1
        out = tmp_path / ("result%d.json" % counter[0])
        lines = ["%s: %s" % (key, json.dumps(value)) for key, value in (args or {}).items()]
        path = tmp_path / ("play%d.yml" % counter[0])
        path.write_text(PLAY.format(args="\n        ".join(lines) if lines else "{}", out=out))
        env = helpers.ansible_env({"ANSIBLE_STDOUT_CALLBACK": "default"})
        proc = subprocess.run(list(wrapper) + [helpers._bin("ansible-playbook"), str(path), "-i", "localhost,", "-c", "local"],
                              capture_output=True, text=True, env=env, timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        with open(str(out)) as handle:
            return Run(proc, json.load(handle))

    return _run


def _facts(run):
    assert not run.result.get("failed"), run.result
    facts = run.result["ansible_facts"]["memfrag_buddyinfo"]
    assert run.fact == facts  # the fact is set for later tasks
    return run.result, facts


def _tree(fixtures_dir, name):
    return os.path.join(fixtures_dir, "proc", name)


def test_live_localhost(play):
    run = play()
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result, facts = _facts(run)
    assert result["changed"] is False
    assert facts["page_size"] == os.sysconf("SC_PAGE_SIZE")
    assert facts["sources"]["buddyinfo"] == "ok"
    with open("/proc/buddyinfo") as handle:
        live_names = [line.split()[3] for line in handle if line.startswith("Node")]
    # zone names and order are stable even though counts move between reads
    assert [z["zone"] for z in facts["zones"]] == live_names
    for zone in facts["zones"]:
        assert zone["free_pages"] == sum(c << o for o, c in enumerate(zone["free_blocks"]))
        assert zone["free_bytes"] == zone["free_pages"] * facts["page_size"]
        assert len(zone["fragmentation_index"]) == facts["orders"]
        top = zone["largest_free_order"]
        assert all(v == -1.0 for v in zone["fragmentation_index"][:top + 1])
    if os.geteuid() == 0:
        assert facts["sources"] == {"buddyinfo": "ok", "pagetypeinfo": "ok", "zoneinfo": "ok", "vmstat": "ok", "sys/vm": "ok"}
        assert "compact_stall" in facts["vmstat"]
        assert facts["tunables"]["min_free_kbytes"] > 0
        assert facts["kernel_release"] == os.uname().release
        assert all("watermark_ok" in z and "migrate_types" in z for z in facts["zones"])
        assert all("watermark_ok" in n for n in facts["nodes"])


def test_x86_fixture_tree(play, fixtures_dir):
    run = play({"proc_root": _tree(fixtures_dir, "buddyinfo-x86-3zone-el8")})
    assert run.rc == 0, run.stdout[-3000:]
    result, facts = _facts(run)
    assert not result.get("warnings")
    normal = facts["zones"][2]
    assert normal["free_pages"] == 134953
    assert normal["migrate_types_capped"] == {"Movable": [0]}
    assert normal["watermark_ok"] == [True] * 10 + [False]
    assert facts["zones"][0]["watermark_ok"] == [False] * 11
    assert facts["vmstat"]["compact_stall"] == 21
    assert facts["tunables"]["extfrag_threshold"] == 500


def test_arm64_fixture_tree(play, fixtures_dir):
    run = play({"proc_root": _tree(fixtures_dir, "buddyinfo-arm64-64k-14orders")})
    assert run.rc == 0
    result, facts = _facts(run)
    assert facts["orders"] == 14
    assert facts["page_size"] == 65536
    assert facts["zones"][1]["largest_free_block_bytes"] == 512 * 1024 * 1024
    assert len(result["warnings"]) == 3
    assert any("pagetypeinfo: does not exist" in w for w in result["warnings"])


def test_missing_optional_files_warn(play, fixtures_dir):
    run = play({"proc_root": _tree(fixtures_dir, "buddyinfo-only")})
    assert run.rc == 0
    result, facts = _facts(run)
    assert facts["sources"]["zoneinfo"] == "missing"
    assert sorted(w.split(":")[0].rsplit("/", 1)[-1] for w in result["warnings"]) == \
        ["pagetypeinfo", "vm", "vmstat", "zoneinfo"]
    assert "watermark_ok" not in facts["zones"][0]
    assert "[WARNING]" in run.stderr or result["warnings"]


def test_truncated_buddyinfo_fails_with_file_and_line(play, fixtures_dir):
    root = _tree(fixtures_dir, "buddyinfo-truncated")
    run = play({"proc_root": root})
    result = run.result
    assert result["failed"] is True
    assert run.fact is None
    assert result["msg"].startswith(os.path.join(root, "buddyinfo") + " line 3: ")
    assert "truncated" in result["msg"]
    assert "Traceback" not in str(result)


def test_unreadable_pagetypeinfo_without_dac_override(play, fixtures_dir, tmp_path):
    """A host where pagetypeinfo is not readable (root-only file, reader without the right): warning, rest of facts."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop CAP_DAC_OVERRIDE for the run")
    root = str(tmp_path / "proc")
    shutil.copytree(_tree(fixtures_dir, "buddyinfo-x86-3zone-el8"), root)
    os.chmod(os.path.join(root, "pagetypeinfo"), 0)
    # As plain root the mode-000 file is still readable: the difference below is the capability alone.
    assert _facts(play({"proc_root": root}))[1]["sources"]["pagetypeinfo"] == "ok"

    run = play({"proc_root": root}, wrapper=("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps=-all"))
    result = run.result
    facts = result["ansible_facts"]["memfrag_buddyinfo"]
    assert facts["sources"]["pagetypeinfo"].startswith("unreadable: permission denied")
    assert any("pagetypeinfo" in w and "permission denied" in w for w in result["warnings"])
    assert "migrate_types" not in facts["zones"][2]
    assert facts["sources"]["zoneinfo"] == "ok"
    assert facts["zones"][2]["watermark_ok"] == [True] * 10 + [False]


def test_indexes_match_the_kernels_debugfs(play):
    """Our unusable/fragmentation indexes equal the kernel's own, for zones whose counts did not move."""
    base = "/sys/kernel/debug/extfrag"
    mounted_here = False
    if not os.path.isdir(base):
        if os.geteuid() != 0 or not os.path.isdir("/sys/kernel/debug"):
            pytest.skip("debugfs extfrag files are not available")
        if subprocess.run(["mount", "-t", "debugfs", "debugfs", "/sys/kernel/debug"], capture_output=True, check=False).returncode:
            pytest.skip("debugfs cannot be mounted here")
        mounted_here = True
    try:
        if not os.path.isdir(base):
            pytest.skip("kernel without CONFIG_COMPACTION debugfs extfrag files")
        compared = 0
        for _attempt in range(5):
            run = play({"gather_subset": ["buddyinfo"]})
            _result, facts = _facts(run)
            with open(os.path.join(base, "unusable_index")) as handle:
                unusable = handle.read().splitlines()
            with open(os.path.join(base, "extfrag_index")) as handle:
                extfrag = handle.read().splitlines()
            with open("/proc/buddyinfo") as handle:
                now = [[int(v) for v in line.split()[4:]] for line in handle if line.startswith("Node")]
            for index, zone in enumerate(facts["zones"]):
                if index >= len(now) or now[index] != zone["free_blocks"]:
                    continue  # counts moved between the reads; nothing to compare for this zone
                kernel_unusable = [float(v) for v in unusable[index].split()[4:]]
                kernel_extfrag = [float(v) for v in extfrag[index].split()[4:]]
                assert zone["unusable_index"] == kernel_unusable, zone["zone"]
                assert zone["fragmentation_index"] == kernel_extfrag, zone["zone"]
                compared += 1
            if compared:
                break
        assert compared, "every zone changed between reads in 5 attempts"
    finally:
        if mounted_here:
            subprocess.run(["umount", "/sys/kernel/debug"], capture_output=True, check=False)
