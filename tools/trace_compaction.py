# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Why did compact_memory stop? Trace one run on the anon fragmenter shape (root, debugging aid).

Mounts tracefs privately (if it is not mounted), uses its own trace instance, enables only the
compaction begin/end and migrate_pages events for one write to compact_memory, then prints for each
zone where the migrate and free scanners stopped and with what status, the migrate_pages batches,
and the page flags (/proc/kpageflags) of the compound pages just below the migrate scanner's stop
point. Everything it enabled is disabled and removed again, and the mount is undone.

    python3 tools/trace_compaction.py --mib 2048
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

# The fragmenter is shared with the tests that build the same shapes; tools/ and tests/ live side by side in a
# checkout (neither is in the built collection).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "helpers"))
from fragmenter import Fragmenter  # noqa: E402

EVENTS = ("compaction/mm_compaction_begin", "compaction/mm_compaction_end", "migrate/mm_migrate_pages")
KPF = {10: "buddy", 5: "lru", 12: "anon", 15: "head", 16: "tail", 22: "thp", 7: "slab"}


def flags(handle, pfn):
    handle.seek(pfn * 8)
    return struct.unpack("Q", handle.read(8))[0]


def describe(handle, pfn):
    value = flags(handle, pfn)
    names = [name for bit, name in sorted(KPF.items()) if value >> bit & 1]
    return "|".join(names) or "none"


def compound_heads(handle, start, end):
    """(pfn, order, flags) of compound pages whose head lies in [start, end)."""
    found = []
    pfn = start
    while pfn < end:
        value = flags(handle, pfn)
        if value >> 15 & 1:
            size = 1
            while flags(handle, pfn + size) >> 16 & 1:
                size += 1
            found.append((pfn, size.bit_length() - 1, describe(handle, pfn)))
            pfn += size
        else:
            pfn += 1
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=2048)
    parser.add_argument("--shape", default="anon", choices=("anon", "pagecache"))
    args = parser.parse_args()
    mounted = None
    tracing = "/sys/kernel/tracing"
    if not os.path.exists(os.path.join(tracing, "instances")):
        mounted = tempfile.mkdtemp(prefix="memfrag-tracefs-")
        subprocess.run(["mount", "-t", "tracefs", "nodev", mounted], check=True)
        tracing = mounted
    instance = os.path.join(tracing, "instances", "memfrag-%d" % os.getpid())
    os.mkdir(instance)
    try:
        with open(os.path.join(instance, "buffer_size_kb"), "w") as handle:
            handle.write("8192")
        for event in EVENTS:
            with open(os.path.join(instance, "events", event, "enable"), "w") as handle:
                handle.write("1")
        with Fragmenter(args.shape, args.mib) as frag:
            print("fragmenter: %s" % frag.info)
            with open("/proc/sys/vm/compact_memory", "w") as handle:
                handle.write("1")
            time.sleep(0.2)
            with open(os.path.join(instance, "trace")) as handle:
                lines = [line for line in handle.read().splitlines() if not line.startswith("#")]
            with open("/proc/kpageflags", "rb") as kpf:
                for line in lines:
                    if "mm_compaction_end" in line or "mm_compaction_begin" in line:
                        print(line.split(": ", 1)[1].strip() if ": " in line else line)
                    match = re.search(r"mm_compaction_end: zone_start=(0x[0-9a-f]+) migrate_pfn=(0x[0-9a-f]+)", line)
                    if match and "status=contended" in line:
                        stop = int(match.group(2), 16)
                        heads = compound_heads(kpf, max(int(match.group(1), 16), stop - 1024), stop + 32)
                        print("  compound pages just below the migrate scanner stop %#x: %s"
                              % (stop, ", ".join("%#x order %d %s" % h for h in heads if "slab" not in h[2]) or "none"))
                failed = [line for line in lines if "mm_migrate_pages:" in line and "nr_failed=0 " not in line]
                print("migrate_pages batches: %d, with failures: %d" % (sum("mm_migrate_pages:" in line for line in lines), len(failed)))
                for line in failed[-3:]:
                    print("  " + line.split("mm_migrate_pages: ", 1)[1])
    finally:
        for event in EVENTS:
            try:
                with open(os.path.join(instance, "events", event, "enable"), "w") as handle:
                    handle.write("0")
            except OSError:
                pass
        os.rmdir(instance)
        if mounted:
            subprocess.run(["umount", mounted], check=False)
            os.rmdir(mounted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
