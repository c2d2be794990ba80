# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property-based fuzzing of every /proc parser, the sysctl.d parser and the facts gatherers (issue 10).

Properties, for generated hostile input (mutated real kernel files, token soup with 5,000-digit and
out-of-range numbers, digits of other scripts, NUL bytes, invalid UTF-8, 10,000 columns; trees whose
files are FIFOs, devices, sockets, directories or links out of the root):

* no exception but the documented clean failure (ProcFileError; NumberError from the statm/status
  helpers, which process_rss turns into a warning);
* what is returned is what a kernel can print (counts within 64 bits, at most MAX_ORDERS orders);
* nothing is written anywhere, in the tree or outside it, and nothing blocks (an alarm interrupts);
* cost grows linearly: the same input repeated 8 times costs less than 24 times as much CPU
  (quadratic would be 64), compared within the same run, never against an absolute time.

The suite runs a fixed seed (derandomize) and a small budget; tests/benchmarks/fuzz_parsers.py runs the
same properties with a larger one (MEMFRAG_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from ansible_collections.memfrag.linux.plugins.module_utils._facts.buddyinfo import gather as gather_buddyinfo  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._facts.meminfo import gather as gather_meminfo  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.buddyinfo import MAX_ORDERS, parse_buddyinfo  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.meminfo import parse_meminfo  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.numbers import MAX_UNSIGNED, MIN_SIGNED, NumberError  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.pagetypeinfo import parse_pagetypeinfo  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.process_memory import process_rss, rss_from_statm, rss_from_status  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.slabinfo import parse_slabinfo  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.vm_tunables import parse_tunable, read_vm_tunables  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.vmstat import parse_vmstat  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.zoneinfo import parse_zoneinfo  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.dropin import parse_sysctl_conf  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.precedence import analyse, collect  # noqa: E402
from ansible_collections.memfrag.linux.tests.helpers import hostile_tree as ht  # noqa: E402

EXAMPLES = int(os.environ.get("MEMFRAG_FUZZ_EXAMPLES", "60"))
# The suite replays the same inputs every run; the benchmark can ask for new ones (MEMFRAG_FUZZ_RANDOM=1).
FIXED_SEED = not os.environ.get("MEMFRAG_FUZZ_RANDOM")
# Fixed seed, no example database written into the checkout, no per-example deadline (the linearity
# property measures cost itself, as a ratio).
FUZZ = settings(max_examples=EXAMPLES, derandomize=FIXED_SEED, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
FEW = settings(FUZZ, max_examples=max(10, EXAMPLES // 4))


def _fixture(name):
    with open(os.path.join(ht.FIXTURE_TREE, name), encoding="utf-8") as handle:
        return handle.read()


SLABINFO = ("slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
            " : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n"
            "dentry            120318 125916    192   21    1 : tunables    0    0    0 : slabdata   5996   5996      0\n"
            "nvidia_p2p_page_cache      0      0    368   22    2 : tunables    0    0    0 : slabdata      0      0      0\n")
SYSCTL_CONF = "# comment\n; other\nvm.swappiness = 10\n-vm.dirty_ratio=5\n-net.ipv4.conf.*.rp_filter\nkernel/yama/ptrace_scope = 1\n"
STATM = "4405 1981 1190 184 0 375 0\n"
STATUS = "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\nVmRSS:\t    7924 kB\nThreads:\t1\n"

# Real text per parser: the seeds that mutations start from.
SEEDS = {
    "buddyinfo": _fixture("buddyinfo"),
    "zoneinfo": _fixture("zoneinfo"),
    "pagetypeinfo": _fixture("pagetypeinfo"),
    "meminfo": _fixture("meminfo"),
    "vmstat": _fixture("vmstat"),
    "slabinfo": SLABINFO,
    "sysctl": SYSCTL_CONF,
    "statm": STATM,
    "status": STATUS,
    "tunable": "128\t128\t32\n",
}

BIG = "9" * 5000
HOSTILE_NUMBERS = (BIG, "-" + BIG, str(MAX_UNSIGNED + 1), str(MIN_SIGNED - 1), "9" * 21, "0" * 30, "\u0663\u0661",
                   "\u00b2", "1\u00b2", "12\u0000", "-", ">", ">" + BIG, "1e400", "0x10", "", "\ufffd")
TOKENS = ("Node", "Node 0,", "zone", " zone ", "Normal", "DMA32", ",", "type", "Movable", "pages free", "min", "low", "high",
          "managed", "protection:", "(", ")", ":", "kB", "MemTotal:", "MemFree:", "Dirty:", "nr_free_pages", "per-node stats",
          "pagesets", "cpu:", "count:", "Page block order:", "Pages per block:", "Free pages count per migrate type at order",
          "Number of blocks type", "Number of mixed blocks", "slabinfo - version: 2.1", "# name", ": tunables", ": slabdata",
          "VmRSS:", "Name:", "=", "-", "#", ";", "*", "vm.swappiness", "kernel/", "0", "1", "42", " ", "   ", "\t", "\n",
          "\r", "\x0b", "\x00", "\u2028", "\ufffd") + HOSTILE_NUMBERS


@st.composite
def mutated(draw, seed_name=None):
    """A real kernel file of ``seed_name`` (or any) with a few hostile edits."""
    name = seed_name or draw(st.sampled_from(sorted(SEEDS)))
    lines = SEEDS[name].splitlines()
    for _step in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, max(0, len(lines) - 1)))
        line = lines[index] if lines else ""
        edit = draw(st.sampled_from(("number", "columns", "insert", "truncate", "duplicate", "bytes", "join")))
        if edit == "number":
            fields = line.split(" ")
            digits = [i for i, field in enumerate(fields) if field.strip().lstrip("-").isdigit()]
            if digits:
                fields[draw(st.sampled_from(digits))] = draw(st.sampled_from(HOSTILE_NUMBERS))
            line = " ".join(fields)
        elif edit == "columns":
            line += " " + " ".join([draw(st.sampled_from(("0", "5", "1" * 20)))] * draw(st.sampled_from((30, 10000))))
        elif edit == "insert":
            lines.insert(index, "".join(draw(st.lists(st.sampled_from(TOKENS), max_size=12))))
            continue
        elif edit == "truncate":
            cut = draw(st.integers(0, len(line)))
            lines = lines[:index] + [line[:cut]]
            continue
        elif edit == "duplicate":
            lines.insert(index, line)
            continue
        elif edit == "bytes":
            raw = line.encode("utf-8") + draw(st.binary(max_size=16))
            line = raw.decode("utf-8", "replace")
        else:
            line = line + draw(st.sampled_from(TOKENS)) + (lines[index + 1] if index + 1 < len(lines) else "")
        if lines:
            lines[index] = line
        else:
            lines.append(line)
    return "\n".join(lines) + draw(st.sampled_from(("\n", "", "\n\n")))


def soup():
    """Token soup: kernel words, separators and hostile numbers in any order."""
    return st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)


def hostile_text(seed_name=None):
    return st.one_of(mutated(seed_name), soup(), st.text(max_size=200))


def _within_64_bits(values):
    for value in values:
        assert MIN_SIGNED <= value <= MAX_UNSIGNED, value


# --- every parser: no exception but ProcFileError, and only what a kernel can print -----------------------

@FUZZ
@given(hostile_text("buddyinfo"))
def test_buddyinfo(text):
    try:
        zones, warnings = parse_buddyinfo(text, "/p/buddyinfo")
    except ProcFileError as exc:
        assert str(exc).startswith("/p/buddyinfo") and len(str(exc)) < 600
        return
    for zone in zones:
        assert 0 < len(zone.free_blocks) <= MAX_ORDERS
        assert all(0 <= count <= MAX_UNSIGNED for count in zone.free_blocks)
    assert all(len(warning) < 600 for warning in warnings)


@FUZZ
@given(hostile_text("zoneinfo"))
def test_zoneinfo(text):
    try:
        zones, warnings = parse_zoneinfo(text, "/p/zoneinfo")
    except ProcFileError as exc:
        assert str(exc).startswith("/p/zoneinfo")
        return
    for zone in zones:
        _within_64_bits(list(zone.fields.values()) + list(zone.counters.values()) + list(zone.node_stats.values())
                        + list(zone.protection or []))
        assert len(zone.protection or []) <= 8
    assert all(len(warning) < 600 for warning in warnings)


@FUZZ
@given(hostile_text("pagetypeinfo"))
def test_pagetypeinfo(text):
    try:
        info = parse_pagetypeinfo(text, "/p/pagetypeinfo")
    except ProcFileError as exc:
        assert str(exc).startswith("/p/pagetypeinfo")
        return
    assert info.orders <= MAX_ORDERS
    for zone in info.zones.values():
        for counts in zone.free_blocks.values():
            assert len(counts) == info.orders
            _within_64_bits(counts)
        _within_64_bits(zone.pageblocks.values())


@FUZZ
@given(hostile_text("meminfo"))
def test_meminfo(text):
    try:
        fields, _warnings = parse_meminfo(text, "/p/meminfo")
    except ProcFileError as exc:
        assert str(exc).startswith("/p/meminfo")
        return
    assert all(0 <= value <= MAX_UNSIGNED * 1024 for value in fields.values())


@FUZZ
@given(hostile_text("slabinfo"), st.sampled_from((4096, 65536)))
def test_slabinfo(text, page_size):
    try:
        caches, _warnings = parse_slabinfo(text, page_size, "/p/slabinfo")
    except ProcFileError as exc:
        assert str(exc).startswith("/p/slabinfo")
        return
    for cache in caches:
        _within_64_bits((cache.objects, cache.active_objects, cache.slabs, cache.pages_per_slab))


@FUZZ
@given(hostile_text("vmstat"))
def test_vmstat(text):
    try:
        counters, _warnings = parse_vmstat(text, "/p/vmstat")
    except ProcFileError as exc:
        assert str(exc).startswith("/p/vmstat")
        return
    _within_64_bits(counters.values())


@FUZZ
@given(hostile_text("tunable"))
def test_vm_tunable_value(text):
    value = parse_tunable(text)
    assert isinstance(value, str) or MIN_SIGNED <= value <= MAX_UNSIGNED


@FUZZ
@given(st.one_of(hostile_text("statm"), hostile_text("status")).map(lambda text: text.encode("utf-8", "surrogateescape")))
def test_statm_and_status(data):
    for parse in (lambda: rss_from_statm(data, 4096), lambda: rss_from_status(data)):
        try:
            rss = parse()
        except NumberError:
            continue
        assert rss is None or 0 <= rss <= MAX_UNSIGNED * 65536


@FUZZ
@given(hostile_text("sysctl"))
def test_sysctl_conf(text):
    assignments, invalid = parse_sysctl_conf(text)
    lines = len(text.splitlines())
    assert all(1 <= a.line_number <= lines for a in assignments) and all(1 <= n <= lines for n in invalid)


# --- cost grows linearly with the input -------------------------------------------------------------------

def _statm_and_status(text):
    return rss_from_statm(text.encode(), 4096), rss_from_status(text.encode())


def _slabinfo(text):
    return parse_slabinfo(text, 4096)


PARSERS = {
    "buddyinfo": parse_buddyinfo,
    "zoneinfo": parse_zoneinfo,
    "pagetypeinfo": parse_pagetypeinfo,
    "meminfo": parse_meminfo,
    "slabinfo": _slabinfo,
    "vmstat": parse_vmstat,
    "tunable": parse_tunable,
    "statm": _statm_and_status,
    "sysctl": parse_sysctl_conf,
}


def cpu_cost(parse, text, repeat=3):
    """Least CPU seconds of ``repeat`` parses (CPU time: other load on the machine does not count)."""
    best = None
    for _unused in range(repeat):
        started = time.process_time()
        try:
            parse(text)
        except (ProcFileError, NumberError):
            pass
        spent = time.process_time() - started
        best = spent if best is None else min(best, spent)
    return best


def growth(parse, prefix, unit, suffix, base_bytes=4000, factor=8):
    """CPU cost of ``prefix + unit * (factor * k) + suffix`` over that of ``k`` units (k: about base_bytes of units)."""
    k = max(1, base_bytes // max(1, len(unit)))
    small = cpu_cost(parse, prefix + unit * k + suffix)
    large = cpu_cost(parse, prefix + unit * (k * factor) + suffix)
    # 0.5 ms of slack: below that the clock and the interpreter's own noise dominate.
    return large / max(small, 0.0005)


# Units that made regexes backtrack or loops go quadratic in parsers of this shape.
UNITS = (" ", "0 ", "\t", "9", "a ", "Node 0, zone Normal ", ", ", "(", "0,", ":", "x:", "-", ">", "Node", "\n", " \n", "1\n",
         "Node 0, zone DMA 1 2 3\n", "a 1 1 1 1 1 : tunables 0 0 0 : slabdata 1 1 1\n")


@FEW
@given(st.sampled_from(sorted(PARSERS)), st.sampled_from(TOKENS + ("",)), st.sampled_from(UNITS),
       st.sampled_from(("", "x", "\n", ")", "-", ":", " kB", BIG[:30])))
def test_cost_is_linear(name, prefix, unit, suffix):
    ratio = growth(PARSERS[name], prefix, unit, suffix)
    if ratio >= 24:  # measure once more before calling it quadratic: a busy machine can stall one run
        ratio = growth(PARSERS[name], prefix, unit, suffix)
    assert ratio < 24, "%s: 8 times the input cost %.1f times as much (linear: ~8, quadratic: ~64)" % (name, ratio)


@pytest.mark.parametrize("name, prefix, unit, suffix", [
    ("pagetypeinfo", "Free pages count per migrate type at order", " ", "x"),
    ("pagetypeinfo", "Node 0, zone Normal", " ", "x"),
    ("buddyinfo", "Node 0, zone Normal", " ", "x"),
    ("buddyinfo", "Node", " ", "x"),  # was cubic: "Node\b\s*\S*\s*,?\s*zone" splits one run of blanks three ways
    ("buddyinfo", "Node 0, zone Normal 1\n", "1\n", "x"),
    ("meminfo", "MemTotal: 1", " ", "x y"),
    ("zoneinfo", "Node 0, zone Normal\n a", " a", ""),
    ("slabinfo", "slabinfo - version: 2.1\na", " 1", ""),
    ("vmstat", "a", " ", "1 x"),
])
def test_cost_is_linear_on_known_backtracking_shapes(name, prefix, unit, suffix):
    ratio = growth(PARSERS[name], prefix, unit, suffix, base_bytes=8000)
    assert ratio < 24, "%s: 8 times the input cost %.1f times as much" % (name, ratio)


# --- whole trees: gather over FIFOs, devices, links and hostile text; nothing written, nothing blocks -------

TREE_FILES = ("buddyinfo", "meminfo", "zoneinfo", "pagetypeinfo", "vmstat", "slabinfo", "sys/vm/swappiness",
              "sys/vm/min_free_kbytes", "sys/kernel/osrelease", "1/statm", "1/status", "2/statm")
NODE = st.one_of(st.sampled_from(("keep", "absent") + ht.KINDS), hostile_text().map(lambda text: ("text", text)))


@FEW
@given(st.fixed_dictionaries(dict((name, NODE) for name in TREE_FILES)), st.sampled_from((None, 4096)))
def test_gather_over_hostile_trees(nodes, page_size):
    top = tempfile.mkdtemp(prefix="memfrag-fuzz-")
    try:
        root = ht.copy_fixture(os.path.join(top, "proc"))
        outside = ht.write(os.path.join(top, "outside"), "secret", "MemTotal: 1 kB\n")
        ht.write(root, "1/status", STATUS)
        for name, node in nodes.items():
            if node == "keep":
                continue
            if node == "absent":
                if os.path.lexists(os.path.join(root, name)):
                    os.unlink(os.path.join(root, name))
            elif isinstance(node, tuple):
                ht.write(root, name, node[1])
            else:
                ht.place(root, name, node, outside)
        before = ht.snapshot(top)
        with ht.no_hang(20):
            for call in (lambda: gather_buddyinfo(root, page_size), lambda: gather_meminfo(root, page_size or 4096),
                         lambda: read_vm_tunables(root, ["swappiness", "min_free_kbytes"])):
                try:
                    facts, warnings = call()
                except ProcFileError as exc:
                    assert str(exc).startswith(root) and len(str(exc)) < 1000
                    continue
                assert all(isinstance(warning, str) and len(warning) < 2000 for warning in warnings)
                if "zones" in facts:
                    assert facts["orders"] <= MAX_ORDERS
        assert ht.snapshot(top) == before
    finally:
        shutil.rmtree(top)


@FEW
@given(st.lists(st.tuples(st.sampled_from(("etc/sysctl.d", "run/sysctl.d", "usr/lib/sysctl.d", "lib/sysctl.d", "etc")),
                          st.sampled_from(("10-a.conf", "99-b.conf", "sysctl.conf", ".hidden.conf", "x.conf")),
                          st.one_of(st.sampled_from(ht.KINDS + ("devnull",)), hostile_text("sysctl"))), max_size=8))
def test_sysctl_precedence_over_hostile_config_roots(entries):
    top = tempfile.mkdtemp(prefix="memfrag-fuzz-")
    try:
        root = os.path.join(top, "root")
        os.makedirs(root)
        outside = ht.write(os.path.join(top, "outside"), "99-evil.conf", "vm.swappiness = 100\n")
        for directory, name, node in entries:
            relative = os.path.join(directory, name)
            if node == "devnull":  # a mask, as administrators write it
                ht.place(root, relative, ht.LINK_OUT, "/dev/null")
            elif node in ht.KINDS:
                ht.place(root, relative, node, outside)
            else:
                ht.write(root, relative, node)
        before = ht.snapshot(top)
        with ht.no_hang(20):
            boot = collect(root)
            result = analyse(boot, ["vm.swappiness", "vm.dirty_ratio"])
        # A link out of the root is never read: the outside file's value never wins.
        assert all(entry["file"] is None or entry["value"] != "100" or "evil" not in entry["file"] for entry in result.values())
        assert ht.snapshot(top) == before
    finally:
        shutil.rmtree(top)


def test_process_rss_over_many_hostile_pids(tmp_path):
    root = str(tmp_path / "proc")
    outside = ht.write(str(tmp_path / "outside"), "secret", STATM)
    for pid in range(1, 400):
        kind = ht.KINDS[pid % len(ht.KINDS)]
        ht.write(root, "%d/status" % pid, STATUS)
        ht.place(root, "%d/statm" % pid, kind, outside)
    before = ht.snapshot(str(tmp_path))
    with ht.no_hang(20):
        result = process_rss(root, 4096)
    assert ht.snapshot(str(tmp_path)) == before
    # Links (in or out) and absent statm fall back to status; FIFOs, devices, sockets and directories are skipped.
    assert result.count == sum(1 for pid in range(1, 400) if ht.KINDS[pid % len(ht.KINDS)] in (ht.LINK_OUT, ht.LINK_IN))
    assert len(result.warnings) == 1 and len(result.warnings[0]) < 1000
