#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (not a test): kernel_log_scan on a 1 GiB syslog against ``grep -c -E`` and ``rg -c``.

Generates a syslog file of realistic noise (sshd, systemd, cron, dockerd, postfix, ordinary kernel chatter -
including lines that contain the scan's search strings but are no events, like systemd's "Main process
exited" and "Killing process") with boot lines naming the kernel, events of every kind (XFS deadlocks, page
allocation failures with their stack-dump taint line, stalls, hung tasks, every OOM report line) and
user-space lines quoting the messages (logger as root, sshd, a program tagged ``kernel[pid]``). Then prints,
in one run and side by side, best of ``--rounds`` and median:

* the physical floor: reading the file from the page cache (``cat`` to /dev/null, and Python's readinto);
* ``grep -c -E`` and ``rg -c`` (Debian's ripgrep, installed with apt-get when missing, else skipped with a
  message) with one pattern equivalent to the messages the scan recognises;
* the module's own scan in this process (load_state, run_scan as the module calls it - no kernel_release, so
  GFP modes are decoded with the release the log names - and save_state), wall time and CPU seconds per GiB
  (both processes: files over 64 MiB are split with a forked child); and an incremental second scan;
* start-up reported apart: a Python interpreter importing what the module imports, and an ad-hoc
  ``ansible localhost -m memfrag.linux.kernel_log_scan`` on an empty file (Ansible and module start-up);
* a hostile 100 MB file (every adversarial line of tests/helpers/kernel_log_adversarial.py at 1 KiB, 64 KiB
  and 1 MiB, from a spoofing program and tagged ``kernel:``) against the first 100 MB of the ordinary log,
  and, harsher, 100 MB of nothing but 1 KiB adversarial lines.

Rounds are interleaved (grep, rg, scan, ...) so load from other jobs on a shared machine hits all alike;
the per-round ratio's median is printed beside the ratio of the bests. Files are deleted at the end.

Run: python tests/benchmarks/bench_kernel_log_scan.py [--size BYTES] [--dir /tmp] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from collection_tree import collections_root  # noqa: E402

sys.path.insert(0, collections_root())
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import run_scan as scan_entry  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.sources import usable_cpus  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import load_state, save_state  # noqa: E402
from helpers.kernel_log_adversarial import GENERATORS, KERNEL_PREFIX, LENGTHS, USER_PREFIX  # noqa: E402

# What the scan recognises, as an operator would grep for it (case variants as character classes).
GREP_PATTERN = ("[Xx][Ff][Ss]: .*possible memory allocation deadlock|page allocation (failure|stalls)"
                "|blocked for more than [0-9]+ seconds|invoked oom-killer|oom-kill:constraint"
                "|[Kk]ill(ed)? process")
GIB = 1024 ** 3

HOSTS = ["web01", "web02", "db-7", "node06"]
NOISE = [
    ("sshd[{p}]", ["Accepted publickey for deploy from 10.0.{a}.{b} port {port} ssh2: RSA SHA256:{hex}",
                   "pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)",
                   "Connection closed by 10.1.{a}.{b} port {port} [preauth]",
                   "Invalid user admin from 203.0.113.{a} port {port}",
                   "Received disconnect from 198.51.100.{a} port {port}:11: Bye Bye [preauth]"]),
    ("systemd[1]", ["Started Session {n} of User deploy.", "Starting Cleanup of Temporary Directories...",
                    "Finished Cleanup of Temporary Directories.", "logrotate.service: Deactivated successfully.",
                    "app-{n}.service: Main process exited, code=exited, status=0/SUCCESS",
                    "app-{n}.service: Killing process {p} (java) with signal SIGKILL.",
                    "Started Daily apt download activities."]),
    ("CRON[{p}]", ["(root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
                   "pam_unix(cron:session): session closed for user root"]),
    ("kernel", ["[{up}] IPv4: martian source 10.0.{a}.{b} from 10.0.{b}.{a}, on dev eth0",
                "[{up}] EXT4-fs (sda1): re-mounted {hex}. Quota mode: none.",
                "[{up}] audit: type=1400 audit({n}.123:{p}): apparmor=\"DENIED\" operation=\"open\" "
                "profile=\"snap.lxd\" name=\"/proc/{p}/mounts\" pid={p} comm=\"lxd\" requested_mask=\"r\"",
                "[{up}] TCP: request_sock_TCP: Possible SYN flooding on port {port}. Sending cookies.",
                "[{up}] XFS (dm-{a}): Ending clean mount",
                "[{up}] perf: interrupt took too long ({n} > {p}), lowering kernel.perf_event_max_sample_rate to 79750",
                "[{up}] oom_reaper: reaped process {p} (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
                "[{up}] docker0: port {a}(veth{hex}) entered blocking state"]),
    ("dockerd[{p}]", ["time=\"2024-03-05T22:42:57.{n}\" level=info msg=\"ignoring event\" container={hex}{hex} "
                      "module=libcontainerd namespace=moby topic=/tasks/delete type=\"*events.TaskDelete\"",
                      "time=\"2024-03-05T22:42:58.{n}\" level=warning msg=\"cleaning up after shim disconnected\" id={hex} namespace=moby"]),
    ("postfix/smtpd[{p}]", ["connect from unknown[192.0.2.{a}]",
                            "disconnect from unknown[192.0.2.{a}] ehlo=1 mail=1 rcpt=0/1 data=0/1 commands=2/5"]),
]
RELEASE = "3.10.0-1160.el7.x86_64"
# (count, tag, message lines); several lines make one kernel report, written together.
EVENTS = [
    (8, "kernel", ["Linux version %s (mockbuild@kbuilder.bsys.centos.org) (gcc version 4.8.5 20150623) #1 SMP" % RELEASE]),
    (120, "kernel", ["XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250)"]),
    (40, "kernel", ["XFS: nginx({p}) possible memory allocation deadlock size {n} in kmem_alloc (mode:0x250)"]),
    (60, "kernel", ["kworker/u{a}:{b}: page allocation failure: order:4, mode:0xd0",
                    "CPU: 3 PID: {p} Comm: kworker/u{a}:{b} Not tainted %s #1" % RELEASE]),
    (20, "kernel", ["DOM Worker: page allocation stalls for {n}ms, order:0, mode:0x24280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO)"]),
    (40, "kernel", ["INFO: task qemu-kvm:{p} blocked for more than 120 seconds.",
                    "      Not tainted %s #1" % RELEASE]),
    (20, "kernel", ["java invoked oom-killer: gfp_mask=0x201da, order=0, oom_score_adj=0",
                    "CPU: 1 PID: {p} Comm: java Not tainted %s #1" % RELEASE,
                    "Out of memory: Kill process {p} (java) score 901 or sacrifice child",
                    "Killed process {p} (java), UID 1000, total-vm:8123456kB, anon-rss:7000000kB, file-rss:0kB, shmem-rss:0kB"]),
    (10, "kernel", ["oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
                    "task_memcg=/,task=fio,pid={p},uid=0",
                    "Out of memory: Killed process {p} (fio) total-vm:1234kB, anon-rss:1000kB, file-rss:0kB, "
                    "shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0",
                    "Kill process {p} (fio) sharing same memory"]),
    # user space quoting the messages: never events
    (20, "root", ["XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250)"]),
    (20, "sshd[{p}]", ["Invalid user XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250) from 203.0.113.9 port 22"]),
    (20, "kernel[{p}]", ["INFO: task spoof:{p} blocked for more than 120 seconds."]),
]


def _fill(template, rng):
    return template.format(p=rng.randint(100, 99999), a=rng.randint(0, 255), b=rng.randint(0, 255),
                           port=rng.randint(1024, 65535), n=rng.randint(1, 10 ** 6), hex="%08x" % rng.getrandbits(32),
                           up="%d.%06d" % (rng.randint(1, 9999999), rng.randint(0, 999999)))


def generate(path, size, rng):
    """A syslog file of ``size`` bytes; returns (lines, event lines written)."""
    pool = []
    for _index in range(50000):
        tag, messages = rng.choice(NOISE)
        pool.append("%s %s: %s" % (rng.choice(HOSTS), _fill(tag, rng), _fill(rng.choice(messages), rng)))
    planted = []
    for count, tag, messages in EVENTS:
        for _index in range(count):
            host, filled_tag = rng.choice(HOSTS), _fill(tag, rng)
            planted.append(["%s %s: %s" % (host, filled_tag, _fill(message, rng)) for message in messages])
    rng.shuffle(planted)
    lines_per_block = 20000
    blocks = max(1, size // (lines_per_block * 150))
    inject_at = sorted(rng.randrange(blocks) for _report in planted)
    written = lines = events = 0
    clock = time.time() - 30 * 86400
    block = 0
    with open(path, "w") as handle:
        while written < size:
            stamp = time.strftime("%b %d %H:%M:%S", time.localtime(clock))
            chunk = [stamp + " " + line for line in rng.choices(pool, k=lines_per_block)]
            while inject_at and inject_at[0] <= block:
                inject_at.pop(0)
                report = planted.pop()
                at = rng.randrange(len(chunk))
                chunk[at:at] = [stamp + " " + line for line in report]
                events += len(report)
            text = "\n".join(chunk) + "\n"
            handle.write(text)
            written += len(text)
            lines += len(chunk)
            clock += 30 * 86400.0 * (lines_per_block * 150) / size
            block += 1
        for report in planted:  # whatever did not fit before the size was reached
            for line in report:
                handle.write(time.strftime("%b %d %H:%M:%S ") + line + "\n")
                lines += 1
                events += 1
    return lines, events


def generate_hostile(path, size, lengths):
    """Adversarial lines, each from a spoofing program and tagged kernel:, cycling through every generator
    and length until ``size`` bytes; returns the line count."""
    lines = written = 0
    with open(path, "w", encoding="utf-8") as handle:
        while written < size:
            for _name, build in GENERATORS:
                for length in lengths:
                    for prefix in (USER_PREFIX, KERNEL_PREFIX):
                        line = prefix + build(length) + "\n"
                        handle.write(line)
                        written += len(line.encode("utf-8"))
                        lines += 1
                        if written >= size:
                            return lines
    return lines


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_command(argv, env=None):
    cpu0, wall0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, check=False)
    return time.perf_counter() - wall0, _children_cpu() - cpu0, proc


def run_grep(path):
    wall, cpu, proc = _timed_command(["grep", "-c", "-E", GREP_PATTERN, path])
    return wall, cpu, int(proc.stdout.strip() or 0)


def run_rg(path):
    wall, cpu, proc = _timed_command(["rg", "-c", GREP_PATTERN, path])
    return wall, cpu, int(proc.stdout.strip() or 0)


def run_floor(path):
    """Reading the file from the page cache: cat to /dev/null, and Python's readinto of 1 MiB chunks."""
    with open(os.devnull, "wb") as null:
        cpu0, wall0 = _children_cpu(), time.perf_counter()
        subprocess.run(["cat", path], stdout=null, check=True)
        cat = (time.perf_counter() - wall0, _children_cpu() - cpu0)
    buf = bytearray(1024 * 1024)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with open(path, "rb", buffering=0) as handle:
        while handle.readinto(buf):
            pass
    return cat, (time.perf_counter() - wall0, time.process_time() - cpu0)


def run_scan(path, state_file, kernel_release=None):
    """What the module does between argument parsing and exit_json, in this process."""
    cpu0, own0, wall0 = _children_cpu(), time.process_time(), time.perf_counter()
    state, _problem = load_state(state_file)
    options = {"sources": ["files"], "paths": [path], "since": None, "kernel_release": kernel_release, "max_events": 100,
               "include_userspace_kmsg": False}
    warnings = []
    result, new_state = scan_entry(options, state, warnings.append, None, time.time())
    save_state(state_file, new_state)
    wall = time.perf_counter() - wall0
    return wall, time.process_time() - own0 + _children_cpu() - cpu0, result, warnings


def startup():
    """Start-up the in-process numbers leave out: (interpreter + imports, ad-hoc ansible run) wall seconds."""
    code = ("import ansible.module_utils.basic\n"
            "from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log import scan, state, options\n")
    env = dict(os.environ, PYTHONPATH=collections_root())
    walls = []
    for _round in range(3):
        wall, _cpu, _proc = _timed_command([sys.executable, "-c", code], env=env)
        walls.append(wall)
    imports = min(walls)
    adhoc = None
    ansible = shutil.which("ansible") or os.path.join(os.path.dirname(sys.executable), "ansible")
    if os.path.exists(ansible):
        with tempfile.NamedTemporaryFile(prefix="bench-empty-") as empty:
            env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_root(), ANSIBLE_LOCALHOST_WARNING="false",
                       ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
            walls = []
            for _round in range(3):
                wall, _cpu, proc = _timed_command([ansible, "localhost", "-c", "local", "-m", "memfrag.linux.kernel_log_scan",
                                                   "-a", "sources=files paths=%s" % empty.name], env=env)
                if proc.returncode == 0:
                    walls.append(wall)
            adhoc = min(walls) if walls else None
    return imports, adhoc


def ensure_ripgrep():
    if shutil.which("rg"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("rg not found: installing Debian's ripgrep with apt-get")
        subprocess.run(["apt-get", "install", "-y", "-q", "ripgrep"], stdout=subprocess.DEVNULL, check=False)
    if shutil.which("rg"):
        return True
    print("rg (ripgrep) not found and not installable here; the ripgrep column is skipped")
    return False


def _stats(values):
    return min(values), statistics.median(values)


def _fmt(values, unit="s"):
    best, median = _stats(values)
    return "%.3f%s (median %.3f%s)" % (best, unit, median, unit)


def hostile_versus_ordinary(workdir, ordinary_source, size, rounds):
    ordinary = os.path.join(workdir, "ordinary-100MB")
    with open(ordinary_source, "rb") as src, open(ordinary, "wb") as dst:
        dst.write(src.read(size))
        dst.write(src.readline())
    hostile = os.path.join(workdir, "hostile-100MB")
    dense = os.path.join(workdir, "hostile-dense-100MB")
    hostile_lines = generate_hostile(hostile, size, LENGTHS)
    dense_lines = generate_hostile(dense, size, (1024,))
    state = os.path.join(workdir, "state-100MB.json")
    times = {"ordinary": [], "hostile": [], "dense": []}
    ratios, dense_ratios = [], []
    for _round in range(rounds):
        row = {}
        for name, path in (("ordinary", ordinary), ("hostile", hostile), ("dense", dense)):
            if os.path.exists(state):
                os.unlink(state)
            wall, _cpu, result, _warnings = run_scan(path, state)
            times[name].append(wall)
            row[name] = (wall, result)
        ratios.append(row["hostile"][0] / row["ordinary"][0])
        dense_ratios.append(row["dense"][0] / row["ordinary"][0])
    for name in ("hostile", "dense"):
        result = row[name][1]
        print("  %s file: %d events, %d lines from other programs (not_kernel)"
              % (name, sum(result["counts"].values()), result["ignored"]["not_kernel"]))
    print("hostile 100 MB (%d adversarial lines at 1 KiB, 64 KiB, 1 MiB; half spoofed, half tagged kernel:) %s vs "
          "ordinary 100 MB %s: %.2fx (median of per-round ratios %.2fx); target within 2x: %s"
          % (hostile_lines, _fmt(times["hostile"]), _fmt(times["ordinary"]), min(times["hostile"]) / min(times["ordinary"]),
             statistics.median(ratios), "met" if min(times["hostile"]) <= 2 * min(times["ordinary"]) else "NOT met"))
    per_line = (min(times["dense"]) - min(times["ordinary"])) / dense_lines * 1e6
    print("harsher: 100 MB of only 1 KiB adversarial lines (%d lines, every one holding event text) %s: %.2fx ordinary "
          "(median %.2fx) - every such line is parsed in Python (%.0f us per line here), so this grows with the "
          "number of lines, not with their length"
          % (dense_lines, _fmt(times["dense"]), min(times["dense"]) / min(times["ordinary"]), statistics.median(dense_ratios),
             per_line))
    for name in (ordinary, hostile, dense, state):
        if os.path.exists(name):
            os.unlink(name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--size", type=int, default=GIB, help="bytes of log to generate (default 1 GiB)")
    parser.add_argument("--hostile-size", type=int, default=100 * 1000 * 1000, help="bytes of the hostile file")
    parser.add_argument("--dir", default="/tmp", help="where to put the temporary files")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each measurement")
    args = parser.parse_args()
    rng = random.Random(20240305)
    have_rg = ensure_ripgrep()
    workdir = tempfile.mkdtemp(prefix="bench-kernel-log-scan-", dir=args.dir)
    path = os.path.join(workdir, "messages")
    state_file = os.path.join(workdir, "state.json")
    try:
        started = time.perf_counter()
        lines, events = generate(path, args.size, rng)
        size = os.path.getsize(path)
        gib = size / float(GIB)
        print("generated %s: %d bytes, %d lines, %d event and quoting lines planted in %.1fs"
              % (path, size, lines, events, time.perf_counter() - started))
        print("python %s, %d usable CPU(s), load average %s" % (sys.version.split()[0], usable_cpus(),
                                                                " ".join("%.2f" % v for v in os.getloadavg())))
        if have_rg:
            print("ripgrep: %s" % subprocess.run(["rg", "--version"], stdout=subprocess.PIPE, universal_newlines=True,
                                                 check=False).stdout.splitlines()[0])
        print("pattern for grep and rg: %s" % GREP_PATTERN)
        with open(path, "rb") as handle:  # warm the page cache so every reader reads from memory
            while handle.read(64 * 1024 * 1024):
                pass
        imports, adhoc = startup()
        columns = {"cat": [], "readinto": [], "grep": [], "rg": [], "scan": [], "given": [], "incremental": []}
        cpus = {"grep": [], "rg": [], "scan": [], "given": []}
        rg_ratios = []
        for round_number in range(1, args.rounds + 1):
            cat, readinto = run_floor(path)
            columns["cat"].append(cat[0])
            columns["readinto"].append(readinto[0])
            grep_wall, grep_cpu, grep_count = run_grep(path)
            columns["grep"].append(grep_wall)
            cpus["grep"].append(grep_cpu)
            rg_part = ""
            if have_rg:
                rg_wall, rg_cpu, rg_count = run_rg(path)
                columns["rg"].append(rg_wall)
                cpus["rg"].append(rg_cpu)
                rg_part = " | rg -c %.3fs wall %.3fs cpu (%d lines)" % (rg_wall, rg_cpu, rg_count)
            if os.path.exists(state_file):
                os.unlink(state_file)
            full_wall, full_cpu, full, warnings = run_scan(path, state_file)
            incr_wall, _incr_cpu, incr, _warnings = run_scan(path, state_file)
            os.unlink(state_file)
            given_wall, given_cpu, _given, _warnings = run_scan(path, state_file, RELEASE)
            columns["given"].append(given_wall)
            cpus["given"].append(given_cpu)
            columns["scan"].append(full_wall)
            cpus["scan"].append(full_cpu)
            columns["incremental"].append(incr_wall)
            if have_rg:
                rg_ratios.append(full_wall / rg_wall)
            matched = sum(full["forms"].values()) + full["ignored"]["not_kernel"]
            print("round %d: cat %.3fs | readinto %.3fs | grep -c -E %.3fs wall %.3fs cpu (%d lines)%s | scan %.3fs wall "
                  "%.3fs cpu (%d events, %d lines with event text, %d from other programs) | with kernel_release %.3fs "
                  "wall %.3fs cpu | incremental %.4fs (%d events)"
                  % (round_number, cat[0], readinto[0], grep_wall, grep_cpu, grep_count, rg_part, full_wall, full_cpu,
                     sum(full["counts"].values()), matched, full["ignored"]["not_kernel"], given_wall, given_cpu,
                     incr_wall, sum(incr["counts"].values())))
        print("counts: %s" % full["counts"])
        decoded = [e for e in full["events"] if e.get("gfp_release")]
        if decoded:
            last = decoded[-1]
            print("GFP modes decoded with %s (%s), e.g. %s"
                  % (last["gfp_release"], last["gfp_release_source"], last.get("gfp_flags")))
        print("warnings: %s" % (warnings or "none"))
        print()
        print("side by side (%.2f GiB, best of %d, median in brackets):" % (gib, args.rounds))
        print("  floor: cat > /dev/null  %s" % _fmt(columns["cat"]))
        print("  floor: Python readinto  %s" % _fmt(columns["readinto"]))
        print("  grep -c -E              %s   %.2f CPU s/GiB" % (_fmt(columns["grep"]), min(cpus["grep"]) / gib))
        if have_rg:
            print("  rg -c                   %s   %.2f CPU s/GiB" % (_fmt(columns["rg"]), min(cpus["rg"]) / gib))
        print("  kernel_log_scan         %s   %.2f CPU s/GiB (in-process; start-up below)"
              % (_fmt(columns["scan"]), min(cpus["scan"]) / gib))
        print("  same, kernel_release given (no search for the log's release) %s   %.2f CPU s/GiB"
              % (_fmt(columns["given"]), min(cpus["given"]) / gib))
        print("  incremental rescan      %s" % _fmt(columns["incremental"]))
        adhoc_text = ""
        if adhoc is not None:
            adhoc_text = ", ad-hoc ansible localhost run on an empty file %.3fs" % float(adhoc)
        print("  start-up apart: interpreter + module imports %.3fs%s" % (imports, adhoc_text))
        best_scan = min(columns["scan"])
        print("scan / grep: %.2fx" % (best_scan / min(columns["grep"])))
        if have_rg:
            ratio = best_scan / min(columns["rg"])
            print("scan / rg: %.2fx (median of per-round ratios %.2fx); target within 2.0x of rg: %s"
                  % (ratio, statistics.median(rg_ratios), "met" if ratio <= 2.0 else "NOT met"))
        print("scan / physical floor (cat): %.2fx" % (best_scan / min(columns["cat"])))
        print("incremental under 1%% of full: %s" % ("met" if min(columns["incremental"]) < 0.01 * best_scan else "NOT met"))
        print()
        hostile_versus_ordinary(workdir, path, args.hostile_size, args.rounds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
