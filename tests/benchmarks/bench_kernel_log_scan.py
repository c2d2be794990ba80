#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (not a test): kernel_log_scan on a 1 GiB syslog against ``grep -c -E``.

Generates a syslog file of realistic noise (sshd, systemd, cron, dockerd, postfix, kernel chatter -
including lines that contain the scan's search strings but are no events, like systemd's "Main
process exited") with a few hundred planted kernel events and a few dozen spoofed ones, then prints
in one run:

* ``grep -c -E`` with a pattern equivalent to the messages the scan recognises, on the same file;
* the full scan (the module's code path: module_utils.scan with a state file);
* a second, incremental scan of the unchanged file with that state file.

The machine may be shared, so each measurement is repeated (``--rounds``) and every round is
printed along with the best. The file is deleted at the end.

Run: /tmp/venvtry/bin/python tests/benchmarks/bench_kernel_log_scan.py [--size BYTES] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from collection_tree import collections_root  # noqa: E402

sys.path.insert(0, collections_root())
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import scan  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.sources import usable_cpus  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import load_state, save_state  # noqa: E402

# What the scan recognises, as an operator would grep for it (case variants as character classes).
GREP_PATTERN = ("[Xx][Ff][Ss]: .*possible memory allocation deadlock|page allocation (failure|stalls)"
                "|blocked for more than [0-9]+ seconds|invoked oom-killer|oom-kill:constraint"
                "|[Kk]ill(ed)? process")

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
EVENTS = [
    (120, "kernel", "XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250)"),
    (40, "kernel", "XFS: nginx({p}) possible memory allocation deadlock size {n} in kmem_alloc (mode:0x250)"),
    (60, "kernel", "kworker/u{a}:{b}: page allocation failure: order:4, mode:0xd0"),
    (40, "kernel", "INFO: task qemu-kvm:{p} blocked for more than 120 seconds."),
    (20, "kernel", "java invoked oom-killer: gfp_mask=0x201da, order=0, oom_score_adj=0"),
    (20, "kernel", "Killed process {p} (java), UID 1000, total-vm:8123456kB, anon-rss:7000000kB, file-rss:0kB, shmem-rss:0kB"),
    (20, "root", "XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250)"),
    (20, "sshd[{p}]", "Invalid user XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250) from 203.0.113.9 port 22"),
]


def _fill(template, rng):
    return template.format(p=rng.randint(100, 99999), a=rng.randint(0, 255), b=rng.randint(0, 255),
                           port=rng.randint(1024, 65535), n=rng.randint(1, 10 ** 6), hex="%08x" % rng.getrandbits(32),
                           up="%d.%06d" % (rng.randint(1, 9999999), rng.randint(0, 999999)))


def generate(path, size, rng):
    pool = []
    for _index in range(50000):
        tag, messages = rng.choice(NOISE)
        pool.append("%s %s: %s" % (rng.choice(HOSTS), _fill(tag, rng), _fill(rng.choice(messages), rng)))
    planted = []
    for count, tag, message in EVENTS:
        for _index in range(count):
            planted.append("%s %s: %s" % (rng.choice(HOSTS), _fill(tag, rng), _fill(message, rng)))
    rng.shuffle(planted)
    lines_per_block = 20000
    blocks = max(1, size // (lines_per_block * 150))
    inject_at = sorted(rng.randrange(blocks) for _line in planted)
    written = lines = 0
    clock = time.time() - 30 * 86400
    block = 0
    with open(path, "w") as handle:
        while written < size:
            stamp = time.strftime("%b %d %H:%M:%S", time.localtime(clock))
            chunk = [stamp + " " + line for line in rng.choices(pool, k=lines_per_block)]
            while inject_at and inject_at[0] <= block:
                inject_at.pop(0)
                chunk.insert(rng.randrange(len(chunk)), stamp + " " + planted.pop())
            text = "\n".join(chunk) + "\n"
            handle.write(text)
            written += len(text)
            lines += len(chunk)
            clock += 30 * 86400.0 * (lines_per_block * 150) / size
            block += 1
        for line in planted:  # whatever did not fit before the size was reached
            handle.write(time.strftime("%b %d %H:%M:%S ") + line + "\n")
            lines += 1
    return lines


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_grep(path):
    cpu0, wall0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(["grep", "-c", "-E", GREP_PATTERN, path], capture_output=True, text=True, check=False)
    return time.perf_counter() - wall0, _children_cpu() - cpu0, int(proc.stdout.strip() or 0)


def run_scan(path, state_file):
    cpu0, own0, wall0 = _children_cpu(), time.process_time(), time.perf_counter()
    state, _problem = load_state(state_file)
    result, new_state = scan(["files"], [path], None, state, "3.10.0-1160.el7.x86_64", 100, False, [].append)
    save_state(state_file, new_state)
    wall = time.perf_counter() - wall0
    return wall, time.process_time() - own0 + _children_cpu() - cpu0, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--size", type=int, default=1024 ** 3, help="bytes of log to generate (default 1 GiB)")
    parser.add_argument("--dir", default="/tmp", help="where to put the temporary log file")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each measurement")
    args = parser.parse_args()
    rng = random.Random(20240305)
    workdir = tempfile.mkdtemp(prefix="bench-kernel-log-scan-", dir=args.dir)
    path = os.path.join(workdir, "messages")
    state_file = os.path.join(workdir, "state.json")
    try:
        started = time.perf_counter()
        lines = generate(path, args.size, rng)
        size = os.path.getsize(path)
        print("generated %s: %d bytes, %d lines, %d planted event lines (%d of them spoofed) in %.1fs"
              % (path, size, lines, sum(c for c, _t, _m in EVENTS), sum(c for c, t, _m in EVENTS if t != "kernel"),
                 time.perf_counter() - started))
        print("python %s, %d usable CPU(s), load average %s" % (sys.version.split()[0], usable_cpus(),
                                                                " ".join("%.2f" % v for v in os.getloadavg())))
        print("grep pattern: %s" % GREP_PATTERN)
        with open(path, "rb") as handle:  # warm the page cache so both read from memory
            while handle.read(64 * 1024 * 1024):
                pass
        greps, fulls, increments = [], [], []
        for round_number in range(1, args.rounds + 1):
            grep_wall, grep_cpu, grep_count = run_grep(path)
            if os.path.exists(state_file):
                os.unlink(state_file)
            full_wall, full_cpu, full = run_scan(path, state_file)
            incr_wall, incr_cpu, incr = run_scan(path, state_file)
            greps.append(grep_wall)
            fulls.append(full_wall)
            increments.append(incr_wall)
            matched = sum(full["forms"].values()) + full["ignored"]["not_kernel"]
            print("round %d: grep -c -E %.3fs wall %.3fs cpu (%d lines) | full scan %.3fs wall %.3fs cpu "
                  "(%d events, %d matching lines, %d spoofed ignored) | incremental %.4fs wall %.4fs cpu (%d events)"
                  % (round_number, grep_wall, grep_cpu, grep_count, full_wall, full_cpu, sum(full["counts"].values()),
                     matched, full["ignored"]["not_kernel"], incr_wall, incr_cpu, sum(incr["counts"].values())))
        print("counts: %s" % full["counts"])
        best_grep, best_full, best_incr = min(greps), min(fulls), min(increments)
        print("best: grep -c -E %.3fs, full scan %.3fs (%.2fx grep), incremental %.4fs (%.3f%% of full scan)"
              % (best_grep, best_full, best_full / best_grep, best_incr, 100.0 * best_incr / best_full))
        print("target full scan no slower than grep -E: %s" % ("met" if best_full <= best_grep else "NOT met"))
        print("target incremental under 1%% of full: %s" % ("met" if best_incr < 0.01 * best_full else "NOT met"))
    finally:
        for name in (path, state_file):
            if os.path.exists(name):
                os.unlink(name)
        os.rmdir(workdir)


if __name__ == "__main__":
    main()
