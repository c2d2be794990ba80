# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_sysctl/apply.py: write, read back, roll back and persist (cases/sysctl_apply.yml over a fake
kernel), and whole vm_sysctl runs on proc and config trees."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl import apply as apply_mod
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.apply import (
    SysctlFailure, apply_settings, diffs, run)

CASES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases", "sysctl_apply.yml")
with open(CASES_FILE) as _handle:
    CASES = yaml.safe_load(_handle)


class FakeKernel(object):
    """Running values with the kernel's ways of saying no: EINVAL, a changed value, an unreadable file."""

    def __init__(self, values, rejects=None, keeps=None, unreadable=()):
        self.values = dict(values)
        self.rejects = rejects or {}
        self.keeps = keeps or {}
        self.unreadable = set(unreadable)
        self.writes = []

    def write(self, key, value):
        self.writes.append([key, value])
        if value in self.rejects.get(key, ()):
            return "/proc/sys/%s: the kernel rejected the value (EINVAL)" % key.replace(".", "/")
        self.values[key] = self.keeps.get(key, {}).get(value, value)
        return None

    def read(self, key):
        if key in self.unreadable:
            raise ProcFileError("/proc/sys/" + key.replace(".", "/"), "Input/output error")
        return self.values[key]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_apply_case(case):
    kernel = FakeKernel(case["kernel"], case.get("rejects"), case.get("keeps"), case.get("unreadable", ()))
    persisted = []

    def persist():
        if case.get("persist") == "error":
            raise OSError(30, "Read-only file system", "/etc/sysctl.d/.memfrag-x.tmp")
        persisted.append(True)

    after, failure = apply_settings(case["write"], dict(case["kernel"]), kernel.write, kernel.read, persist)
    expect = case["expect"]
    assert kernel.values == expect["kernel"]
    assert bool(persisted) == expect["persisted"]
    if "writes" in expect:
        assert kernel.writes == expect["writes"]
    if expect.get("failure"):
        assert failure is not None
        for fragment in expect["failure"]:
            assert fragment in failure, (fragment, failure)
        for fragment in expect.get("not_in_failure", ()):
            assert fragment not in failure, (fragment, failure)
    else:
        assert failure is None, failure
        for key in case["write"]:
            assert after[key] == kernel.values[key]


def test_exit_inside_persist_still_restores_then_propagates():
    """AnsibleModule.atomic_move calls fail_json (SystemExit) on a failed rename: the kernel is put back first."""
    kernel = FakeKernel({"vm.min_free_kbytes": "67584"})

    def persist():
        raise SystemExit(1)

    with pytest.raises(SystemExit):
        apply_settings({"vm.min_free_kbytes": "90112"}, {"vm.min_free_kbytes": "67584"}, kernel.write, kernel.read,
                       persist)
    assert kernel.values == {"vm.min_free_kbytes": "67584"}
    assert kernel.writes == [["vm.min_free_kbytes", "90112"], ["vm.min_free_kbytes", "67584"]]


# ---- whole runs on trees ------------------------------------------------------------------------

VM = {"min_free_kbytes": "67584", "vfs_cache_pressure": "100", "watermark_scale_factor": "10",
      "lowmem_reserve_ratio": "256\t256\t32\t0\t0", "swappiness": "60"}


@pytest.fixture
def roots(tmp_path):
    proc = tmp_path / "proc"
    (proc / "sys" / "vm").mkdir(parents=True)
    (proc / "sys" / "kernel").mkdir()
    (proc / "sys" / "kernel" / "osrelease").write_text("6.1.0-18-amd64\n")
    (proc / "meminfo").write_text("MemTotal:        8000000 kB\nMemFree:         4000000 kB\n")
    for name, value in VM.items():
        (proc / "sys" / "vm" / name).write_text(value + "\n")
    config = tmp_path / "config"
    for directory in ("etc/sysctl.d", "usr/lib/sysctl.d"):
        (config / directory).mkdir(parents=True)
    return str(proc), str(config)


def _params(roots, settings, **extra):
    params = dict(settings=settings, state="present", file="/etc/sysctl.d/60-memfrag.conf", apply=True,
                  config_root=roots[1], proc_root=roots[0], force=False, skip_missing=False, on_override="fail")
    params.update(extra)
    return params


def _vm(roots, name):
    with open(os.path.join(roots[0], "sys", "vm", name)) as handle:
        return handle.read().strip()


def _dropin(roots):
    path = os.path.join(roots[1], "etc", "sysctl.d", "60-memfrag.conf")
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return handle.read()


def test_run_check_then_apply_then_idempotent(roots):
    settings = {"vm.min_free_kbytes": 90112, "vm.vfs_cache_pressure": "200"}
    checked = run(_params(roots, settings), True, True, os.replace)
    assert checked.result["changed"] and checked.result["runtime_changed"] and checked.result["file_changed"]
    assert _vm(roots, "min_free_kbytes") == "67584" and _dropin(roots) is None
    assert checked.result["runtime"]["vm.min_free_kbytes"] == {"before": "67584", "after": "90112"}
    assert [d["before_header"] for d in checked.result["diff"]][-1].startswith("running kernel (")

    done = run(_params(roots, settings), False, False, os.replace)
    assert done.result["changed"] and "diff" not in done.result
    assert _vm(roots, "min_free_kbytes") == "90112" and _vm(roots, "vfs_cache_pressure") == "200"
    text = _dropin(roots)
    assert "\nvm.min_free_kbytes = 90112\n" in text and "\nvm.vfs_cache_pressure = 200\n" in text
    assert done.result["kernel"] == "6.1.0-18-amd64"
    assert done.result["precedence"]["vm.min_free_kbytes"]["file"] == "/etc/sysctl.d/60-memfrag.conf"

    again = run(_params(roots, settings), False, True, os.replace)
    assert again.result["changed"] is False and again.result["diff"] == []


def test_run_read_only_kernel_fails_before_anything_is_written(roots, monkeypatch):
    """A read-only /proc/sys (the fleet's read-only hosts, a container) is refused up front."""
    monkeypatch.setattr(apply_mod, "write_problem",
                        lambda proc_root, name: "%s/sys/%s is on a read-only file system" % (proc_root, name))
    with pytest.raises(SysctlFailure) as failure:
        run(_params(roots, {"vm.min_free_kbytes": 90112, "vm.swappiness": 10}), False, False, os.replace)
    assert failure.value.msg.startswith("nothing was changed: ") and "read-only" in failure.value.msg
    assert failure.value.result["runtime"]["vm.swappiness"] == {"before": "60", "after": "60"}
    assert _vm(roots, "min_free_kbytes") == "67584" and _vm(roots, "swappiness") == "60"
    assert _dropin(roots) is None


def test_run_unwritable_dropin_directory_fails_before_the_kernel_is_touched(roots, monkeypatch):
    monkeypatch.setattr(apply_mod, "directory_problem", lambda directory: "%s is on a read-only file system" % directory)
    with pytest.raises(SysctlFailure) as failure:
        run(_params(roots, {"vm.min_free_kbytes": 90112}), False, False, os.replace)
    assert "cannot write" in failure.value.msg and "read-only" in failure.value.msg
    assert _vm(roots, "min_free_kbytes") == "67584"


def test_run_rename_failure_restores_the_kernel(roots):
    def replace(src, dest):
        raise OSError(18, "Invalid cross-device link", dest)

    with pytest.raises(SysctlFailure) as failure:
        run(_params(roots, {"vm.min_free_kbytes": 90112, "vm.swappiness": 10}), False, False, replace)
    assert "writing the drop-in failed" in failure.value.msg
    assert "running values restored (vm.min_free_kbytes, vm.swappiness)" in failure.value.msg
    assert _vm(roots, "min_free_kbytes") == "67584" and _vm(roots, "swappiness") == "60"
    assert _dropin(roots) is None
    assert not [n for n in os.listdir(os.path.join(roots[1], "etc", "sysctl.d")) if n.startswith(".memfrag-")]


def test_run_refusals_and_warnings(roots):
    with pytest.raises(SysctlFailure) as failure:
        run(_params(roots, {"vm.vfs_cache_pressure": 0, "vm.no_such_knob": 1}), False, False, os.replace)
    assert failure.value.msg.startswith("refused, nothing was changed: ")
    assert len(failure.value.result["refused"]) == 2
    done = run(_params(roots, {"vm.vfs_cache_pressure": 0, "vm.no_such_knob": 1}, force=True, skip_missing=True),
               False, False, os.replace)
    assert done.result["skipped_keys"] == ["vm.no_such_knob"] and _vm(roots, "vfs_cache_pressure") == "0"
    assert any(w.startswith("forced: ") for w in done.warnings)
    assert any(w.startswith("skipped: vm.no_such_knob") for w in done.warnings)


def test_run_later_file_wins_fails_or_warns(roots):
    late = os.path.join(roots[1], "etc", "sysctl.d", "90-late.conf")
    with open(late, "w") as handle:
        handle.write("vm.swappiness = 30\n")
    with pytest.raises(SysctlFailure) as failure:
        run(_params(roots, {"vm.swappiness": 10}), False, False, os.replace)
    assert "/etc/sysctl.d/90-late.conf line 1" in failure.value.msg and _vm(roots, "swappiness") == "60"
    done = run(_params(roots, {"vm.swappiness": 10}, on_override="warn"), False, False, os.replace)
    assert done.result["overrides"] and any("90-late.conf" in w for w in done.warnings)
    assert _vm(roots, "swappiness") == "10"


def test_run_absent_removes_and_reports_boot(roots):
    run(_params(roots, {"vm.swappiness": 10, "vm.min_free_kbytes": 90112}), False, False, os.replace)
    done = run(_params(roots, {"vm.swappiness": None}, state="absent"), False, True, os.replace)
    assert done.result["changed"] and not done.result["runtime_changed"]
    assert "swappiness" not in _dropin(roots) and _vm(roots, "swappiness") == "10"
    assert done.result["boot"]["vm.swappiness"]["file"] is None and done.result["precedence"] == {}
    done = run(_params(roots, {"vm.min_free_kbytes": None}, state="absent"), False, False, os.replace)
    assert _dropin(roots) is None and done.result["persisted"] == {}


def test_run_unknown_kernel_warns_and_uses_current_ranges(roots):
    os.unlink(os.path.join(roots[0], "sys", "kernel", "osrelease"))
    done = run(_params(roots, {"vm.watermark_scale_factor": 2000}), True, False, os.replace)
    assert done.result["kernel"] is None and any("kernel version unknown" in w for w in done.warnings)


def test_diffs_show_mode_and_removal():
    entries = diffs("/etc/sysctl.d/60-memfrag.conf", "a = 1\n", "a = 1\n", 0o600, {}, {}, "/proc")
    assert [e["before"] for e in entries] == ["a = 1\n", "0600\n"]
    entries = diffs("/x.conf", "a = 1\n", None, 0o644, {"vm.a": "1"}, {"vm.a": "2"}, "/proc/")
    assert entries[0]["after_header"] == "/x.conf (removed)"
    assert entries[1]["before"] == "vm.a = 1\n" and entries[1]["after_header"] == "running kernel (/proc/sys/vm)"


@pytest.mark.parametrize("path, accepted", [
    ("/etc/sysctl.d/60-memfrag.conf", True),
    ("/usr/lib/sysctl.d/99-x.conf", True),
    ("/etc/sysctl.d/60-mem\nfrag.conf", False),  # a control character
    ("/etc/sysctl.d/60-mem\x1b[31mfrag.conf", False),
    ("/etc/sysctl.conf", False),  # read by procps only
    ("/etc/sysctl.d/sub/60-memfrag.conf", False),  # not directly in the directory
    ("/etc/sysctl.d/../sysctl.d/60-memfrag.conf", False),  # not normalized
    ("etc/sysctl.d/60-memfrag.conf", False),  # relative
    ("/etc/sysctl.d/.60-memfrag.conf", False),  # hidden
    ("/etc/sysctl.d/60-memfrag.cnf", False),  # not *.conf: never read
    ("/etc/sysctl.d/.conf", False),
])
def test_file_option(path, accepted):
    if accepted:
        assert apply_mod.check_file_option(path) == path
    else:
        with pytest.raises(SysctlFailure):
            apply_mod.check_file_option(path)
