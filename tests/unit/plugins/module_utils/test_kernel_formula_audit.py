# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audit: every number the collection reports against what the kernel means, computed here by hand.

The expected values are computed in this file, straight from the kernel's C (function named above
each helper) or by hand in a comment, from the real captures of the shared corpus read in place and
from texts written to the kernel's own format strings for eras the corpus lacks. Nothing here is
derived from the collection's output; the collection's parsers and ``gather()`` are only the
subject under test.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from ansible_collections.memfrag.linux.tests.collection_tree import corpus_dir, corpus_params
from ansible_collections.memfrag.linux.plugins.module_utils._facts.buddyinfo import gather
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import scan
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import empty_state
from ansible_collections.memfrag.linux.plugins.module_utils._mm.gfp import decode
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.buddyinfo import parse_buddyinfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.pagetypeinfo import parse_pagetypeinfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.zoneinfo import parse_zoneinfo, zone_indexes

CORPUS = corpus_dir()


def _listing(kind):
    return corpus_params(os.listdir(os.path.join(CORPUS, kind))) if CORPUS else corpus_params([])


def _read(kind, name):
    with open(os.path.join(CORPUS, kind, name), encoding="utf-8", errors="replace") as handle:
        return handle.read()


# ---- independent readings of the kernel's text ----------------------------------------------------

def read_buddyinfo(text):
    """{(node, zone): [nr_free per order]} as frag_show_print() wrote it: "Node %d, zone %8s " + "%6lu " per order.

    Mail-wrapped captures carry the tail of a zone line on the next line(s), digits only; a
    repeated (node, zone) starts a new snapshot (two cats pasted), of which the last counts.
    """
    zones = {}
    last = None
    for raw in text.splitlines():
        words = raw.split()
        if len(words) >= 3 and words[0] == "Node" and words[1].endswith(",") and words[2] == "zone":
            key = (int(words[1][:-1]), words[3])
            if key in zones:
                zones = {}
            zones[key] = [int(word) for word in words[4:]]
            last = key
        elif last is not None and words and all(word.isdigit() for word in words):
            zones[last].extend(int(word) for word in words)
        else:
            last = None
    return zones


def read_zoneinfo(text):
    """{(node, zone): {...}} with the lines zoneinfo_show_print() prints that the watermark check needs."""
    zones = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        header = re.match(r"Node (\d+), zone +(\S+)$", line)
        if header:
            current = zones.setdefault((int(header.group(1)), header.group(2)), {"counters": {}})
            continue
        if current is None:
            continue
        if line.startswith("pages free"):
            current["pages_free"] = int(line.split()[2])
        elif line.startswith("protection:"):
            current["protection"] = [int(v) for v in line[line.index("(") + 1:line.index(")")].split(",")]
        elif re.match(r"(min|low|high|boost) +\d+$", line):
            current[line.split()[0]] = int(line.split()[1])
        elif re.match(r"nr_(free_cma|unaccepted) +\d+$", line):
            current["counters"][line.split()[0]] = int(line.split()[1])
    return zones


def read_pagetypeinfo(text):
    """({(node, zone): {type: [free blocks per order]}}, {(node, zone): {type: pageblocks}}, pages per block)."""
    free, blocks, per_block, names = {}, {}, None, None
    for raw in text.splitlines():
        row = re.match(r"Node +(\d+), zone +(\S+), type +(\S+) +(.*)$", raw)
        if row:
            free.setdefault((int(row.group(1)), row.group(2)), {})[row.group(3)] = [
                int(cell.lstrip(">")) for cell in row.group(4).split()]
        elif raw.startswith("Pages per block:"):
            per_block = int(raw.split(":")[1])
        elif raw.startswith("Number of blocks type"):
            names = raw[len("Number of blocks type"):].split()
        elif names and re.match(r"Node \d+, zone", raw):
            words = raw.split()
            blocks[(int(words[1][:-1]), words[3])] = dict(zip(names, [int(w) for w in words[4:]]))
    return free, blocks, per_block


# ---- mm/vmstat.c, transcribed -----------------------------------------------------------------------

def fill_contig_page_info(nr_free, suitable_order):
    """mm/vmstat.c fill_contig_page_info(): (free_blocks_total, free_pages, free_blocks_suitable)."""
    free_blocks_total = free_pages = free_blocks_suitable = 0
    for order in range(len(nr_free)):
        blocks = nr_free[order]
        free_blocks_total += blocks
        free_pages += blocks << order
        if order >= suitable_order:
            free_blocks_suitable += blocks << (order - suitable_order)
    return free_blocks_total, free_pages, free_blocks_suitable


def unusable_free_index(order, nr_free):
    """mm/vmstat.c unusable_free_index(): div_u64((free_pages - (suitable << order)) * 1000ULL, free_pages)."""
    _total, free_pages, suitable = fill_contig_page_info(nr_free, order)
    if free_pages == 0:
        return 1000
    return ((free_pages - (suitable << order)) * 1000) // free_pages


def fragmentation_index(order, nr_free):
    """mm/vmstat.c __fragmentation_index(): unsigned 64-bit divisions, the result an int."""
    total, free_pages, suitable = fill_contig_page_info(nr_free, order)
    requested = 1 << order
    if not total:
        return 0
    if suitable:
        return -1000
    return 1000 - (1000 + (free_pages * 1000) // requested) // total


# ---- mm/page_alloc.c __zone_watermark_ok, per era, transcribed ---------------------------------------

def watermark_ok_2_6_32(nr_free, order, mark, lowmem_reserve, pages_free):
    """2.6.32 zone_watermark_ok() with alloc_flags of GFP_KERNEL (no ALLOC_HIGH, no ALLOC_HARDER)."""
    minimum = mark
    free_pages = pages_free - (1 << order) + 1
    if free_pages <= minimum + lowmem_reserve:
        return False
    for o in range(order):
        free_pages -= nr_free[o] << o
        minimum >>= 1
        if free_pages <= minimum:
            return False
    return True


def watermark_ok_3_10(nr_free, order, mark, lowmem_reserve, pages_free, free_cma):
    """3.0-4.3 __zone_watermark_ok(): no ALLOC_CMA for an unmovable allocation, so free CMA pages do not count."""
    minimum = mark
    free_pages = pages_free - ((1 << order) - 1)
    if free_pages - free_cma <= minimum + lowmem_reserve:
        return False
    for o in range(order):
        free_pages -= nr_free[o] << o
        minimum >>= 1
        if free_pages <= minimum:
            return False
    return True


def watermark_ok_4_4(lists, order, mark, lowmem_reserve, pages_free, free_cma, highatomic, unaccepted=0):
    """4.4+ __zone_watermark_ok() / __zone_watermark_unusable_free() for GFP_KERNEL (alloc_flags without
    ALLOC_HARDER/ALLOC_RESERVES, ALLOC_CMA, ALLOC_HIGHATOMIC). ``lists``: {migrate type: nr_free per order}."""
    free_pages = pages_free - ((1 << order) - 1) - highatomic - free_cma - unaccepted
    if free_pages <= mark + lowmem_reserve:
        return False
    if not order:
        return True
    for o in range(order, len(next(iter(lists.values())))):
        for mt in ("Unmovable", "Movable", "Reclaimable"):  # mt < MIGRATE_PCPTYPES
            if lists.get(mt, [0] * (o + 1))[o]:
                return True
    return False


# ---- A. buddyinfo: every corpus capture, token for token ----------------------------------------------

@pytest.mark.parametrize("name", _listing("buddyinfo"))
def test_buddyinfo_parser_reads_what_the_kernel_wrote(name):
    text = _read("buddyinfo", name)
    zones, _warnings = parse_buddyinfo(text, name)
    assert dict(((z.node, z.zone), z.free_blocks) for z in zones) == read_buddyinfo(text)


def _tree(tmp_path, files, release=None):
    root = tmp_path / "proc"
    root.mkdir()
    for kind, (directory, name) in files.items():
        shutil.copy(os.path.join(CORPUS, directory, name), str(root / kind))
    if release:
        (root / "sys" / "kernel").mkdir(parents=True)
        (root / "sys" / "kernel" / "osrelease").write_text(release + "\n")
    return str(root)


# ---- B. derived numbers: the kernel's indexes and free bytes at or above each order --------------------

@pytest.mark.parametrize("name", _listing("buddyinfo"))
def test_indexes_and_free_bytes_equal_the_kernel_formulas(name, tmp_path):
    page_size = 65536 if "64k" in name else 4096
    facts, _warnings = gather(_tree(tmp_path, {"buddyinfo": ("buddyinfo", name)}), page_size=page_size)
    expected = read_buddyinfo(_read("buddyinfo", name))
    assert len(facts["zones"]) == len(expected)
    for zone in facts["zones"]:
        nr_free = expected[(zone["node"], zone["zone"])]
        orders = range(len(nr_free))
        # The debugfs files print index/1000 as "%d.%03d": the facts hold that value.
        assert [round(v * 1000) for v in zone["unusable_index"]] == [unusable_free_index(o, nr_free) for o in orders]
        assert [round(v * 1000) for v in zone["fragmentation_index"]] == [fragmentation_index(o, nr_free) for o in orders]
        assert zone["free_bytes_at_or_above_order"] == [
            sum(nr_free[high] * (page_size << high) for high in range(o, len(nr_free))) for o in orders]
        assert zone["free_pages"] == fill_contig_page_info(nr_free, 0)[1]
        top = [o for o in orders if nr_free[o]]
        assert zone["largest_free_order"] == (top[-1] if top else -1)
        assert zone["largest_free_block_bytes"] == (page_size << top[-1] if top else 0)
        assert zone["free_bytes"] == sum(n << o for o, n in enumerate(nr_free)) * page_size


def test_fragmentation_index_by_hand_on_the_fragmented_centos_capture(tmp_path):
    """Node 0 Normal of the CentOS 7.6 capture (mail-wrapped): 33331 3323 582 87 then zeros.

    free_pages = 33331 + 3323*2 + 582*4 + 87*8 = 43001; free_blocks_total = 37323.
    order 4: nothing suitable: 1000 - (1000 + 43001000/16) / 37323 = 1000 - 2688562/37323 = 1000 - 72 = 928.
    order 3: 87 blocks suitable: -1000.
    unusable order 1: suitable = 3323 + 582*2 + 87*4 = 4835 -> (43001 - 9670) * 1000 / 43001 = 775.
    unusable order 3: (43001 - 87*8) * 1000 / 43001 = 983.
    """
    if CORPUS is None:
        pytest.skip("no corpus")
    facts, _warnings = gather(_tree(tmp_path, {"buddyinfo": (
        "buddyinfo", "email-wrapped-2node-fragmented-centos7.6-linux-xfs-2019.txt")}), page_size=4096)
    normal = [z for z in facts["zones"] if (z["node"], z["zone"]) == (0, "Normal")][0]
    assert normal["free_pages"] == 43001
    assert normal["fragmentation_index"][3:5] == [-1.0, 0.928]
    assert (normal["unusable_index"][1], normal["unusable_index"][3]) == (0.775, 0.983)
    assert normal["free_bytes_at_or_above_order"][3] == 87 * 8 * 4096
    assert normal["free_bytes_at_or_above_order"][4] == 0


# ---- C. the watermark verdict against __zone_watermark_ok of the capture's era --------------------------

# (buddyinfo, pagetypeinfo, zoneinfo, meminfo, release, {zone: index in the kernel's configured zones})
_X86 = {"DMA": 0, "DMA32": 1, "Normal": 2}
CAPTURES = {
    # 4.18 RHEL 8: DMA DMA32 Normal Movable Device, all printed (4.19-style)
    "rhel8": ("rhel8.0-4.18.0-80-sosreport.txt",) * 4 + ("4.18.0-80.el8.x86_64", _X86),
    # 5.14 CentOS Stream 9, a VM with no Normal memory: Normal printed empty; GFP_KERNEL's class is still Normal
    "cs9": (("dma-dma32-no-normal-Khandevops1-linux.txt",) + ("centos-stream9-5.14.0-325-Khandevops1-linux.txt",) * 3
            + ("5.14.0-325.el9.x86_64", _X86)),
    # 3.13 Ubuntu: DMA DMA32 Normal (Movable configured, not printed), legacy per-order loop
    "ubuntu-3.13": ("ubuntu14.04-3.13.0-77-proc-snapshot.txt",) * 4 + ("3.13.0-77-generic", _X86),
    # 3.4.5 32-bit ARM: Normal HighMem Movable; Normal is zone 0; HighMem is judged as its own class
    "android-3.4": (("android-highmem-GoCleverInsignia5-i5_info.txt",)
                    + ("android-3.4.5-highmem-GoCleverInsignia5-i5_info.txt",) * 3 + ("3.4.5", {"Normal": 0, "HighMem": 1})),
    # 2.6-era ARM720T: DMA Normal HighMem Movable configured, a DMA zone alone populated; no release: the
    # zoneinfo layout (all_unreclaimable) says legacy, which is 2.6's loop too
    "arm720t-2.6": ("dma-only-RandolphWang1-D2000.txt", None, "arm720t-2.6-era-RandolphWang1-D2000.txt", None, None,
                    {"DMA": 0, "Normal": 1}),
}


def _expected_verdicts(capture, release_override=None):
    buddy, pagetype, zoneinfo, _meminfo, release, indexes = CAPTURES[capture]
    release = release_override or release
    nr_free = read_buddyinfo(_read("buddyinfo", buddy))
    zones = read_zoneinfo(_read("zoneinfo", zoneinfo))
    lists, pageblocks, per_block = read_pagetypeinfo(_read("pagetypeinfo", pagetype)) if pagetype else ({}, {}, None)
    version = tuple(int(v) for v in re.match(r"(\d+)\.(\d+)", release).groups()) if release else (2, 6)
    result = {}
    for key, blocks in nr_free.items():
        zone = zones[key]
        # A GFP_KERNEL-kind allocation's class zone is Normal; zones above Normal are judged as their own class.
        reserve = zone["protection"][max(indexes[key[1]], indexes["Normal"])]
        free_cma = zone["counters"].get("nr_free_cma", 0)
        verdicts = {}
        for mark in ("min", "low", "high"):
            row = []
            for order in range(len(blocks)):
                if version < (4, 4):
                    if version < (3, 0):
                        row.append(watermark_ok_2_6_32(blocks, order, zone[mark], reserve, zone["pages_free"]))
                    else:
                        row.append(watermark_ok_3_10(blocks, order, zone[mark], reserve, zone["pages_free"], free_cma))
                else:
                    if version >= (6, 12):
                        highatomic = sum(n << o for o, n in enumerate(lists[key].get("HighAtomic", [])))
                    else:
                        highatomic = pageblocks[key].get("HighAtomic", 0) * per_block
                    unaccepted = zone["counters"].get("nr_unaccepted", 0) if (6, 5) <= version < (6, 12) else 0
                    row.append(watermark_ok_4_4(lists[key], order, zone[mark], reserve, zone["pages_free"], free_cma,
                                                highatomic, unaccepted))
            verdicts[mark] = row
        result[key] = verdicts
    return result


def _gather_capture(capture, tmp_path, release_override=None):
    buddy, pagetype, zoneinfo, meminfo, release, _normal = CAPTURES[capture]
    files = {"buddyinfo": ("buddyinfo", buddy), "zoneinfo": ("zoneinfo", zoneinfo)}
    if pagetype:
        files["pagetypeinfo"] = ("pagetypeinfo", pagetype)
    if meminfo:
        files["meminfo"] = ("meminfo", meminfo)
    facts, _warnings = gather(_tree(tmp_path, files, release_override or release), page_size=4096)
    return facts


@pytest.mark.parametrize("capture", corpus_params(CAPTURES) if CORPUS else corpus_params([]))
def test_watermark_verdict_equals_zone_watermark_ok_of_the_era(capture, tmp_path):
    facts = _gather_capture(capture, tmp_path)
    expected = _expected_verdicts(capture)
    judged = [z for z in facts["zones"] if "watermark_ok_by_mark" in z]
    assert len(judged) == len(expected)
    for zone in judged:
        assert zone["watermark_ok_by_mark"] == expected[(zone["node"], zone["zone"])], (zone["node"], zone["zone"])


@pytest.mark.parametrize("release", ["4.4.0", "6.1.0", "6.8.0", "6.13.0"])
def test_watermark_verdict_follows_the_release_on_one_capture(release, tmp_path):
    """The same RHEL 8 capture judged as each modern era: highatomic whole reserve vs free pages (6.12)."""
    if CORPUS is None:
        pytest.skip("no corpus")
    facts = _gather_capture("rhel8", tmp_path, release)
    expected = _expected_verdicts("rhel8", release)
    for zone in facts["zones"]:
        assert zone["watermark_ok_by_mark"] == expected[(zone["node"], zone["zone"])]


# A 6.8 TDX guest's Normal zone (zoneinfo 6.8 layout, trimmed to the lines the check reads and a few more):
# 300000 pages free of which 290000 not yet accepted. __zone_watermark_unusable_free() of 6.5-6.11 takes them
# out: 300000 - 290000 = 10000 <= min 12000 -> every order fails at min. 6.12+ accepts memory first: it passes.
_ZONEINFO_6_8_UNACCEPTED = """Node 0, zone   Normal
  pages free     300000
        boost    0
        min      12000
        low      15000
        high     18000
        spanned  1048576
        present  1048576
        managed  1020000
        cma      0
        protection: (0, 0, 0, 0, 0)
      nr_free_pages 300000
      nr_zone_inactive_anon 100
      nr_free_cma  0
      nr_unaccepted 290000
  pagesets
    cpu: 0
              count: 10
              high:  100
              batch: 63
  vm stats threshold: 24
  node_unreclaimable:  0
  start_pfn:           1048576
"""
# Orders 0..10: 10000 single pages, and blocks of every order up to 10 (the 290000 unaccepted pages sit in
# order-10 blocks on the free lists).
_BUDDYINFO_6_8_UNACCEPTED = "Node 0, zone   Normal " + " ".join(["1000"] * 10 + ["283"]) + " \n"


@pytest.mark.parametrize("release, passes", [("6.8.0", False), ("6.11.11", False), ("6.12.0", True), ("6.4.0", True)])
def test_unaccepted_memory_is_unusable_to_the_check_from_6_5_to_6_11(release, passes, tmp_path):
    root = tmp_path / "proc"
    (root / "sys" / "kernel").mkdir(parents=True)
    (root / "sys" / "kernel" / "osrelease").write_text(release + "\n")
    (root / "buddyinfo").write_text(_BUDDYINFO_6_8_UNACCEPTED)
    (root / "zoneinfo").write_text(_ZONEINFO_6_8_UNACCEPTED)
    facts, _warnings = gather(str(root), page_size=4096)
    normal = facts["zones"][0]
    blocks = read_buddyinfo(_BUDDYINFO_6_8_UNACCEPTED)[(0, "Normal")]
    version = tuple(int(v) for v in release.split(".")[:2])
    unaccepted = 290000 if (6, 5) <= version < (6, 12) else 0
    expected = [watermark_ok_4_4({"Movable": blocks}, order, 12000, 0, 300000, 0, 0, unaccepted) for order in range(11)]
    assert normal["watermark_ok"] == expected == [passes] * 11
    assert normal["watermark_check"]["unaccepted_pages"] == unaccepted


# ---- D. formats of eras the corpus lacks, written to the kernel's format strings -----------------------

# 2.6.32 zoneinfo_show_print(): "scanned %lu (aa: %lu ia: %lu af: %lu if: %lu)", counters before protection, %lu
# protection, prev_priority and inactive_ratio in the tail; only populated zones. An i386 box with 800 MB:
# DMA Normal HighMem Movable configured, HighMem empty so not printed.
ZONEINFO_2_6_32 = """Node 0, zone      DMA
  pages free     3935
        min      20
        low      25
        high     30
        scanned  0 (aa: 0 ia: 0 af: 0 if: 0)
        spanned  4080
        present  3919
    nr_free_pages 3935
    nr_inactive_anon 0
    nr_free_cma  0
        protection: (0, 3502, 16120, 16120)
  pagesets
    cpu: 0
              count: 0
              high:  0
              batch: 1
  vm stats threshold: 6
  all_unreclaimable: 0
  prev_priority:     12
  start_pfn:         16
  inactive_ratio:    1
Node 0, zone   Normal
  pages free     12000
        min      3000
        low      3750
        high     4500
        scanned  0 (aa: 0 ia: 0 af: 0 if: 0)
        spanned  3276800
        present  3230240
    nr_free_pages 12000
        protection: (0, 0, 0, 0)
  pagesets
    cpu: 0
              count: 155
              high:  186
              batch: 31
  vm stats threshold: 64
  all_unreclaimable: 0
  prev_priority:     12
  start_pfn:         1048576
  inactive_ratio:    13
"""

# 4.9: per-node stats in the first populated zone of each node, counters after protection with a 6-space
# indent, node_scanned, node_unreclaimable; only populated zones. Node 0: DMA DMA32 Normal; node 1 (movable_node)
# Normal and Movable. Configured: DMA DMA32 Normal Movable Device (5 protection entries).
ZONEINFO_4_9_TWO_NODES = """Node 0, zone      DMA
  per-node stats
      nr_inactive_anon 1000
      nr_active_anon 2000
      node_scanned 0
  pages free     3900
        min      10
        low      12
        high     15
   node_scanned  0
        spanned  4095
        present  3998
        managed  3977
        protection: (0, 1883, 15903, 15903, 15903)
      nr_free_pages 3900
      nr_free_cma  0
  pagesets
    cpu: 0
              count: 0
              high:  0
              batch: 1
  vm stats threshold: 8
  node_unreclaimable:  0
  start_pfn:           1
  node_inactive_ratio:  0
Node 0, zone    DMA32
  pages free     30000
        min      1500
        low      1875
        high     2250
   node_scanned  0
        spanned  1044480
        present  782288
        managed  765000
        protection: (0, 0, 14020, 14020, 14020)
      nr_free_pages 30000
      nr_free_cma  0
  pagesets
    cpu: 0
              count: 12
              high:  186
              batch: 31
  vm stats threshold: 48
  node_unreclaimable:  0
  start_pfn:           4096
  node_inactive_ratio:  0
Node 0, zone   Normal
  pages free     50000
        min      4000
        low      5000
        high     6000
   node_scanned  0
        spanned  3670016
        present  3670016
        managed  3590000
        protection: (0, 0, 0, 0, 0)
      nr_free_pages 50000
      nr_free_cma  128
  pagesets
    cpu: 0
              count: 31
              high:  186
              batch: 31
  vm stats threshold: 56
  node_unreclaimable:  0
  start_pfn:           1048576
  node_inactive_ratio:  0
Node 1, zone   Normal
  per-node stats
      nr_inactive_anon 3000
      nr_active_anon 4000
      node_scanned 0
  pages free     70000
        min      4500
        low      5600
        high     6700
   node_scanned  0
        spanned  4194304
        present  4194304
        managed  4120000
        protection: (0, 0, 0, 2000, 2000)
      nr_free_pages 70000
      nr_free_cma  0
  pagesets
    cpu: 0
              count: 40
              high:  186
              batch: 31
  vm stats threshold: 56
  node_unreclaimable:  0
  start_pfn:           4718592
  node_inactive_ratio:  0
Node 1, zone  Movable
  pages free     250000
        min      300
        low      375
        high     450
   node_scanned  0
        spanned  524288
        present  524288
        managed  512000
        protection: (0, 0, 0, 0, 0)
      nr_free_pages 250000
      nr_free_cma  0
  pagesets
    cpu: 0
              count: 0
              high:  186
              batch: 31
  vm stats threshold: 40
  node_unreclaimable:  0
  start_pfn:           8912896
  node_inactive_ratio:  0
"""

# 6.13+: promo, cma, pagesets with high_min/high_max and aligned counts; newest kernels add
# reserved_highatomic and free_highatomic to the tail (zone->nr_reserved_highatomic, nr_free_highatomic).
ZONEINFO_6_13_PLUS = """Node 0, zone   Normal
  pages free     40000
        boost    512
        min      9000
        low      11000
        high     13000
        promo    15000
        spanned  3932160
        present  3932160
        managed  3850000
        cma      2048
        protection: (0, 0, 0, 0)
      nr_free_pages 40000
      nr_free_cma  1024
  pagesets
    cpu: 0
              count:    120
              high:     500
              batch:    63
              high_min: 100
              high_max: 1500
  vm stats threshold: 72
  node_unreclaimable:  0
  start_pfn:           1048576
  reserved_highatomic: 1024
  free_highatomic:     600
"""


def test_zoneinfo_2_6_32_layout():
    zones, warnings = parse_zoneinfo(ZONEINFO_2_6_32)
    assert warnings == []
    dma, normal = zones
    assert (dma.pages_free, dma.fields["min"], dma.fields["low"], dma.fields["high"]) == (3935, 20, 25, 30)
    assert dma.fields["scanned"] == 0 and dma.fields["present"] == 3919 and "managed" not in dma.fields
    assert dma.protection == [0, 3502, 16120, 16120]
    assert dma.counters["nr_free_pages"] == 3935 and dma.tail["prev_priority"] == "12"
    assert normal.fields["high"] == 4500  # pagesets' "high:  0" (with a colon) is not the watermark
    # i386: DMA Normal HighMem Movable (4 protection entries): Normal is zone 1.
    assert zone_indexes(zones) == {(0, "DMA"): 0, (0, "Normal"): 1}


def test_zoneinfo_4_9_two_nodes_per_node_stats():
    zones, warnings = parse_zoneinfo(ZONEINFO_4_9_TWO_NODES)
    assert warnings == []
    assert [(z.node, z.zone, z.pages_free) for z in zones] == [
        (0, "DMA", 3900), (0, "DMA32", 30000), (0, "Normal", 50000), (1, "Normal", 70000), (1, "Movable", 250000)]
    dma, _dma32, normal0, normal1, movable = zones
    assert dma.node_stats == {"nr_inactive_anon": 1000, "nr_active_anon": 2000, "node_scanned": 0}
    assert normal1.node_stats == {"nr_inactive_anon": 3000, "nr_active_anon": 4000, "node_scanned": 0}
    assert normal0.counters["nr_free_cma"] == 128 and normal0.fields["managed"] == 3590000
    assert [z.fields["min"] for z in zones] == [10, 1500, 4000, 4500, 300]
    assert movable.node_stats == {} and movable.protection == [0, 0, 0, 0, 0]
    # DMA DMA32 Normal Movable Device configured (5 entries): x86_64 has no HighMem, so Movable is 3.
    assert zone_indexes(zones) == {(0, "DMA"): 0, (0, "DMA32"): 1, (0, "Normal"): 2, (1, "Normal"): 2, (1, "Movable"): 3}


def test_zoneinfo_4_9_verdict_subtracts_free_cma_and_uses_each_nodes_watermarks(tmp_path):
    root = tmp_path / "proc"
    (root / "sys" / "kernel").mkdir(parents=True)
    (root / "sys" / "kernel" / "osrelease").write_text("4.9.0-8-amd64\n")
    buddy = ("Node 0, zone      DMA      1      1      1      0      2      1      1      0      1      1      3 \n"
             "Node 0, zone    DMA32   2000   1000    500    250    100     50     20     10      4      2      1 \n"
             "Node 0, zone   Normal   4000   3000   2000   1000    500      0      0      0      0      0      0 \n"
             "Node 1, zone   Normal  10000   5000   3000   2000   1000    500    100      0      0      0      0 \n"
             "Node 1, zone  Movable      0      0      0      0      0      0      0      0      0      0    244 \n")
    (root / "buddyinfo").write_text(buddy)
    (root / "zoneinfo").write_text(ZONEINFO_4_9_TWO_NODES)
    facts, _warnings = gather(str(root), page_size=4096)
    blocks = read_buddyinfo(buddy)
    zones = read_zoneinfo(ZONEINFO_4_9_TWO_NODES)
    for zone in facts["zones"]:
        key = (zone["node"], zone["zone"])
        info = zones[key]
        # class Normal (index 2 on every node); Movable, above Normal, is its own class (index 3)
        reserve = info["protection"][3 if key[1] == "Movable" else 2]
        expected = [watermark_ok_4_4({"Movable": blocks[key]}, order, info["min"], reserve, info["pages_free"],
                                     info["counters"]["nr_free_cma"], 0) for order in range(11)]
        assert zone["watermark_ok"] == expected, key
    # By hand: node 0 Normal, 50000 - 128 CMA = 49872 > 4000; largest free order 4.
    assert facts["zones"][2]["watermark_ok"] == [True] * 5 + [False] * 6
    # DMA: 3900 <= 10 + 15903 -> never, whatever the order.
    assert facts["zones"][0]["watermark_ok"] == [False] * 11
    # Node 0 gets order 10 from DMA32 (30000 > 1500 + 14020). Node 1's Movable zone has 244 order-10 blocks, but a
    # GFP_KERNEL allocation's zonelist stops at Normal: node 1 serves it up to order 6 (Normal's largest block).
    assert facts["zones"][4]["watermark_ok"] == [True] * 11
    assert [n["watermark_ok"] for n in facts["nodes"]] == [[True] * 11, [True] * 7 + [False] * 4]


def test_movable_only_nodes_have_no_kernel_allocation_verdict(tmp_path):
    """The hot-plug capture: nodes 10 and 11 hold only Movable memory, which GFP_KERNEL never gets."""
    if CORPUS is None:
        pytest.skip("no corpus")
    name = "movable-node10-node11-hotplug-blog.txt"
    blocks = read_buddyinfo(_read("buddyinfo", name))
    root = tmp_path / "proc"
    (root / "sys" / "kernel").mkdir(parents=True)
    (root / "sys" / "kernel" / "osrelease").write_text("4.18.0\n")
    shutil.copy(os.path.join(CORPUS, "buddyinfo", name), str(root / "buddyinfo"))
    # Watermarks written for the capture (it came without zoneinfo): all zones printed, 4.19-style.
    text = ""
    for (node, zone), _counts in sorted(blocks.items()):
        free = sum(n << o for o, n in enumerate(_counts))
        text += ("Node %d, zone %8s\n  pages free     %d\n        min      %d\n        low      %d\n        high     %d\n"
                 "        spanned  1\n        present  1\n        managed  1\n        protection: (0, 0, 0, 0, 0)\n"
                 % (node, zone, free, 16, 20, 24))
    (root / "zoneinfo").write_text(text)
    facts, _warnings = gather(str(root), page_size=4096)
    nodes = dict((n["node"], n) for n in facts["nodes"])
    assert "watermark_ok" not in nodes[10] and "watermark_ok" not in nodes[11]
    # Node 0: DMA (class Normal, reserve 0 here) has order-10 blocks; 4.4+ check passes where a block exists.
    dma, normal = blocks[(0, "DMA")], blocks[(0, "Normal")]
    assert nodes[0]["watermark_ok"] == [any(dma[o:]) or any(normal[o:]) for o in range(11)] == [True] * 11
    movable = [z for z in facts["zones"] if z["zone"] == "Movable"]
    assert [z["watermark_ok"][10] for z in movable] == [True, True]  # the zones themselves still have a verdict


def test_zoneinfo_6_13_plus_layout_and_free_highatomic(tmp_path):
    zones, warnings = parse_zoneinfo(ZONEINFO_6_13_PLUS)
    assert warnings == []
    normal = zones[0]
    assert dict((k, normal.fields[k]) for k in ("boost", "min", "low", "high", "promo", "cma")) == {
        "boost": 512, "min": 9000, "low": 11000, "high": 13000, "promo": 15000, "cma": 2048}
    assert normal.tail["reserved_highatomic"] == "1024" and normal.tail["free_highatomic"] == "600"
    root = tmp_path / "proc"
    (root / "sys" / "kernel").mkdir(parents=True)
    (root / "sys" / "kernel" / "osrelease").write_text("6.19.0\n")
    (root / "buddyinfo").write_text("Node 0, zone   Normal  20000   2000    500    100     50     20      5      0      0      0      0 \n")
    (root / "zoneinfo").write_text(ZONEINFO_6_13_PLUS)
    facts, _warnings = gather(str(root), page_size=4096)
    zone = facts["zones"][0]
    # 6.12+: free - nr_free_highatomic 600 - nr_free_cma 1024 - (2^order - 1) against min 9000 (boost included).
    assert zone["watermark_check"]["highatomic_pages"] == 600
    assert zone["watermark_ok"] == [40000 - 600 - 1024 - ((1 << o) - 1) > 9000 and o <= 6 for o in range(11)]


PAGETYPEINFO_PPC64_64K = """Page block order: 8
Pages per block:  256

Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8
Node    0, zone   Normal, type    Unmovable    120     40     10      3      1      0      0      0      0
Node    0, zone   Normal, type      Movable >100000  35000   9000   1200    300     60     12      2      1
Node    0, zone   Normal, type  Reclaimable      5      2      1      0      0      0      0      0      0
Node    0, zone   Normal, type   HighAtomic      0      0      0      0      0      0      0      0      0
Node    0, zone   Normal, type          CMA      0      0      0      0      0      0      0      0      4
Node    0, zone   Normal, type      Isolate      0      0      0      0      0      0      0      0      0
Node    8, zone   Normal, type    Unmovable      1      0      0      0      0      0      0      0      0
Node    8, zone   Normal, type      Movable      2      0      0      0      0      0      0      0      0
Node    8, zone   Normal, type  Reclaimable      0      0      0      0      0      0      0      0      0
Node    8, zone   Normal, type   HighAtomic      0      0      0      0      0      0      0      0      1
Node    8, zone   Normal, type          CMA      0      0      0      0      0      0      0      0      0
Node    8, zone   Normal, type      Isolate      0      0      0      0      0      0      0      0      0

Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic          CMA      Isolate
Node 0, zone   Normal          120         3900           40            0            4            0
Node 8, zone   Normal            2          500            1            1            0            0

Number of mixed blocks    Unmovable      Movable  Reclaimable   HighAtomic          CMA      Isolate
Node 0, zone   Normal            3            7            1            0            0            0
Node 8, zone   Normal            0            0            0            0            0            0
"""
# pagetypeinfo_show() ends every row with the blank after its last "%6lu " / "%12lu " cell; kept out of the source.
PAGETYPEINFO_PPC64_64K = "\n".join(line + " " if line[:1] in ("F", "N") else line
                                   for line in PAGETYPEINFO_PPC64_64K.split("\n"))


def test_pagetypeinfo_64k_ppc64_nine_orders_cap_and_mixed_blocks(tmp_path):
    """ppc64le, 64 KiB pages: 9 orders, pageblock order 8, a capped cell, sparse node ids, page_owner's mixed blocks."""
    info = parse_pagetypeinfo(PAGETYPEINFO_PPC64_64K)
    assert (info.pageblock_order, info.pages_per_block, info.orders) == (8, 256, 9)
    normal0 = info.zones[(0, "Normal")]
    assert normal0.free_blocks["Movable"][:2] == [100000, 35000] and normal0.capped == {"Movable": [0]}
    assert normal0.pageblocks == {"Unmovable": 120, "Movable": 3900, "Reclaimable": 40, "HighAtomic": 0, "CMA": 4,
                                  "Isolate": 0}
    assert normal0.mixed_pageblocks["Movable"] == 7
    assert info.zones[(8, "Normal")].pageblocks["HighAtomic"] == 1
    # Node 8's only order-8 block is HighAtomic: a 4.4+ GFP_KERNEL allocation of order 1..8 may not use it,
    # and the reserve (1 pageblock = 256 pages) is subtracted from free before 6.12.
    root = tmp_path / "proc"
    (root / "sys" / "kernel").mkdir(parents=True)
    (root / "sys" / "kernel" / "osrelease").write_text("5.14.0-284.el9.ppc64le\n")
    (root / "buddyinfo").write_text(
        "Node 8, zone   Normal      3      0      0      0      0      0      0      0      1 \n")
    (root / "zoneinfo").write_text("""Node 8, zone   Normal
  pages free     259
        boost    0
        min      2
        low      3
        high     4
        spanned  4096
        present  4096
        managed  4000
        cma      0
        protection: (0, 0, 0)
      nr_free_pages 259
      nr_free_cma  0
""")
    (root / "pagetypeinfo").write_text(PAGETYPEINFO_PPC64_64K)
    facts, _warnings = gather(str(root), page_size=65536)
    zone = facts["zones"][0]
    lists = read_pagetypeinfo(PAGETYPEINFO_PPC64_64K)[0][(8, "Normal")]
    # 259 - 256 (reserve) = 3 > 2: order 0 passes; 3 - 1 = 2 <= 2: order 1 fails before the lists are looked at.
    assert zone["watermark_ok"] == [watermark_ok_4_4(lists, o, 2, 0, 259, 0, 256) for o in range(9)] == [True] + [False] * 8
    assert zone["free_bytes_at_or_above_order"][8] == 256 * 65536


# ---- E. kernel log events: fields as the kernel printed them, modes decoded with the era's table ----------

_MODE_LINE = re.compile(r"(?:page allocation (?:failure[.:]|stalls for [0-9]+ms,)\s*order:(?P<order>[0-9]+),\s*"
                        r"|possible memory allocation deadlock(?: size (?P<size>[0-9]+))? in (?P<function>\w+) \()"
                        r"mode:0x(?P<mode>[0-9a-f]+)")


@pytest.mark.parametrize("name", _listing("logs"))
def test_log_event_fields_are_the_printed_ones(name):
    """Every allocation event's order, size, function and mode, against the printed line (unwrapped by hand)."""
    text = _read("logs", name)
    # Mail wrapping and quoting: join a line ending inside a message with its continuation.
    joined = re.sub(r"\s*\n(?:> ?)*\s*(?=(?:order:|mode:|\(mode:|size |in \w+ \(|[0-9a-fx]+\)))", " ", text)
    expected = sorted((m.group("order") and int(m.group("order")), m.group("size") and int(m.group("size")),
                       m.group("function"), int(m.group("mode"), 16)) for m in _MODE_LINE.finditer(joined)
                      if "XFS" in joined[max(0, m.start() - 80):m.start()].upper() or m.group("order") is not None)
    warnings = []
    result, _state = scan(["files"], [os.path.join(CORPUS, "logs", name)], None, empty_state(), None, 10000, False,
                          warnings.append, fallback_release="4.9.0")
    got = sorted((e.get("order"), e.get("size"), e.get("function"), e["mode"]) for e in result["events"]
                 if e.get("kind") in ("xfs_alloc_deadlock", "page_alloc_failure", "page_alloc_stall")
                 and e.get("mode") is not None)
    assert got == expected


# Hand decodings from the gfp.h of each era (kernel-formats.md section 8): (release, mode, flags).
GFP_BY_HAND = [
    ("2.6.32-431.el6.x86_64", 0x20, {"GFP_ATOMIC"}),                               # __GFP_HIGH
    ("2.6.32-431.el6.x86_64", 0xd0, {"GFP_KERNEL"}),                               # WAIT|IO|FS
    ("2.6.18", 0x4020, {"GFP_ATOMIC", "__GFP_COMP"}),
    ("3.10.0-1160.el7.x86_64", 0x250, {"GFP_NOFS", "__GFP_NOWARN"}),               # WAIT|IO + 0x200
    ("3.10.0-1160.el7.x86_64", 0x1250, {"GFP_NOFS", "__GFP_NOWARN", "__GFP_NORETRY"}),
    ("3.10.0-1160.el7.x86_64", 0x8250, {"GFP_NOFS", "__GFP_NOWARN", "__GFP_ZERO"}),
    ("3.8.0-1-mainline", 0x10d0, {"GFP_KERNEL", "__GFP_NORETRY"}),
    ("4.8.0", 0x2408240, {"GFP_NOFS", "__GFP_NOWARN", "__GFP_ZERO"}),              # 0x2400040|0x200|0x8000
    ("4.4.0", 0x24000c0, {"GFP_KERNEL"}),
    ("4.14.0", 0x14000c0, {"GFP_KERNEL"}),                                          # KSWAPD moved to 0x1000000
    ("4.19.0", 0x6000c0, {"GFP_KERNEL"}),                                           # DIRECT 0x200000 KSWAPD 0x400000
    ("5.18.0", 0x2d40, {"GFP_NOFS", "__GFP_ZERO", "__GFP_NOWARN"}),                # 0xc40|0x100|0x2000
    ("6.1.0", 0xcc0, {"GFP_KERNEL"}),
    ("6.1.0", 0xa20, {"GFP_ATOMIC"}),
]


@pytest.mark.parametrize("release, mode, flags", GFP_BY_HAND)
def test_gfp_decoded_with_the_eras_table(release, mode, flags):
    assert set(decode(mode, release)) == flags


# Logs whose lines print modes without names, with the release they came from (PROVENANCE.md).
LOG_RELEASES = {
    "paf-old-period-format-rhel6-2.6.32-syslog-squidanalyzer-issue69.log": ("2.6.32-431.el6.x86_64", [{"GFP_ATOMIC"}]),
    "xfs-deadlock-plus-hung-qemu-rhel7-syslog-w-openstack86-blog.log": (
        "3.10.0-327.el7.x86_64", [{"GFP_NOFS", "__GFP_NOWARN"}] * 2),
    "xfs-kmem_alloc-size-fs_mark-4.8-era-linux-mm-2016.log": (
        "4.8.0", [{"GFP_NOFS", "__GFP_NOWARN", "__GFP_ZERO"}] * 5),
    "xfs-size-mode0x2d40-fs_mark-5.18-era-linux-xfs-2022.log": (
        "5.18.0", [{"GFP_NOFS", "__GFP_ZERO", "__GFP_NOWARN"}] * 11),
}


@pytest.mark.parametrize("name", sorted(LOG_RELEASES) if CORPUS else corpus_params([]))
def test_log_modes_decoded_for_the_logs_kernel(name):
    release, flags = LOG_RELEASES[name]
    result, _state = scan(["files"], [os.path.join(CORPUS, "logs", name)], None, empty_state(), None, 10000, False,
                          lambda _w: None, fallback_release=release)
    events = [e for e in result["events"] if e.get("mode") is not None]
    assert [set(e["gfp_flags"]) for e in events] == flags
    assert all(e["gfp_release"] == release for e in events)


# "INFO: task %s:%d blocked for more than %ld seconds." (a mail may wrap after "task"); comm is at most 15 bytes.
_HUNG_PRINTED = re.compile(r"task\s+(\S{1,16}):(\d+) blocked for more than (\d+) seconds")
# "Killed process %d (%s) ..." in every era; RHEL 6 put ", UID %d," after the pid.
_KILLED_PRINTED = re.compile(r"Killed process (\d+)(?:, UID \d+,)? \(([^)]{1,16})\)")


@pytest.mark.parametrize("name", _listing("logs"))
def test_hung_task_and_oom_kill_fields_are_the_printed_ones(name):
    text = _read("logs", name)
    result, _state = scan(["files"], [os.path.join(CORPUS, "logs", name)], None, empty_state(), None, 10000, False,
                          lambda _w: None, fallback_release="4.9.0")
    events = result["events"]
    assert sorted((e.get("comm"), e.get("pid"), e.get("seconds")) for e in events if e["kind"] == "hung_task") == \
        sorted((m.group(1), int(m.group(2)), int(m.group(3))) for m in _HUNG_PRINTED.finditer(text))
    assert sorted((e.get("comm"), e.get("killed_pid")) for e in events if e.get("form") == "oom_killed") == \
        sorted((m.group(2), int(m.group(1))) for m in _KILLED_PRINTED.finditer(text))


@pytest.mark.parametrize("name", _listing("meminfo"))
def test_meminfo_values_are_the_printed_kib(name):
    """fs/proc/meminfo.c show_val_kb(): "%-16s%8lu kB" with kB = KiB; HugePages_* are plain counts."""
    from ansible_collections.memfrag.linux.plugins.module_utils._procfs.meminfo import parse_meminfo

    text = _read("meminfo", name)
    expected = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        field, rest = line.split(":", 1)
        words = rest.split()
        expected[field.strip()] = int(words[0]) * (1024 if words[1:] == ["kB"] else 1)
    fields, _warnings = parse_meminfo(text, name)
    assert fields == expected


@pytest.mark.parametrize("line, order, mode", [
    # 4.9-4.19 mm/oom_kill.c: "%s invoked oom-killer: gfp_mask=%#x(%pGg), nodemask=%*pbl, order=%d, oom_score_adj=%hd"
    ("a.out invoked oom-killer: gfp_mask=0x24280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), nodemask=0,2-3, order=0, "
     "oom_score_adj=0", 0, 0x24280ca),  # an MPOL_BIND allocation: %*pbl prints a list with commas
    ("a.out invoked oom-killer: gfp_mask=0x24280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), nodemask=0-1023, order=2, "
     "oom_score_adj=0", 2, 0x24280ca),
    ("a.out invoked oom-killer: gfp_mask=0x14000c0(GFP_KERNEL), nodemask=(null), order=3, oom_score_adj=0", 3, 0x14000c0),
    # 2.6.32 / 3.10 / 5.x+: no nodemask
    ("mysqld invoked oom-killer: gfp_mask=0x201da, order=0, oom_adj=0", 0, 0x201da),
    ("java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=1, oom_score_adj=0", 1, 0xcc0),
])
def test_oom_invoked_order_and_mode_in_every_era(line, order, mode):
    from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.patterns import classify_message

    match = classify_message(line)
    assert (match.form, match.fields["order"], match.fields["mode"]) == ("oom_invoked", order, mode)
