# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bad inputs the collection is tested against, and what each gets (issue 10).

CASES is the published list: docs/hostile-input.md shows exactly these ids, inputs and outcomes
(test_doc_lists_exactly_these_cases), and each id has a check below that builds the input and
asserts the outcome (test_case). Outcomes, in the words of the doc:

* failure: the module fails with a message naming the file (and line); nothing is half-written.
* warning: the run goes on; the file, line or record is left out with a warning saying why.
* skipped: left out or kept as text without a warning, because that is what the kernel's own
  tools do (a pid that vanished, a value that is not a number).
* filter error: an AnsibleFilterError naming the argument; the play fails on that task.
"""

from __future__ import annotations

import bz2
import json
import os
import re
import stat
import time

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.memfrag.linux.plugins.filter.diagnose import findings, host_verdict
from ansible_collections.memfrag.linux.plugins.filter.query import query
from ansible_collections.memfrag.linux.plugins.module_utils._facts.buddyinfo import gather as gather_buddyinfo
from ansible_collections.memfrag.linux.plugins.module_utils._findings.judge import host_findings
from ansible_collections.memfrag.linux.plugins.module_utils._mm import fragmentation as frag
from ansible_collections.memfrag.linux.plugins.module_utils._facts.meminfo import gather as gather_meminfo
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import run_scan, scan
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.sources import (
    MAX_EXPANSION, MIN_EXPANSION_BYTES, read_journal)
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import empty_state
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.buddyinfo import MAX_ORDERS, parse_buddyinfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, page_size_problem, read_text
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.meminfo import parse_meminfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.numbers import NumberError, parse_count, parse_signed
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.pagetypeinfo import parse_pagetypeinfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.process_memory import process_rss
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.slabinfo import parse_slabinfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.vm_tunables import parse_tunable, read_vm_tunables
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.zoneinfo import parse_zoneinfo
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.run import check_options
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.runtime import write_sysctl
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.precedence import analyse, collect, overrides, values_equal
from ansible_collections.memfrag.linux.plugins.module_utils._xfs.defrag import parse_size
from ansible_collections.memfrag.linux.tests.collection_tree import REPO_ROOT
from ansible_collections.memfrag.linux.tests.helpers import hostile_tree as ht

DOC = os.path.join(REPO_ROOT, "docs", "hostile-input.md")

FAILURE, WARNING, SKIPPED, FILTER_ERROR = "failure", "warning", "skipped", "filter error"

# (id, what the collection is given, outcome, what the operator sees). The doc renders this table.
CASES = (
    # Item 1: a file that is not a regular file where a kernel file belongs.
    ("fifo-required", "`buddyinfo` or `meminfo` under `proc_root` is a FIFO (named pipe)", FAILURE,
     "`<path>: is a named pipe (FIFO), not a regular file; refusing to read it`, at once (no open, no read blocks)"),
    ("fifo-optional", "`zoneinfo`, `pagetypeinfo`, `vmstat` or `slabinfo` is a FIFO", WARNING,
     "the file is left out; `sources` says `unreadable: ... is a named pipe (FIFO) ...`"),
    ("fifo-sys-vm", "a `sys/vm/<tunable>` or `sys/kernel/osrelease` is a FIFO", WARNING,
     "that tunable is absent from `tunables` with a warning; an unreadable osrelease leaves `kernel_release` null"),
    ("fifo-pid-statm", "`<pid>/statm` or `<pid>/status` is a FIFO", WARNING,
     "that process is not counted in the RSS sum; one warning for all such pids"),
    ("fifo-sysctl-conf", "a `*.conf` in a sysctl.d directory under `config_root` is a FIFO", WARNING,
     "`<dir>/<name>.conf not read: not a regular file; neither applier can read it at boot`; the file sets nothing "
     "(a device node there is a mask, as for systemd-sysctl, and is never opened)"),
    ("device-or-socket", "a kernel file is a character device, a socket or a directory", FAILURE,
     "`is a character device` / `is a socket` / `is a directory`, `not a regular file; refusing to read it` "
     "(a warning for optional files); a device node is never opened"),
    ("link-out-of-root", "a kernel file is a symlink that resolves outside `proc_root`", FAILURE,
     "`resolves to <target>, outside <root>; refusing to follow` (a warning for optional files)"),
    ("link-pid-file", "`<pid>/statm` is a symlink", SKIPPED,
     "never followed; the pid's `status` is read instead, as for a process that has no statm"),
    # Item 2: numbers the kernel cannot print.
    ("huge-buddyinfo-count", "a buddyinfo count of 5,000 digits, or above 2**64 - 1", FAILURE,
     "`<path> line N: free block count '999...' (5000 characters) has 5000 digits; the kernel prints at most 20 (64 bits)`"),
    ("foreign-digits", "digits of another script (`٣`) or superscripts (`²`) where the kernel prints a count", FAILURE,
     "`... is not a number of ASCII digits` naming file and line (a warning in optional files)"),
    ("huge-meminfo-value", "`MemTotal`, `Dirty` or any meminfo field of 5,000 digits", FAILURE,
     "`<path> line N: MemTotal '999...' (5000 characters) has 5000 digits; ...`"),
    ("huge-zoneinfo-counter", "a zoneinfo counter (`nr_free_pages`, a per-node stat) past 64 bits", WARNING,
     "`<path> line N: ...; counter skipped`; the zone is kept"),
    ("huge-zoneinfo-watermark", "a zoneinfo `pages free`, watermark, size or protection entry past 64 bits", WARNING,
     "`<path> line N: ...; node N zone Z is left out`; the other zones are kept"),
    ("huge-pagetypeinfo-count", "a pagetypeinfo free block or pageblock count past 64 bits", WARNING,
     "`<path> line N: ...; line skipped`; the other rows are kept"),
    ("huge-vmstat-counter", "a vmstat counter past 64 bits", WARNING, "`<path> line N: ...; counter skipped`"),
    ("huge-slabinfo-field", "a slabinfo cache line with a number past 64 bits", WARNING,
     "`<path> line N: ...; cache 'name' skipped`; the other caches are listed"),
    ("huge-statm", "one pid's statm (or status VmRSS) past 64 bits", WARNING,
     "that process is not counted; one warning for all such pids"),
    ("huge-sys-vm-value", "a `sys/vm/<tunable>` holding a number past 64 bits", SKIPPED,
     "the value is reported as text, never computed with"),
    # Item 5: cost that grows faster than the input.
    ("buddyinfo-10000-orders", "a buddyinfo line with 10,000 order columns", FAILURE,
     "`<path> line N: more than %d order columns; no kernel has that many orders (MAX_ORDER), so this is not "
     "buddyinfo`, in under a millisecond (was 154 s and 30 MB)" % MAX_ORDERS),
    ("pagetypeinfo-10000-orders", "a pagetypeinfo header with 10,000 orders, or 10,000 migrate types", WARNING,
     "`malformed: <path> line N: more than %d orders in the header; ...`; pagetypeinfo is left out" % MAX_ORDERS),
    # Bytes that are not text.
    ("nul-and-bad-utf8", "NUL bytes and invalid UTF-8 in any kernel file", WARNING,
     "bytes that are not UTF-8 become U+FFFD; lines that are not kernel output are skipped with a warning "
     "(buddyinfo, zoneinfo, vmstat) or fail naming the line (meminfo, pagetypeinfo, slabinfo)"),
    # Item 4: values of the wrong type reaching the filters.
    ("findings-log-counts-list", "`log_scan.counts` given as a list to `memfrag.linux.findings` or `memory_facts` `judge`",
     FILTER_ERROR, "`findings: facts are not in the shape memfrag.linux modules return: log_scan.counts must be a dict of "
     "event kind to count, got list` "
     "(`memory_facts` fails with the same text)"),
    ("findings-wrong-shapes", "facts with a string for `zones`, a bool or 5,000-digit string for a byte count, "
     "`largest_free_order: 10**9`, a threshold `order` of 10**100", FILTER_ERROR,
     "the message names the fact (`free_bytes of zone Normal must be a whole number, got ...`)"),
    ("verdict-not-findings", "`memfrag.linux.verdict` given a dict, or items without a known severity", FILTER_ERROR,
     "`verdict: expected a list of findings` / `findings[0] has severity 'urgent'; expected one of ...`"),
    ("query-deep-nesting", "a JMESPath expression nested thousands deep", FILTER_ERROR,
     "`query: JMESPath expression '((((...' is nested too deeply`"),
    # Found by the outside audit (issue 10's class, cases it had not tried).
    ("log-decompression-bomb", "a rotated log (`.bz2`, `.gz`, `.xz`) that expands more than %d times its size, e.g. "
     "concatenated bzip2 streams of zeros (78 KB on disk, 100 GiB expanded)" % MAX_EXPANSION, WARNING,
     "`<path>: expands to more than N bytes from M on disk, more than %d times: a decompression bomb, not a log; read "
     "no further; scanned the first N bytes`; events before that point are counted (was a scan of hours)" % MAX_EXPANSION),
    ("journal-nested-json", "`journalctl` printing a line of JSON nested 100,000 deep", WARNING,
     "`journalctl printed a line that is not JSON; skipped`; the entries after it are read (was a RecursionError traceback)"),
    ("max-events-huge", "`max_events: 10**24` for `kernel_log_scan` (or the `kernel_log` option of `memory_facts` and "
     "`reclaim_memory`)", FAILURE,
     "`max_events must be between 0 and 1000000, got 1000000000000000000000000` (was an OverflowError traceback)"),
    ("reclaim-orders-out-of-range", "`orders: [-1]` or `[10**30]` for `compact_memory` or `drop_caches`", FAILURE,
     "`orders must be buddy orders from 0 to %d, got -1` before anything runs (-1 was measured as the last order)"
     % (MAX_ORDERS - 1)),
    ("page-size-too-large", "`page_size: 2**70` (a power of two, but no kernel's page) for any module that takes it",
     FAILURE, "`page_size must be at most 262144 (256 KiB, the largest page any Linux builds with), got ...`"),
    ("extsize-not-a-size", "`xfs_defrag` `extsize` in digits of another script (`١٦m`) or of 5,000 digits", FAILURE,
     "`extsize: an extent size hint is bytes or a number with k, m or g` / `... is at most 1g (XFS's limit), got a "
     "5000-digit number` (`١٦m` was taken as 16 MiB; 5,000 digits showed Python's digit-limit error)"),
    ("sysctl-write-fifo", "a `sys/vm/<tunable>` that `vm_sysctl` writes is swapped for a FIFO after its checks", FAILURE,
     "`<path>: a FIFO, socket or device, not a regular file; not written`, at once (the open waited for a reader "
     "forever)"),
    ("sysctl-conf-huge-value", "a sysctl.d file under `config_root` setting a vm key to a number of 5,000 digits", FAILURE,
     "`vm_sysctl` compares it as text, as the kernel refuses any number over 21 characters: `another sysctl file wins "
     "at boot ... (wanted 10)` (was a ValueError traceback from Python's digit limit)"),
)
CASE_IDS = [case[0] for case in CASES]

BIG = "9" * 5000
OUT_OF_RANGE = str(1 << 64)


@pytest.fixture
def tree(tmp_path):
    """A valid proc tree at tmp_path/proc and a regular file outside it at tmp_path/outside/secret."""
    root = ht.copy_fixture(str(tmp_path / "proc"))
    os.makedirs(str(tmp_path / "outside"))
    outside = ht.write(str(tmp_path / "outside"), "secret", "MemTotal: 1 kB\n")
    return root, outside


def _gather_all(root):
    with ht.no_hang(10):
        buddy, buddy_warnings = gather_buddyinfo(root, 4096)
        mem, mem_warnings = gather_meminfo(root, 4096)
    return buddy, mem, buddy_warnings + mem_warnings


def _fails(root, pattern):
    with ht.no_hang(10):
        with pytest.raises(ProcFileError) as info:
            gather_buddyinfo(root, 4096)
            gather_meminfo(root, 4096)
    assert re.search(pattern, str(info.value)), str(info.value)
    return info.value


def _pid(root, pid, **files):
    for name, content in files.items():
        ht.write(root, "%s/%s" % (pid, name), content)


def check_fifo_required(tree):
    root, outside = tree
    for name in ("buddyinfo", "meminfo"):
        ht.place(root, name, ht.FIFO, outside)
        started = time.monotonic()
        error = _fails(root, r"/%s: is a named pipe \(FIFO\), not a regular file; refusing to read it$" % name)
        assert error.path == os.path.join(root, name) and time.monotonic() - started < 5
        ht.write(root, name, open(os.path.join(ht.FIXTURE_TREE, name)).read())


def check_fifo_optional(tree):
    root, outside = tree
    for name in ("zoneinfo", "pagetypeinfo", "vmstat"):
        ht.place(root, name, ht.FIFO, outside)
    ht.place(root, "slabinfo", ht.FIFO, outside)
    buddy, mem, warnings = _gather_all(root)
    for name in ("zoneinfo", "pagetypeinfo", "vmstat"):
        assert buddy["sources"][name] == "unreadable: is a named pipe (FIFO), not a regular file; refusing to read it"
    assert mem["sources"]["slabinfo"].startswith("unreadable:") and "FIFO" in mem["sources"]["slabinfo"]
    assert sum("FIFO" in warning for warning in warnings) == 4
    assert "watermarks" not in buddy["zones"][0]


def check_fifo_sys_vm(tree):
    root, outside = tree
    ht.place(root, "sys/vm/swappiness", ht.FIFO, outside)
    ht.place(root, "sys/kernel/osrelease", ht.FIFO, outside)
    buddy, _mem, warnings = _gather_all(root)
    assert "swappiness" not in buddy["tunables"] and buddy["tunables"]["min_free_kbytes"] == 45056
    assert any(w.endswith("sys/vm/swappiness: is a named pipe (FIFO), not a regular file; refusing to read it") for w in warnings)
    assert buddy["kernel_release"] is None
    with ht.no_hang(10):
        values, tunable_warnings = read_vm_tunables(root, ["swappiness"])
    assert values == {} and len(tunable_warnings) == 1


def check_fifo_pid_statm(tree):
    root, outside = tree
    _pid(root, 100, statm="10 5 1 1 0 1 0\n")
    _pid(root, 101, status=ht.STATUS)
    _pid(root, 102, status=ht.STATUS)
    ht.place(root, "101/statm", ht.FIFO, outside)
    ht.place(root, "102/status", ht.FIFO, outside)
    ht.place(root, "102/statm", ht.FIFO, outside)
    with ht.no_hang(10):
        result = process_rss(root, 4096)
    assert (result.count, result.rss_bytes) == (1, 5 * 4096)
    assert len(result.warnings) == 1 and result.warnings[0].startswith("2 process(es) not counted in the RSS sum: ")
    _buddy, mem, warnings = _gather_all(root)
    assert mem["processes"]["count"] == 1 and result.warnings[0] in warnings


def check_fifo_sysctl_conf(tree, tmp_path):
    root = str(tmp_path / "etcroot")
    ht.write(root, "etc/sysctl.d/10-good.conf", "vm.swappiness = 10\n")
    ht.place(root, "etc/sysctl.d/99-fifo.conf", ht.FIFO, tree[1])
    ht.place(root, "usr/lib/sysctl.d/50-dev.conf", ht.CHAR_DEVICE, tree[1])
    with ht.no_hang(10):
        boot = collect(root)
    assert any(w.startswith("/etc/sysctl.d/99-fifo.conf not read: ") and "not a regular file" in w for w in boot.warnings)
    # A device node is a mask to systemd-sysctl (null_or_empty), as a link to /dev/null is: never opened.
    device = [conf for conf in boot.order["systemd"] if conf.name == "50-dev.conf"][0]
    assert device.masked and device.assignments("systemd") == []
    fifo = [conf for conf in boot.order["systemd"] if conf.name == "99-fifo.conf"][0]
    assert fifo.assignments("systemd") == [] and fifo.error


def check_device_or_socket(tree):
    root, outside = tree
    for kind, words in ((ht.CHAR_DEVICE, "a character device" if os.geteuid() == 0 else "a named pipe"),
                        (ht.SOCKET, "a socket"), (ht.DIRECTORY, "a directory")):
        ht.place(root, "buddyinfo", kind, outside)
        _fails(root, r"/buddyinfo: is %s(?: \(FIFO\))?, not a regular file; refusing to read it$" % words)
        ht.place(root, "vmstat", kind, outside)
        ht.write(root, "buddyinfo", open(os.path.join(ht.FIXTURE_TREE, "buddyinfo")).read())
        buddy, _mem, _warnings = _gather_all(root)
        assert buddy["sources"]["vmstat"].startswith("unreadable: is %s" % words)


def check_link_out_of_root(tree):
    root, outside = tree
    ht.place(root, "meminfo", ht.LINK_OUT, outside)
    _fails(root, r"/meminfo: resolves to .*/outside/secret, outside .*/proc; refusing to follow$")
    ht.place(root, "zoneinfo", ht.LINK_OUT, outside)
    ht.write(root, "meminfo", open(os.path.join(ht.FIXTURE_TREE, "meminfo")).read())
    buddy, _mem, _warnings = _gather_all(root)
    assert "outside" in buddy["sources"]["zoneinfo"] and "refusing to follow" in buddy["sources"]["zoneinfo"]


def check_link_pid_file(tree):
    root, outside = tree
    _pid(root, 200, status=ht.STATUS)
    ht.place(root, "200/statm", ht.LINK_OUT, outside)
    with ht.no_hang(10):
        result = process_rss(root, 4096)
    assert (result.count, result.rss_bytes, result.warnings) == (1, 8192 * 1024, [])


def _replace(root, name, old, new, count=1):
    path = os.path.join(root, name)
    with open(path) as handle:
        text = handle.read()
    assert old in text
    ht.write(root, name, text.replace(old, new, count))


def check_huge_buddyinfo_count(tree):
    root, _outside = tree
    for value, words in ((BIG, "has 5000 digits; the kernel prints at most 20 (64 bits)"),
                         (OUT_OF_RANGE, "is outside 64 bits, more than the kernel can print")):
        ht.write(root, "buddyinfo", open(os.path.join(ht.FIXTURE_TREE, "buddyinfo")).read())
        _replace(root, "buddyinfo", "120345", value)
        error = _fails(root, r"/buddyinfo line 3: free block count '.*%s$" % re.escape(words))
        assert error.line_number == 3 and len(str(error)) < 300


def check_foreign_digits(tree):
    root, _outside = tree
    _replace(root, "buddyinfo", "120345", "12\u0663")
    _fails(root, r"/buddyinfo line 3: free block count '12\u0663' is not a number of ASCII digits$")
    with pytest.raises(ProcFileError, match="line 1: expected 'Name: number"):
        parse_meminfo("MemTotal: \u00b2 kB\nMemFree: 1 kB\n")
    with pytest.raises(NumberError):
        parse_count("\u00b2")
    zones, warnings = parse_zoneinfo("Node 0, zone Normal\n pages free 1\n min 1\n low 2\n high 3\n nr_free_pages \u0663\n")
    assert zones[0].counters == {} and "counter skipped" in warnings[0]


def check_huge_meminfo_value(tree):
    root, _outside = tree
    _replace(root, "meminfo", "MemTotal:        8164548", "MemTotal:        " + BIG)
    error = _fails(root, r"/meminfo line 1: MemTotal '9+'\.\.\. \(5000 characters\) has 5000 digits")
    assert error.line_number == 1
    text = "MemTotal: 100 kB\nMemFree: 50 kB\nDirty: %s kB\n" % OUT_OF_RANGE
    with pytest.raises(ProcFileError, match=r"^/m line 3: Dirty '18446744073709551616' is outside 64 bits"):
        parse_meminfo(text, "/m")


def check_huge_zoneinfo_counter(tree):
    root, _outside = tree
    _replace(root, "zoneinfo", "nr_free_pages 120648", "nr_free_pages " + BIG)
    _replace(root, "zoneinfo", "nr_written   655120", "nr_written   -" + BIG)
    buddy, _mem, warnings = _gather_all(root)
    assert buddy["sources"]["zoneinfo"] == "ok"
    assert [z["zone"] for z in buddy["zones"] if "watermarks" in z] == ["DMA", "DMA32", "Normal"]
    skipped = [w for w in warnings if w.endswith("counter skipped")]
    assert len(skipped) == 2 and "zoneinfo line 11: nr_written '-9" in skipped[0]


def check_huge_zoneinfo_watermark(tree):
    root, _outside = tree
    _replace(root, "zoneinfo", "min      4226", "min      " + BIG)
    _replace(root, "zoneinfo", "protection: (0, 2991, 7957, 7957, 7957)", "protection: (0, %s)" % OUT_OF_RANGE)
    buddy, _mem, warnings = _gather_all(root)
    assert [z["zone"] for z in buddy["zones"] if "watermarks" in z] == ["Normal"]
    assert sum(w.endswith("is left out") for w in warnings) == 2
    text = "Node 0, zone Normal\n protection: (%s)\n" % ", ".join(["0"] * 10000)
    zones, warnings = parse_zoneinfo("Node 0, zone DMA\n pages free 1\n min 1\n low 2\n high 3\n" + text)
    assert [z.zone for z in zones] == ["DMA"] and "more than 8 entries" in warnings[0]


def check_huge_pagetypeinfo_count(tree):
    root, _outside = tree
    _replace(root, "pagetypeinfo", "Movable    130     39", "Movable    130     " + BIG)
    buddy, _mem, warnings = _gather_all(root)
    assert buddy["sources"]["pagetypeinfo"] == "ok"
    dma32 = [z for z in buddy["zones"] if z["zone"] == "DMA32"][0]
    assert "Movable" not in dma32["migrate_types"] and "Unmovable" in dma32["migrate_types"]
    assert any(w.endswith("line skipped") and "pagetypeinfo line 11: free block count" in w for w in warnings)


def check_huge_vmstat_counter(tree):
    root, _outside = tree
    _replace(root, "vmstat", "nr_free_pages 262118", "nr_free_pages " + BIG)
    buddy, _mem, warnings = _gather_all(root)
    assert buddy["sources"]["vmstat"] == "ok" and "nr_free_pages" not in buddy["vmstat"]
    assert any(w.startswith(os.path.join(root, "vmstat") + " line 1: nr_free_pages") and w.endswith("counter skipped")
               for w in warnings)


def check_huge_slabinfo_field(tree):
    text = ("slabinfo - version: 2.1\n# name <active_objs> ...\n"
            "dentry  %s 100 192 21 1 : tunables 0 0 0 : slabdata 5 5 0\n"
            "inode_cache  100 100 600 13 2 : tunables 0 0 0 : slabdata 8 8 0\n" % BIG)
    caches, warnings = parse_slabinfo(text, 4096, "/p/slabinfo")
    assert [cache.name for cache in caches] == ["inode_cache"]
    assert warnings[0].startswith("/p/slabinfo line 3: active_objs '9") and warnings[0].endswith("cache 'dentry' skipped")
    root, _outside = tree
    ht.write(root, "slabinfo", text)
    _buddy, mem, _warnings = _gather_all(root)
    assert mem["sources"]["slabinfo"] == "ok" and mem["slab"]["caches_bytes"] == 8 * 2 * 4096


def check_huge_statm(tree):
    root, _outside = tree
    _pid(root, 300, statm="1 %s 1 1 0 1 0\n" % BIG)
    _pid(root, 301, statm="1 %s 1 1 0 1 0\n" % OUT_OF_RANGE)
    _pid(root, 302, status="Name: x\nVmRSS: %s kB\n" % BIG)
    _pid(root, 303, statm="10 7 1 1 0 1 0\n")
    with ht.no_hang(10):
        result = process_rss(root, 4096)
    assert (result.count, result.rss_bytes) == (1, 7 * 4096)
    assert result.warnings[0].startswith("3 process(es) not counted in the RSS sum: ")
    assert len(result.warnings[0]) < 600


def check_huge_sys_vm_value(tree):
    root, _outside = tree
    ht.write(root, "sys/vm/swappiness", OUT_OF_RANGE + "\n")
    ht.write(root, "sys/vm/min_free_kbytes", "4" * 4000 + "\n")
    buddy, _mem, _warnings = _gather_all(root)
    assert buddy["tunables"]["swappiness"] == OUT_OF_RANGE
    assert buddy["tunables"]["min_free_kbytes"] == "4" * 4000
    assert parse_tunable("-9223372036854775808") == -(1 << 63)


def check_buddyinfo_10000_orders(tree):
    line = "Node 0, zone   Normal " + " ".join(["5"] * 10000) + "\n"
    started = time.monotonic()
    with pytest.raises(ProcFileError, match=r"^/b line 1: more than %d order columns" % MAX_ORDERS):
        parse_buddyinfo(line, "/b")
    assert time.monotonic() - started < 1
    wrapped = "Node 0, zone   Normal " + " ".join(["5"] * 20) + "\n" + "   ".join(["5"] * 20) + "\n"
    with pytest.raises(ProcFileError, match=r"^/b line 2: more than %d order columns" % MAX_ORDERS):
        parse_buddyinfo(wrapped, "/b")
    # The largest real kernel (ia64 SN2, 18 orders) still parses.
    zones, _warnings = parse_buddyinfo("Node 0, zone   Normal " + " ".join(["1"] * 18) + "\n")
    assert len(zones[0].free_blocks) == 18
    root, _outside = tree
    ht.write(root, "buddyinfo", line)
    _fails(root, "more than %d order columns" % MAX_ORDERS)


def check_pagetypeinfo_10000_orders(tree):
    root, _outside = tree
    header = "Free pages count per migrate type at order " + " ".join(str(i) for i in range(10000))
    old = [line for line in read_text(root, "pagetypeinfo").splitlines() if line.startswith("Free pages count")][0]
    _replace(root, "pagetypeinfo", old, header)
    buddy, _mem, warnings = _gather_all(root)
    assert buddy["sources"]["pagetypeinfo"].startswith("malformed: ")
    assert "more than %d orders in the header" % MAX_ORDERS in buddy["sources"]["pagetypeinfo"]
    types = "Number of blocks type " + " ".join("T%d" % i for i in range(10000)) + "\n"
    with pytest.raises(ProcFileError, match="more than 16 migrate types"):
        parse_pagetypeinfo("Free pages count per migrate type at order 0 1\nNode 0, zone DMA, type Movable 1 1\n" + types)


def check_nul_and_bad_utf8(tree):
    root, _outside = tree
    with open(os.path.join(root, "buddyinfo"), "ab") as handle:
        handle.write(b"\x00\xff\xfe garbage \x00\n")
    with open(os.path.join(root, "vmstat"), "ab") as handle:
        handle.write(b"compact_stall \xff1\n\x00\x00\n")
    buddy, _mem, warnings = _gather_all(root)
    assert len(buddy["zones"]) == 3
    assert any("buddyinfo line 4: not kernel output, skipped: '\\x00\ufffd\ufffd garbage" in w for w in warnings)
    assert any("vmstat" in w and "not a 'name value' counter" in w for w in warnings)
    assert read_text(root, "buddyinfo").count("\ufffd") == 2
    with open(os.path.join(root, "meminfo"), "ab") as handle:
        handle.write(b"Bad\xff: 1 kB\n")
    _fails(root, "/meminfo line \\d+: expected 'Name: number \\[kB\\]', got 'Bad\ufffd: 1 kB'")


FACTS = {"page_size": 4096, "zones": [{
    "node": 0, "zone": "Normal", "free_blocks": [1] * 11, "free_bytes": 1 << 30, "free_bytes_at_or_above_order": [1 << 30] * 11,
    "unusable_index": [0.5] * 11, "fragmentation_index": [-1.0] * 11, "largest_free_order": 10}]}


def check_findings_log_counts_list(tree):
    message = ("findings: facts are not in the shape memfrag.linux modules return: "
               "log_scan.counts must be a dict of event kind to count, got list")
    with pytest.raises(AnsibleFilterError) as info:
        findings(FACTS, None, {"counts": ["oom_kill", 3]})
    assert str(info.value) == message
    # memory_facts' judge calls host_findings and fails with the same text.
    with pytest.raises(ValueError, match="^log_scan.counts must be a dict of event kind to count, got list$"):
        host_findings(FACTS, None, {"counts": [1, 2], "first_seen": {}, "last_seen": {}})
    assert findings(FACTS, None, {"counts": {"oom_kill": 3}})[0]["code"] == "oom_kill_logged"


def _zone(**changes):
    zone = dict(FACTS["zones"][0])
    zone.update(changes)
    return dict(FACTS, zones=[zone])


def check_findings_wrong_shapes(tree):
    for facts, thresholds, words in (
            (dict(FACTS, zones="Normal"), None, "memfrag_buddyinfo.zones must be a list, got str"),
            (dict(FACTS, zones=["Normal"]), None, r"memfrag_buddyinfo.zones\[0\] must be a dict, got str"),
            (_zone(free_bytes=True), None, "free_bytes of zone Normal must be a whole number, got True"),
            (_zone(free_bytes=BIG), None, r"free_bytes of zone Normal must be a whole number, got '9{40}.*\(5002 characters\)"),
            (_zone(free_bytes=float("inf")), None, "free_bytes of zone Normal must be a whole number, got inf"),
            (_zone(largest_free_order=10 ** 9), None, "largest_free_order of zone Normal must be at most 64, got 1000000000"),
            (_zone(unusable_index=["x"] * 11), None, "unusable_index of zone Normal must be a number, got 'x'"),
            (_zone(unusable_index=[float("nan")] * 11), None, "unusable_index of zone Normal must be between -1 and 1"),
            (FACTS, {"order": 10 ** 100}, "threshold order must be an integer, got a 101-character value"),
            (FACTS, {"order": 10 ** 30}, "threshold order must be at most 64"),
            (FACTS, {"zones": "Normal"}, "threshold zones must be a list, got str"),
            (FACTS, {"unusable_warning": "x"}, "threshold unusable_warning must be a number, got 'x'"),
            (FACTS, {"unusable_warning": "nan"}, "threshold unusable_warning is a share of memory between 0 and 1, got nan")):
        with pytest.raises(AnsibleFilterError, match="^findings: .*" + words):
            findings(facts, None, None, thresholds)
    with pytest.raises(AnsibleFilterError, match="memfrag_meminfo.accounting must be a dict, got list"):
        findings(FACTS, {"accounting": [1]})


def check_verdict_not_findings(tree):
    with pytest.raises(AnsibleFilterError, match="^verdict: expected a list of findings, got dict$"):
        host_verdict({"severity": "critical"})
    with pytest.raises(AnsibleFilterError, match=r"findings\[0\] has severity 'urgent'; expected one of critical, info, ok, warning"):
        host_verdict([{"severity": "urgent", "message": "x"}])
    with pytest.raises(AnsibleFilterError, match=r"findings\[1\] must be a dict, got str"):
        host_verdict([{"severity": "info", "message": "x"}, "warning"])
    with pytest.raises(AnsibleFilterError, match=r"findings\[0\] has no message text"):
        host_verdict([{"severity": "info", "message": ["x"]}])
    assert host_verdict([{"severity": "warning", "message": "x"}])["severity"] == "warning"


def check_query_deep_nesting(tree):
    for expression in ("(" * 5000 + "a" + ")" * 5000, "!" * 5000 + "a", "`" + "[" * 5000 + "`"):
        with pytest.raises(AnsibleFilterError, match=r"^query: JMESPath expression .*\(\d+ characters\)' is nested too deeply"):
            query({"a": 1}, expression)


XFS_EVENT = "Mar  5 22:42:57 node06 kernel: XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250)\n"


def check_log_decompression_bomb(tree, tmp_path):
    # 16 MiB of zeros is 138 bytes of bzip2; 64 of them after a real event: 9 KB on disk, 1 GiB expanded.
    bomb = bz2.compress(XFS_EVENT.encode("ascii")) + bz2.compress(b"\0" * (16 << 20), 1) * 64
    path = ht.write(str(tmp_path / "log"), "messages.1.bz2", bomb)
    warnings = []
    with ht.no_hang(60):
        result, _state = scan(["files"], [path], None, empty_state(), "5.14.0", 100, False, warnings.append)
    assert result["counts"]["xfs_alloc_deadlock"] == 1
    limit = max(MIN_EXPANSION_BYTES, len(bomb) * MAX_EXPANSION)
    assert limit < 1 << 30
    assert "%s: expands to more than %d bytes from %d on disk, more than %d times: a decompression bomb, not a log; " \
        "read no further; scanned the first %d bytes" % (path, limit, len(bomb), MAX_EXPANSION, limit) in warnings
    # A real compressed log is read whole.
    plain = ht.write(str(tmp_path / "log"), "messages.2.bz2", bz2.compress(XFS_EVENT.encode("ascii") * 50000))
    warnings = []
    result, _state = scan(["files"], [plain], None, empty_state(), "5.14.0", 100, False, warnings.append)
    assert result["counts"]["xfs_alloc_deadlock"] == 50000 and warnings == []


def check_journal_nested_json(tree, tmp_path):
    output = ht.write(str(tmp_path / "bin"), "journal.json", "[" * 100000 + "\n" + json.dumps(
        {"MESSAGE": XFS_EVENT.split("kernel: ")[1].strip(), "__CURSOR": "s=1", "__REALTIME_TIMESTAMP": "1709678577000000"})
        + "\n")
    journalctl = ht.write(str(tmp_path / "bin"), "journalctl", "#!/bin/sh\nexec cat %s\n" % output)
    os.chmod(journalctl, stat.S_IRWXU)
    warnings = []
    with ht.no_hang(30):
        items = list(read_journal(journalctl, None, None, warnings.append))
    assert warnings == ["journalctl printed a line that is not JSON; skipped"]
    assert [item.message for item in items[:-1]] == [XFS_EVENT.split("kernel: ")[1].strip()] and items[-1] == 2


def check_max_events_huge(tree, tmp_path):
    options = {"sources": ["files"], "paths": [], "since": None, "kernel_release": None, "include_userspace_kmsg": False}
    for value, shown in ((10 ** 24, "1000000000000000000000000"), (-1, "-1"), (10 ** 400, "a 401-digit number")):
        with pytest.raises(ValueError) as info:
            run_scan(dict(options, max_events=value), {}, lambda _w: None, None, time.time())
        assert str(info.value) == "max_events must be between 0 and 1000000, got %s" % shown
    result, _state = run_scan(dict(options, max_events=1000000), {}, lambda _w: None, None, time.time())
    assert result["events"] == []


def check_reclaim_orders_out_of_range(tree, tmp_path):
    for orders, shown in (([-1], "-1"), ([4, 10 ** 30], "a 31-digit number"), ([MAX_ORDERS], str(MAX_ORDERS))):
        assert check_options({"cooldown": 900, "orders": orders}) == \
            "orders must be buddy orders from 0 to %d, got %s" % (MAX_ORDERS - 1, shown)
    assert check_options({"cooldown": 900, "orders": [0, 4, 9, MAX_ORDERS - 1]}) is None


def check_page_size_too_large(tree, tmp_path):
    assert page_size_problem(1 << 70) == ("page_size must be at most 262144 (256 KiB, the largest page any Linux "
                                          "builds with), got 1180591620717411303424")
    assert page_size_problem(10 ** 400) == "page_size must be a power of two of at least 512, got a 401-digit number"
    assert check_options({"cooldown": 900, "page_size": 1 << 19}).startswith("page_size must be at most 262144")
    assert [page_size_problem(size) for size in (4096, 16384, 65536, 262144)] == [None] * 4


def check_extsize_not_a_size(tree, tmp_path):
    with pytest.raises(ValueError, match="^an extent size hint is bytes or a number with k, m or g"):
        parse_size("\u0661\u0666m")
    with pytest.raises(ValueError, match=r"^an extent size hint is at most 1g \(XFS's limit\), got a 5000-digit number$"):
        parse_size("9" * 5000 + "m")
    assert parse_size("16m") == 16 << 20


def check_sysctl_write_fifo(tree, tmp_path):
    root = str(tmp_path / "proc")
    ht.place(root, "sys/vm/swappiness", ht.FIFO, tree[1])
    with ht.no_hang(10):
        problem = write_sysctl(root, "vm/swappiness", "10")
    assert problem == "%s/sys/vm/swappiness: a FIFO, socket or device, not a regular file; not written" % root
    ht.place(root, "sys/vm/swappiness", ht.DIRECTORY, tree[1])
    assert write_sysctl(root, "vm/swappiness", "10").endswith("/sys/vm/swappiness: Is a directory")
    ht.write(root, "sys/vm/swappiness", "60\n")
    assert write_sysctl(root, "vm/swappiness", "10") is None and read_text(root, "sys/vm/swappiness") == "10\n"


def check_sysctl_conf_huge_value(tree, tmp_path):
    root = str(tmp_path / "etcroot")
    for value in ("9" * 5000, "0x" + "f" * 5000, "-" + "9" * 5000):
        ht.write(root, "usr/lib/sysctl.d/99-big.conf", "vm.swappiness = %s\n" % value)
        boot = collect(root, {"/etc/sysctl.d/60-memfrag.conf": "vm.swappiness = 10\n"})
        conflicting, _same = overrides(analyse(boot, ["vm.swappiness"]), "/etc/sysctl.d/60-memfrag.conf",
                                       {"vm.swappiness": "10"})
        assert len(conflicting) == 2 and all(c.endswith("(wanted 10)") for c in conflicting)
    # What the kernel's proc_get_long() still takes (21 characters) compares as a number.
    assert values_equal("0x" + "0" * 17 + "a", "10") and not values_equal("0" * 20 + "10", "10")


CHECKS = {
    "fifo-required": check_fifo_required,
    "fifo-optional": check_fifo_optional,
    "fifo-sys-vm": check_fifo_sys_vm,
    "fifo-pid-statm": check_fifo_pid_statm,
    "fifo-sysctl-conf": check_fifo_sysctl_conf,
    "device-or-socket": check_device_or_socket,
    "link-out-of-root": check_link_out_of_root,
    "link-pid-file": check_link_pid_file,
    "huge-buddyinfo-count": check_huge_buddyinfo_count,
    "foreign-digits": check_foreign_digits,
    "huge-meminfo-value": check_huge_meminfo_value,
    "huge-zoneinfo-counter": check_huge_zoneinfo_counter,
    "huge-zoneinfo-watermark": check_huge_zoneinfo_watermark,
    "huge-pagetypeinfo-count": check_huge_pagetypeinfo_count,
    "huge-vmstat-counter": check_huge_vmstat_counter,
    "huge-slabinfo-field": check_huge_slabinfo_field,
    "huge-statm": check_huge_statm,
    "huge-sys-vm-value": check_huge_sys_vm_value,
    "buddyinfo-10000-orders": check_buddyinfo_10000_orders,
    "pagetypeinfo-10000-orders": check_pagetypeinfo_10000_orders,
    "nul-and-bad-utf8": check_nul_and_bad_utf8,
    "findings-log-counts-list": check_findings_log_counts_list,
    "findings-wrong-shapes": check_findings_wrong_shapes,
    "verdict-not-findings": check_verdict_not_findings,
    "query-deep-nesting": check_query_deep_nesting,
    "log-decompression-bomb": check_log_decompression_bomb,
    "journal-nested-json": check_journal_nested_json,
    "max-events-huge": check_max_events_huge,
    "reclaim-orders-out-of-range": check_reclaim_orders_out_of_range,
    "page-size-too-large": check_page_size_too_large,
    "extsize-not-a-size": check_extsize_not_a_size,
    "sysctl-write-fifo": check_sysctl_write_fifo,
    "sysctl-conf-huge-value": check_sysctl_conf_huge_value,
}


def test_every_case_has_a_check():
    assert sorted(CHECKS) == sorted(CASE_IDS) and len(set(CASE_IDS)) == len(CASE_IDS)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_case(case_id, tree, tmp_path):
    outside_before = ht.snapshot(str(tmp_path / "outside"))
    check = CHECKS[case_id]
    if check.__code__.co_argcount == 2:
        check(tree, tmp_path)
    else:
        check(tree)
    # Reading never writes: nothing appeared or changed outside the tree (the tree is changed only by the check itself).
    assert ht.snapshot(str(tmp_path / "outside")) == outside_before


def doc_rows():
    """(id, outcome) of every row of the table in docs/hostile-input.md."""
    rows = []
    with open(DOC) as handle:
        for line in handle:
            match = re.match(r"^\|\s*`([a-z0-9-]+)`\s*\|.*\|\s*([a-z ]+?)\s*\|[^|]*\|\s*$", line)
            if match:
                rows.append((match.group(1), match.group(2)))
    return rows


def test_doc_lists_exactly_these_cases():
    assert doc_rows() == [(case[0], case[2]) for case in CASES], "regenerate the table: python %s" % __file__


def test_other_areas_rows_name_existing_tests():
    """The doc's second table names tests of the other areas; each must still exist under that name."""
    with open(DOC) as handle:
        named = re.findall(r"\| `(tests/[\w/.]+\.py)::(test_\w+)` \|", handle.read())
    assert len(named) >= 10
    for path, name in named:
        with open(os.path.join(REPO_ROOT, path)) as handle:
            assert re.search(r"^def %s\(" % name, handle.read(), re.M), "%s::%s is gone; update docs/hostile-input.md" % (path, name)


def render_table():
    lines = ["| id | input | outcome | what is reported |", "| --- | --- | --- | --- |"]
    for case_id, given, outcome, reported in CASES:
        lines.append("| `%s` | %s | %s | %s |" % (case_id, given, outcome, reported))
    return "\n".join(lines)


def test_linear_index_lists_match_the_per_order_definition():
    for blocks in ([0] * 11, [5, 0, 3, 0, 0, 1, 0, 0, 0, 0, 0], [120345, 2210, 571, 302, 143, 14, 7, 4, 3, 2, 0], [1] * MAX_ORDERS):
        assert frag.unusable_indexes(blocks) == [frag.unusable_free_index(blocks, o) / 1000.0 for o in range(len(blocks))]
        assert frag.fragmentation_indexes(blocks) == [frag.fragmentation_index(blocks, o) / 1000.0 for o in range(len(blocks))]
        assert frag.suitable_blocks_by_order(blocks) == [frag.contig_page_info(blocks, o)[2] for o in range(len(blocks))]


def test_numbers_bounds():
    assert parse_count("18446744073709551615") == (1 << 64) - 1
    assert parse_signed("-9223372036854775808") == -(1 << 63)
    for bad in ("18446744073709551616", "-9223372036854775809", "", "-", "+1", " 1", "1 ", "0x10", BIG, "\u0663"):
        with pytest.raises(NumberError):
            parse_signed(bad) if bad.startswith("-") else parse_count(bad)


if __name__ == "__main__":  # pragma: no cover - prints the doc's table from CASES
    print(render_table())
