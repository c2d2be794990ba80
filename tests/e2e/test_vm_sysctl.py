# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vm_sysctl and the sysctl_tuning role on the live kernel, through ansible-playbook.

The drop-in always goes into a config_root tree under tmp_path; the real /etc/sysctl.d is never
touched. Boot-time application is proven by running the real ``sysctl --system`` and
``systemd-sysctl`` in a private mount namespace where the sysctl directories are the tree's; the
precedence model itself is proven tree by tree in test_sysctl_oracle.py (chroot, fake /proc).
Every tunable a test may change is restored in the fixture teardown, even when the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

VM = "/proc/sys/vm"
TOUCHED = ("min_free_kbytes", "vfs_cache_pressure", "watermark_scale_factor", "page-cluster", "swappiness",
           "dirty_ratio", "dirty_background_ratio", "lowmem_reserve_ratio")
DROPIN = "etc/sysctl.d/60-memfrag.conf"
SYSCTL_DIRS = ("etc/sysctl.d", "run/sysctl.d", "usr/local/lib/sysctl.d", "usr/lib/sysctl.d")

# Bind the tree's sysctl directories over the real ones inside a private mount namespace; /run and
# /usr/local/lib get a tmpfs first because their sysctl.d may not exist on the host.
NAMESPACE_SCRIPT = r"""
set -e
T=$1; shift
mkdir -p "$T/run/sysctl.d" "$T/usr/local/lib/sysctl.d" "$T/etc/sysctl.d" "$T/usr/lib/sysctl.d"
mount -t tmpfs memfrag-run /run
mkdir -p /run/sysctl.d
mount --bind "$T/run/sysctl.d" /run/sysctl.d
mount -t tmpfs memfrag-usrlocallib /usr/local/lib
mkdir -p /usr/local/lib/sysctl.d
mount --bind "$T/usr/local/lib/sysctl.d" /usr/local/lib/sysctl.d
mount --bind "$T/etc/sysctl.d" /etc/sysctl.d
mount --bind "$T/usr/lib/sysctl.d" /usr/lib/sysctl.d
if [ -d /lib/sysctl.d ] && [ ! /lib/sysctl.d -ef /usr/lib/sysctl.d ]; then
  mkdir -p "$T/lib/sysctl.d"; mount --bind "$T/lib/sysctl.d" /lib/sysctl.d
fi
if [ -f "$T/etc/sysctl.conf" ]; then mount --bind "$T/etc/sysctl.conf" /etc/sysctl.conf
elif [ -e /etc/sysctl.conf ]; then mount --bind /dev/null /etc/sysctl.conf; fi
exec "$@"
"""


def _read(name):
    with open(os.path.join(VM, name)) as handle:
        return " ".join(handle.read().split())


def _write(name, value):
    with open(os.path.join(VM, name), "w") as handle:
        handle.write(str(value) + "\n")


def _systemd_sysctl():
    for path in ("/usr/lib/systemd/systemd-sysctl", "/lib/systemd/systemd-sysctl"):
        if os.access(path, os.X_OK):
            return path
    return None


def _in_namespace(tree, argv):
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", NAMESPACE_SCRIPT,
                           "memfrag-ns", str(tree)] + list(argv), capture_output=True, text=True, timeout=120, check=False)


needs_live = pytest.mark.skipif(os.geteuid() != 0 or not os.access(os.path.join(VM, "min_free_kbytes"), os.W_OK),
                                reason="needs root and a writable /proc/sys/vm")
needs_namespace = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None
                                     or shutil.which("sysctl") is None,
                                     reason="needs root, unshare(1) and procps sysctl(8)")


@pytest.fixture
def live_vm():
    """The original running values of every tunable these tests may touch, restored afterwards."""
    saved = {}
    for name in TOUCHED:
        if os.path.exists(os.path.join(VM, name)):
            saved[name] = _read(name)
    yield dict(saved)
    problems = []
    for name, value in saved.items():
        try:
            if _read(name) != value:
                _write(name, value)
        except OSError as exc:  # pragma: no cover - reported, the other values are still restored
            problems.append("%s: %s" % (name, exc))
    assert not problems, "could not restore: %s" % problems


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    for directory in SYSCTL_DIRS:
        (root / directory).mkdir(parents=True)
    return root


def _play(args, name="vm_sysctl", check_mode=None):
    task = {"name": name, "memfrag.linux.vm_sysctl": args}
    if check_mode is not None:
        task["check_mode"] = check_mode
    return yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}], sort_keys=False)


def _sysctl(run_playbook, tree, settings, check=False, diff=False, **options):
    args = {"settings": settings, "config_root": str(tree)}
    args.update(options)
    run = run_playbook(_play(args), check=check, diff=diff)
    return run, run.task_result("vm_sysctl")


def _file_state(path):
    if not os.path.exists(path):
        return None
    st = os.stat(path)
    with open(path) as handle:
        return handle.read(), st.st_mtime_ns, st.st_ino


@needs_live
def test_set_check_then_apply_then_idempotent(run_playbook, tree, live_vm):
    min_free = int(live_vm["min_free_kbytes"]) + 1024
    pressure = int(live_vm["vfs_cache_pressure"]) + 50
    settings = {"vm.min_free_kbytes": min_free, "vm.vfs_cache_pressure": pressure}
    dropin = os.path.join(str(tree), DROPIN)

    _run, res = _sysctl(run_playbook, tree, settings, check=True, diff=True)
    assert res["changed"] and res["file_changed"] and res["runtime_changed"], res
    assert not os.path.exists(dropin), "check mode wrote the drop-in"
    assert _read("min_free_kbytes") == live_vm["min_free_kbytes"], "check mode wrote the kernel"
    diffs = res["diff"] if isinstance(res["diff"], list) else [res["diff"]]
    assert "vm.min_free_kbytes = %d" % min_free in diffs[0]["after"]
    assert "vm.min_free_kbytes = %s" % live_vm["min_free_kbytes"] in diffs[-1]["before"]
    assert "vm.vfs_cache_pressure = %d" % pressure in diffs[-1]["after"]

    run, res = _sysctl(run_playbook, tree, settings, diff=True)
    assert run.rc == 0 and res["changed"], res
    assert _read("min_free_kbytes") == str(min_free)
    assert _read("vfs_cache_pressure") == str(pressure)
    with open(dropin) as handle:
        text = handle.read()
    assert text.startswith("# Managed by memfrag.linux.vm_sysctl")
    assert "\nvm.min_free_kbytes = %d\n" % min_free in text and "\nvm.vfs_cache_pressure = %d\n" % pressure in text
    assert oct(os.stat(dropin).st_mode & 0o777) == oct(0o644)
    assert res["runtime"]["vm.min_free_kbytes"] == {"before": live_vm["min_free_kbytes"], "after": str(min_free)}
    assert res["precedence"]["vm.min_free_kbytes"]["file"] == "/" + DROPIN
    assert res["precedence"]["vm.min_free_kbytes"]["procps"]["file"] == "/" + DROPIN

    before = _file_state(dropin)
    run, res = _sysctl(run_playbook, tree, settings)
    assert run.rc == 0 and res["changed"] is False, res
    assert _file_state(dropin) == before

    # A wrong mode alone is a change, and is put right.
    os.chmod(dropin, 0o600)
    run, res = _sysctl(run_playbook, tree, settings)
    assert res["changed"] and res["file_changed"] and not res["runtime_changed"]
    assert os.stat(dropin).st_mode & 0o777 == 0o644


@needs_live
def test_later_sorting_file_override_fails_and_warn_mode_proceeds(run_playbook, tree, live_vm):
    base = int(live_vm["min_free_kbytes"])
    _sysctl(run_playbook, tree, {"vm.min_free_kbytes": base + 1024})
    dropin = os.path.join(str(tree), DROPIN)
    before = _file_state(dropin)
    late = tree / "etc" / "sysctl.d" / "90-late.conf"
    late.write_text("# someone's tuning\nvm.min_free_kbytes = %d\n" % (base + 2048))

    run, res = _sysctl(run_playbook, tree, {"vm.min_free_kbytes": base + 1536})
    assert res.get("failed"), res
    assert "/etc/sysctl.d/90-late.conf line 2" in res["msg"] and str(base + 2048) in res["msg"]
    assert "nothing was changed" in res["msg"]
    assert _file_state(dropin) == before
    assert _read("min_free_kbytes") == str(base + 1024)

    run, res = _sysctl(run_playbook, tree, {"vm.min_free_kbytes": base + 1536}, on_override="warn")
    assert run.rc == 0 and res["changed"], res
    assert any("90-late.conf" in w for w in res.get("warnings", [])), res.get("warnings")
    assert res["precedence"]["vm.min_free_kbytes"]["file"] == "/etc/sysctl.d/90-late.conf"
    assert _read("min_free_kbytes") == str(base + 1536)


@needs_live
def test_rejections_leave_file_and_kernel_untouched(run_playbook, tree, live_vm):
    base = int(live_vm["min_free_kbytes"])
    _sysctl(run_playbook, tree, {"vm.min_free_kbytes": base + 1024})
    dropin = os.path.join(str(tree), DROPIN)
    before = _file_state(dropin)

    _run, res = _sysctl(run_playbook, tree, {"vm.drop_caches": 3})
    assert res.get("failed") and "memfrag.linux.drop_caches" in res["msg"], res

    _run, res = _sysctl(run_playbook, tree, {"vm.watermark_scale_factor": 5000, "vm.min_free_kbytes": base + 2048})
    assert res.get("failed") and "outside [1, 3000]" in res["msg"], res

    # force never lifts a trigger refusal.
    _run, res = _sysctl(run_playbook, tree, {"vm.compact_memory": 1}, force=True)
    assert res.get("failed") and "memfrag.linux.compact_memory" in res["msg"], res

    # Not in our range table, so the kernel itself rejects it: the earlier write is rolled back.
    _run, res = _sysctl(run_playbook, tree, {"vm.min_free_kbytes": base + 4096, "vm.page-cluster": -1})
    assert res.get("failed") and "EINVAL" in res["msg"] and "nothing was persisted" in res["msg"], res
    assert "running values restored (vm.min_free_kbytes)" in res["msg"]

    assert _file_state(dropin) == before
    assert _read("min_free_kbytes") == str(base + 1024)
    assert _read("watermark_scale_factor") == live_vm["watermark_scale_factor"]
    assert _read("page-cluster") == live_vm["page-cluster"]


@needs_live
def test_value_the_kernel_changes_is_a_failure_and_rolled_back(run_playbook, tree, live_vm):
    """lowmem_reserve_ratio stores entries below 1 as 0 (mm/page_alloc.c): a real kernel-side clamp."""
    ratios = live_vm["lowmem_reserve_ratio"].split()
    if len(ratios) < 2 or ratios[0] == "0":
        pytest.skip("lowmem_reserve_ratio has no non-zero first entry here: %s" % live_vm["lowmem_reserve_ratio"])
    clamped = ["-5"] + ratios[1:]
    base = int(live_vm["min_free_kbytes"])
    _run, res = _sysctl(run_playbook, tree, {"vm.lowmem_reserve_ratio": " ".join(clamped),
                                             "vm.min_free_kbytes": base + 1024})
    assert res.get("failed"), res
    assert "the kernel kept 0 %s (clamped or ignored)" % " ".join(ratios[1:]) in res["msg"], res["msg"]
    assert "running values restored" in res["msg"]
    assert _read("lowmem_reserve_ratio") == live_vm["lowmem_reserve_ratio"]
    assert _read("min_free_kbytes") == live_vm["min_free_kbytes"]
    assert not os.path.exists(os.path.join(str(tree), DROPIN))


@needs_live
def test_policy_limits_need_force_and_missing_keys(run_playbook, tree, live_vm):
    with open("/proc/meminfo") as handle:
        mem_total = int(handle.readline().split()[1])
    _run, res = _sysctl(run_playbook, tree, {"vm.min_free_kbytes": mem_total // 10}, check=True)
    assert res.get("failed") and "of MemTotal" in res["msg"] and "force: true" in res["msg"], res
    _run, res = _sysctl(run_playbook, tree, {"vm.vfs_cache_pressure": 0}, check=True)
    assert res.get("failed") and "never reclaimed" in res["msg"], res
    _run, res = _sysctl(run_playbook, tree, {"vm.vfs_cache_pressure": 0}, check=True, force=True)
    assert not res.get("failed") and any("forced" in w for w in res["warnings"]), res

    _run, res = _sysctl(run_playbook, tree, {"vm.no_such_knob": 1, "vm.min_free_kbytes": int(live_vm["min_free_kbytes"])})
    assert res.get("failed") and "vm.no_such_knob does not exist" in res["msg"], res
    run, res = _sysctl(run_playbook, tree, {"vm.no_such_knob": 1, "vm.min_free_kbytes": int(live_vm["min_free_kbytes"])},
                       skip_missing=True)
    assert run.rc == 0 and res["skipped_keys"] == ["vm.no_such_knob"], res
    assert "no_such_knob" not in open(os.path.join(str(tree), DROPIN)).read()


# /proc/sys read-only for the playbook only, as in a container: a private mount namespace.
READ_ONLY_PROC_SYS = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                      'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"', "ro-sys"]


@needs_live
@needs_namespace
def test_read_only_proc_sys_fails_before_anything_changes(run_playbook, tree, live_vm):
    """The module and the role fail naming the read-only /proc/sys; no running value and no file change."""
    base = int(live_vm["min_free_kbytes"])
    run = run_playbook(_play({"settings": {"vm.min_free_kbytes": base + 1024, "vm.swappiness": 10},
                              "config_root": str(tree)}), prefix=READ_ONLY_PROC_SYS)
    res = run.task_result("vm_sysctl")
    assert res.get("failed") and res["msg"].startswith("nothing was changed: "), res
    assert "read-only file system" in res["msg"] and "/proc/sys/vm/min_free_kbytes" in res["msg"], res["msg"]
    assert res["runtime"]["vm.min_free_kbytes"] == {"before": str(base), "after": str(base)}
    assert _read("min_free_kbytes") == str(base) and _read("swappiness") == live_vm["swappiness"]
    assert not os.path.exists(os.path.join(str(tree), DROPIN))

    run = run_playbook(ROLE_PLAY, extra_vars=_role_vars(tree, sysctl_tuning_min_free_kbytes=base + 1024),
                       prefix=READ_ONLY_PROC_SYS)
    assert run.rc != 0
    applied = run.task_result(ROLE + "Apply the baseline through vm_sysctl")
    assert applied.get("failed") and "read-only" in applied["msg"], applied
    assert _read("min_free_kbytes") == str(base)
    assert not os.path.exists(os.path.join(str(tree), DROPIN))


@needs_live
def test_symlinked_dropin_is_refused(run_playbook, tree, live_vm):
    link = tree / "etc" / "sysctl.d" / "60-memfrag.conf"
    os.symlink("/dev/null", str(link))
    _run, res = _sysctl(run_playbook, tree, {"vm.min_free_kbytes": int(live_vm["min_free_kbytes"]) + 1024})
    assert res.get("failed") and "masked" in res["msg"], res
    assert os.readlink(str(link)) == "/dev/null"
    os.unlink(str(link))
    os.symlink("../../elsewhere.conf", str(link))
    _run, res = _sysctl(run_playbook, tree, {"vm.min_free_kbytes": int(live_vm["min_free_kbytes"]) + 1024})
    assert res.get("failed") and "is a symlink" in res["msg"], res
    assert _read("min_free_kbytes") == live_vm["min_free_kbytes"]


@needs_live
def test_state_absent_removes_keys_and_reports_boot_value(run_playbook, tree, live_vm):
    base = int(live_vm["min_free_kbytes"])
    pressure = int(live_vm["vfs_cache_pressure"]) + 50
    _sysctl(run_playbook, tree, {"vm.min_free_kbytes": base + 1024, "vm.vfs_cache_pressure": pressure})
    (tree / "usr" / "lib" / "sysctl.d" / "50-vendor.conf").write_text("vm.vfs_cache_pressure = 120\n")
    dropin = os.path.join(str(tree), DROPIN)

    run, res = _sysctl(run_playbook, tree, {"vm.vfs_cache_pressure": None}, state="absent", diff=True)
    assert run.rc == 0 and res["changed"] and not res["runtime_changed"], res
    assert "vfs_cache_pressure" not in open(dropin).read()
    assert res["boot"]["vm.vfs_cache_pressure"]["file"] == "/usr/lib/sysctl.d/50-vendor.conf"
    assert _read("vfs_cache_pressure") == str(pressure), "absent must not touch the running value"

    run, res = _sysctl(run_playbook, tree, {"vm.min_free_kbytes": None}, state="absent")
    assert res["changed"] and not os.path.exists(dropin)
    run, res = _sysctl(run_playbook, tree, {"vm.min_free_kbytes": None}, state="absent")
    assert res["changed"] is False


@needs_live
@needs_namespace
def test_persistence_through_sysctl_system_and_systemd_sysctl(run_playbook, tree, live_vm):
    base = int(live_vm["min_free_kbytes"])
    pressure = int(live_vm["vfs_cache_pressure"]) + 50
    # A vendor file sorting earlier sets both keys; the baseline must still win at "boot".
    (tree / "usr" / "lib" / "sysctl.d" / "50-vendor.conf").write_text(
        "vm.min_free_kbytes = %d\nvm.vfs_cache_pressure = 100\n" % (base + 512))
    run, res = _sysctl(run_playbook, tree, {"vm.min_free_kbytes": base + 1024, "vm.vfs_cache_pressure": pressure})
    assert run.rc == 0, res

    appliers = [["sysctl", "--system"]]
    if _systemd_sysctl():
        appliers.append([_systemd_sysctl()])
    for argv in appliers:
        # "Reboot": the running values go back to what they were, then the applier runs on the tree.
        _write("min_free_kbytes", live_vm["min_free_kbytes"])
        _write("vfs_cache_pressure", live_vm["vfs_cache_pressure"])
        proc = _in_namespace(tree, argv)
        assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)
        assert _read("min_free_kbytes") == str(base + 1024), (argv, proc.stdout)
        assert _read("vfs_cache_pressure") == str(pressure), (argv, proc.stdout)


# ---- the sysctl_tuning role and tune.yml ------------------------------------------------------

ROLE_PLAY = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: memfrag.linux.sysctl_tuning
"""


ROLE = "memfrag.linux.sysctl_tuning : "


def _role_vars(tree, **extra):
    values = {"sysctl_tuning_config_root": str(tree)}
    values.update(extra)
    return values


@needs_live
def test_role_check_mode_recommends_and_changes_nothing(run_playbook, tree, live_vm):
    run = run_playbook(ROLE_PLAY, extra_vars=_role_vars(tree), check=True, diff=True)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # One facts module run feeds the baseline (was buddyinfo_facts + meminfo_facts).
    gathered = run.task_result(ROLE + "Gather memory facts (zones, NUMA nodes, pageblock size, vm tunables, MemTotal, "
                                      "reclaimable slab)")["ansible_facts"]
    assert set(gathered) == {"memfrag_buddyinfo", "memfrag_meminfo"}
    role_tasks = [t["task"]["name"] for p in run.data["plays"] for t in p["tasks"] if t["task"]["name"].startswith(ROLE)]
    assert len(role_tasks) == 6, role_tasks  # argument check, gather, compute, apply, record, report
    facts = run.task_result(ROLE + "Compute the recommended baseline")["ansible_facts"]
    baseline, inputs = facts["sysctl_tuning_baseline"], facts["sysctl_tuning_inputs"]
    assert facts["__sysctl_tuning_reasons"]["vm.min_free_kbytes"].startswith("%d: " % baseline["vm.min_free_kbytes"])
    with open("/proc/meminfo") as handle:
        ram_kb = int(handle.readline().split()[1])
    nodes = len([n for n in os.listdir("/sys/devices/system/node") if n.startswith("node")]) or 1
    assert inputs["ram_kb"] == ram_kb and inputs["numa_nodes"] == nodes
    # The role's documented rule, recomputed from the host independently of the role's Jinja.
    upper = min(ram_kb * 3 // 100, 2097152)
    current = int(live_vm["min_free_kbytes"])
    wanted = max(ram_kb // 100, nodes * 65536, inputs["kernel_default_min_free_kbytes"], inputs["thp_reserve_kbytes"],
                 current if current <= upper else 0)
    assert abs(baseline["vm.min_free_kbytes"] - min(wanted, upper)) <= 1, (baseline, inputs)
    assert baseline["vm.min_free_kbytes"] * 100 <= ram_kb * 5
    assert baseline["vm.watermark_scale_factor"] == max(100, int(live_vm["watermark_scale_factor"]))
    assert ("vm.vfs_cache_pressure" in baseline) == inputs["raise_vfs_cache_pressure"]
    applied = run.task_result(ROLE + "Apply the baseline through vm_sysctl")
    assert applied["changed"] and applied["file_changed"], applied
    assert _read("min_free_kbytes") == live_vm["min_free_kbytes"]
    assert not os.path.exists(os.path.join(str(tree), DROPIN))
    report = run.task_result(ROLE + "Report before and after")
    assert "vm.min_free_kbytes" in json.dumps(report)


@needs_live
def test_role_real_mode_with_overrides_then_idempotent(run_playbook, tree, live_vm):
    base = int(live_vm["min_free_kbytes"])
    extra = _role_vars(tree, sysctl_tuning_min_free_kbytes=base + 1024,
                       sysctl_tuning_watermark_scale_factor=int(live_vm["watermark_scale_factor"]),
                       sysctl_tuning_settings={"vm.dirty_background_ratio": int(live_vm["dirty_background_ratio"])})
    run = run_playbook(ROLE_PLAY, extra_vars=extra)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert _read("min_free_kbytes") == str(base + 1024)
    text = open(os.path.join(str(tree), DROPIN)).read()
    assert "vm.min_free_kbytes = %d" % (base + 1024) in text and "vm.dirty_background_ratio" in text
    again = run_playbook(ROLE_PLAY, extra_vars=extra)
    assert again.task_result(ROLE + "Apply the baseline through vm_sysctl")["changed"] is False


@needs_live
def test_tune_playbook_check_and_real(run_playbook, tree, live_vm):
    playbook = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "playbooks", "tune.yml")
    base = int(live_vm["min_free_kbytes"])
    extra = _role_vars(tree, memfrag_hosts="localhost", memfrag_serial=1, memfrag_max_fail_percentage=0,
                       sysctl_tuning_min_free_kbytes=base + 1024)
    run = run_playbook(playbook, extra_vars=extra, check=True, diff=True)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert _read("min_free_kbytes") == live_vm["min_free_kbytes"]
    run = run_playbook(playbook, extra_vars=extra)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert _read("min_free_kbytes") == str(base + 1024)
