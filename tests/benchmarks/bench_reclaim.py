# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (not part of the test suite): the reclaim ladder against the blunt cure, on real fragmentation.

Runs on this host's kernel, and with ``--lab`` also inside the VM lab's 6.1 guest (tests/lab/lab.py, 512 MiB,
booted and stopped by the benchmark), where compaction is not cut short by large folios.

For each shape (anonymous pages with holes, page cache with holes) and each side, the same state is rebuilt
from scratch: sync and drop every cache, create and read a warm file twice (hot page cache, on the active
list: the cache worth keeping), then start tests/helpers/fragmenter.py (freed at the end of the side). Then:

- ladder: ansible-playbook playbooks/reclaim.yml, one memfrag.linux.reclaim_memory run per host (target: half
          the holes' size more free memory at order >= 4 in the judged zone than the fragmented state has;
          private lock/state/audit directories, cooldown 0);
- blunt:  sync; echo 3 > /proc/sys/vm/drop_caches; echo 1 > /proc/sys/vm/compact_memory;
- compact: echo 1 > /proc/sys/vm/compact_memory alone, run the blunt way (no Ansible): what one full compaction
          makes of the holes with every cache page kept, measured as the ceiling of a cache-keeping method (the
          blunt recovery also counts the cache it drops, which a method keeping 90% of that cache cannot free).

It prints, per side: free memory at order >= 4 and >= 9 gained (net of memory the kernel newly brought into
the zone by lazy deferred init), page cache (Cached) and reclaimable slab kept, time, and the ladder's steps;
then the ladder's recovery as a share of the blunt recovery and the share of the blunt method's cache loss the
ladder avoided, against the targets (>= 90% and >= 90%), and compaction alone as a share of the blunt recovery.
Proactive compaction is off while it runs, and every tunable it touches (compaction_proactiveness, and
nr_hugepages, which hugetlb_compact raises and gives back when asked for) is checked and restored. Run as root on an otherwise idle host:

    python tests/benchmarks/bench_reclaim.py [--shapes anon,pagecache] [--mib 2048] [--lab] [--lab-mib 160]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
# A script, not a test: it puts tests/ on the path as tests/pytest.ini does for the suites.
sys.path.insert(0, TESTS)
from collection_tree import CALLBACK_PLUGINS, collections_root, REPO_ROOT  # noqa: E402
from helpers import livemem  # noqa: E402
from helpers.fragmenter import Fragmenter  # noqa: E402
from lab import lab  # noqa: E402

MIB = livemem.MIB
PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "reclaim.yml")
LADDER_TASK = "Reclaim memory, least damage first"
TUNABLES = ("/proc/sys/vm/compaction_proactiveness", "/proc/sys/vm/nr_hugepages")


def ansible_env(extra=None):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_root(), ANSIBLE_STDOUT_CALLBACK="memfrag_test_json",
               ANSIBLE_CALLBACK_PLUGINS=CALLBACK_PLUGINS, ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_RETRY_FILES_ENABLED="false", ANSIBLE_NOCOLOR="1")
    env.update(extra or {})
    return env


def _playbook(inventory_args, extra, env_extra=None):
    env = ansible_env(env_extra)
    playbook_bin = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run([playbook_bin if os.path.exists(playbook_bin) else "ansible-playbook", PLAYBOOK]
                          + inventory_args + ["-e", json.dumps(extra)],
                          capture_output=True, text=True, env=env, timeout=1800, check=False)
    data = json.loads(proc.stdout[proc.stdout.index("{"):]) if "{" in proc.stdout else {"plays": []}
    for play in data["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].endswith(LADDER_TASK):
                result = list(task["hosts"].values())[0]
                if "ansible_facts" in result:
                    return result["ansible_facts"]["memfrag_reclaim"], result
    raise RuntimeError("the ladder did not run (rc %d): %s %s" % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))


def _ladder_vars(target_mb, zone, workdir):
    return {"reclaim_zones": [zone], "reclaim_target_free_mb": target_mb, "reclaim_cooldown": 0,
            "reclaim_lock_dir": workdir + "/run", "reclaim_state_dir": workdir + "/state",
            "reclaim_audit_log": workdir + "/log/reclaim.log", "reclaim_max_dirty_mb": 16384,
            "reclaim_sync_timeout": 300, "reclaim_use_kernel_log": False, "reclaim_report": False}


class LocalHost(object):
    """This machine."""

    zone = "Normal"

    def __init__(self, mib):
        self.mib = mib
        self.warm_mib = 1024
        self.label = "this host, kernel %s" % os.uname().release
        self.workdir = tempfile.mkdtemp(prefix="memfrag-bench-")
        self.warm_path = os.path.join("/var/tmp", "memfrag-bench-warm-%d" % os.getpid())

    def read(self, path):
        with open(path) as handle:
            return handle.read().strip()

    def write(self, path, value):
        with open(path, "w") as handle:
            handle.write(value)

    def make_warm(self):
        with open(self.warm_path, "wb") as handle:
            block = os.urandom(1 << 20)
            for dummy in range(self.warm_mib):
                handle.write(block)

    def clean_slate(self):
        os.sync()
        self.write("/proc/sys/vm/drop_caches", "3")
        for dummy in range(2):  # read twice: hot cache, on the active list
            with open(self.warm_path, "rb") as handle:
                while handle.read(1 << 20):
                    pass

    def snapshot(self):
        return livemem.snapshot()

    @contextlib.contextmanager
    def fragmented(self, shape):
        with Fragmenter(shape, self.mib) as frag:
            yield frag.info

    def blunt(self):
        os.sync()
        self.write("/proc/sys/vm/drop_caches", "3")
        self.write("/proc/sys/vm/compact_memory", "1")

    def compact(self):
        self.write("/proc/sys/vm/compact_memory", "1")

    def ladder(self, target_mb, name):
        return _playbook(["-i", "localhost,", "-c", "local"], _ladder_vars(target_mb, self.zone, os.path.join(self.workdir, name)))

    def close(self):
        if os.path.exists(self.warm_path):
            os.unlink(self.warm_path)
        shutil.rmtree(self.workdir, ignore_errors=True)


class LabGuest(object):
    """The lab's 6.1 guest, reached over SSH; the ladder through ansible-playbook with become, as on a fleet."""

    zone = "DMA32"

    def __init__(self, mib):
        self.mib = mib
        self.warm_mib = 48
        self.tmp = tempfile.mkdtemp(prefix="memfrag-bench-lab-")
        self.vms = lab.VmLab(self.tmp, specs=[("vm61", "6.1.")])
        self.vms.start(timeout=1200)  # a busy 2-CPU machine boots a TCG guest slowly
        self.vm = self.vms.vms[0]
        self.label = "lab guest %s, kernel %s, 512 MiB" % (self.vm.name, self.vm.kernel_release)
        # Boot-time jobs still running would allocate from the holes while a side runs: let the guest settle first
        # (is-system-running exits non-zero on a degraded system, which is fine here).
        self.ssh("timeout 300 systemctl is-system-running --wait; true", timeout=400)
        for name in ("fragmenter.py", "livemem.py"):
            with open(os.path.join(TESTS, "helpers", name)) as handle:
                self.ssh("cat > /root/%s << 'MEMFRAG_EOF'\n%s\nMEMFRAG_EOF" % (name, handle.read()))

    def ssh(self, command, timeout=900):
        # Under software emulation on a busy machine sshd can miss the 5 s banner timeout: retry the connection
        # (ssh exits 255 for connection trouble, never for the command's own status here).
        for attempt in range(6):
            proc = subprocess.run(self.vms.ssh_cmd(self.vm, command), capture_output=True, text=True, timeout=timeout,
                                  check=False)
            if proc.returncode != 255:
                break
            time.sleep(5 * (attempt + 1))
        if proc.returncode != 0:
            raise RuntimeError("ssh %s %r failed (%d): %s" % (self.vm.name, command, proc.returncode, proc.stderr))
        return proc.stdout

    def read(self, path):
        return self.ssh("cat %s" % path).strip()

    def write(self, path, value):
        self.ssh("echo %s > %s" % (value, path))

    def make_warm(self):
        self.ssh("head -c %dM /dev/urandom > /var/tmp/warm" % self.warm_mib)

    def clean_slate(self):
        self.ssh("sync; echo 3 > /proc/sys/vm/drop_caches; cat /var/tmp/warm > /dev/null; cat /var/tmp/warm > /dev/null")

    def snapshot(self):
        return json.loads(self.ssh("cd /root && python3 livemem.py"))

    @contextlib.contextmanager
    def fragmented(self, shape):
        self.ssh("rm -f /root/frag.out; setsid sh -c 'echo $$ > /root/frag.pid; sleep 100000 | exec python3 "
                 "/root/fragmenter.py --shape %s --mib %d --dir /var/tmp' > /root/frag.out 2>&1 < /dev/null &"
                 % (shape, self.mib))
        try:
            deadline = time.time() + 600
            while True:
                text = self.ssh("cat /root/frag.out")
                if '"ready": true' in text:
                    info = json.loads(text.strip().splitlines()[-1])
                    break
                if "Traceback" in text or time.time() > deadline:
                    raise RuntimeError("fragmenter failed in the guest: %s" % text)
                time.sleep(2)
            yield info
        finally:
            self.ssh("kill -- -$(cat /root/frag.pid) 2>/dev/null; sleep 1; rm -f /var/tmp/memfrag-fragmenter-*; true")

    def blunt(self):
        self.ssh("sync; echo 3 > /proc/sys/vm/drop_caches; echo 1 > /proc/sys/vm/compact_memory")

    def compact(self):
        self.ssh("echo 1 > /proc/sys/vm/compact_memory")

    def ladder(self, target_mb, name):
        inventory = os.path.join(self.tmp, "inventory.json")
        with open(inventory, "w") as handle:
            json.dump({"all": {"hosts": self.vms.inventory()}}, handle)
        extra = dict(_ladder_vars(target_mb, self.zone, "/root/bench-" + name), memfrag_become=True)
        return _playbook(["-i", inventory], extra, {"ANSIBLE_HOST_KEY_CHECKING": "false", "ANSIBLE_PIPELINING": "true",
                                                    "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
                                                    "ANSIBLE_TIMEOUT": "60", "ANSIBLE_SSH_RETRIES": "5"})

    def close(self):
        try:
            self.ssh("rm -rf /var/tmp/warm /root/bench-*", timeout=60)
        finally:
            self.vms.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)


def side(host, name, shape, target_share):
    host.clean_slate()
    with host.fragmented(shape) as info:
        before = host.snapshot()
        # Target: --target-share (default half) of the holes' size more free memory at order >= 4 in the judged zone
        # than the fragmented state has. The ladder stops there, so its recovery is at most about that. (Not the
        # whole holes by default: some sit on per-cpu lists, which buddyinfo does not show, and a zone with less free
        # memory than the target is not judged at all. Not the level before the fragmenter ran: its allocations make
        # lazy deferred init add free order-10 blocks to the zone.)
        target = int((livemem.high(before, 4, host.zone) + info["hole_bytes"] * target_share) // MIB)
        started = time.monotonic()
        if name == "ladder":
            fact, result = host.ladder(target, shape)
        elif name == "compact":
            host.compact()
            fact, result = {"actions": [{"action": "echo 1 > compact_memory"}]}, {}
        else:
            host.blunt()
            fact, result = {"actions": [{"action": "sync; echo 3 > drop_caches; echo 1 > compact_memory"}]}, {}
        seconds = time.monotonic() - started
        after = host.snapshot()
    return {
        "side": name, "shape": shape, "holes_mib": info["hole_bytes"] // MIB, "target_mib": target,
        "gain4_mib": livemem.net_gain(before, after, 4) / MIB,
        "gain9_mib": livemem.net_gain(before, after, 9) / MIB,
        "zone_gain4_mib": livemem.net_gain(before, after, 4, host.zone) / MIB,
        "growth_mib": livemem.growth(before, after) / MIB,
        "cached_before_mib": before["meminfo"]["Cached"] / MIB, "cached_after_mib": after["meminfo"]["Cached"] / MIB,
        "slab_before_mib": before["meminfo"]["SReclaimable"] / MIB, "slab_after_mib": after["meminfo"]["SReclaimable"] / MIB,
        "seconds": seconds,
        "steps": ["%s%s" % (a["action"], " [%s]" % a["refused"] if a.get("refused") else "") for a in fact["actions"]],
        "target_met": fact.get("target_met"),
        "migrated": livemem.delta(before, after, "pgmigrate_success"),
        "reached_by": next((a["action"] for a in result.get("steps", []) if a.get("target_met")), None),
        "step_lines": [a["summary"] for a in result.get("steps", [])],
    }


def show(row, zone):
    print("  %-7s gained order>=4 %+7.0f MiB (%s %+7.0f), order>=9 %+7.0f MiB | Cached %6.0f -> %6.0f MiB, "
          "SReclaimable %5.0f -> %5.0f MiB | %.2fs | zone growth %.0f MiB, pages migrated %d | %s%s"
          % (row["side"], row["gain4_mib"], zone, row["zone_gain4_mib"], row["gain9_mib"], row["cached_before_mib"],
             row["cached_after_mib"], row["slab_before_mib"], row["slab_after_mib"], row["seconds"],
             row["growth_mib"], row["migrated"], " -> ".join(row["steps"]),
             "" if row["target_met"] is None else " (target %d MiB %s%s)" % (
                 row["target_mib"], "met" if row["target_met"] else "NOT met",
                 ", reached by %s" % row["reached_by"] if row["reached_by"] else "")))
    for line in row["step_lines"]:
        print("         step: %s" % line)


def compare(ladder, blunt, compact):
    recovery = ladder["gain4_mib"] / blunt["gain4_mib"] if blunt["gain4_mib"] > 0 else float("nan")
    blunt_loss = blunt["cached_before_mib"] - blunt["cached_after_mib"]
    ladder_loss = ladder["cached_before_mib"] - ladder["cached_after_mib"]
    kept = (blunt_loss - ladder_loss) / blunt_loss if blunt_loss > 0 else float("nan")
    print("  ladder recovery at order>=4 = %.0f%% of blunt (target >= 90%%): %s"
          % (recovery * 100, "MET" if recovery >= 0.9 else "NOT MET"))
    print("  page cache the blunt way threw away (%.0f MiB) that the ladder kept: %.0f%% (target >= 90%%): %s"
          % (blunt_loss, kept * 100, "MET" if kept >= 0.9 else "NOT MET"))
    if blunt["gain4_mib"] > 0:
        # A method that keeps the cache can at best turn the holes into free blocks; the blunt way also frees the
        # cache itself. This is the ceiling on the recovery of any cache-keeping method, as a share of blunt's.
        print("  ceiling for a cache-keeping method: the holes, %d MiB = %.0f%% of the blunt recovery"
              % (blunt["holes_mib"], 100.0 * blunt["holes_mib"] / blunt["gain4_mib"]))
        # Measured, not inferred: one full compaction keeps every cache page. Reaching 90% of blunt while keeping
        # 90% of its cache loss needs this share plus a tenth of the cache loss (as order >= 4 blocks) >= 90%.
        reachable = max(compact["gain4_mib"], 0) + 0.1 * blunt_loss
        print("  compaction alone: %+.0f MiB = %.0f%% of the blunt recovery; with a tenth of blunt's cache loss on top "
              "(the most a 90%%-keeping method may drop): %.0f%%; %s"
              % (compact["gain4_mib"], 100.0 * compact["gain4_mib"] / blunt["gain4_mib"],
                 100.0 * reachable / blunt["gain4_mib"],
                 "the ladder reached %.0f%% of compaction alone" % (100.0 * ladder["gain4_mib"] / compact["gain4_mib"])
                 if compact["gain4_mib"] > 0 else "compaction alone gained nothing here"))


def bench(host, shapes, target_share):
    originals = dict((path, host.read(path)) for path in TUNABLES)
    host.write("/proc/sys/vm/compaction_proactiveness", "0")
    try:
        host.make_warm()
        print("bench_reclaim: %s; fragmenter %d MiB per shape, hot page cache %d MiB, judged zone %s"
              % (host.label, host.mib, host.warm_mib, host.zone))
        for shape in shapes:
            print("shape %s:" % shape)
            rows = {}
            for name in ("ladder", "blunt", "compact"):
                rows[name] = side(host, name, shape, target_share)
                show(rows[name], host.zone)
                if host.read("/proc/sys/vm/nr_hugepages") != originals["/proc/sys/vm/nr_hugepages"]:
                    raise RuntimeError("nr_hugepages was not restored by the %s side" % name)
            compare(rows["ladder"], rows["blunt"], rows["compact"])
    finally:
        for path, value in originals.items():
            host.write(path, value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--shapes", default="anon,pagecache")
    parser.add_argument("--mib", type=int, default=2048, help="fragmenter size on this host")
    parser.add_argument("--lab", action="store_true", help="also run in the lab's 6.1 guest")
    parser.add_argument("--lab-only", action="store_true", help="run only in the lab's 6.1 guest")
    parser.add_argument("--lab-mib", type=int, default=160, help="fragmenter size in the 512 MiB guest")
    parser.add_argument("--target-share", type=float, default=0.5,
                        help="the ladder's target: this share of the holes above the fragmented state")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark writes the kernel triggers")
    shapes = args.shapes.split(",")
    if not args.lab_only:
        host = LocalHost(args.mib)
        try:
            bench(host, shapes, args.target_share)
        finally:
            host.close()
    if args.lab or args.lab_only:
        guest = LabGuest(args.lab_mib)
        try:
            bench(guest, shapes, args.target_share)
        finally:
            guest.close()


if __name__ == "__main__":
    main()
