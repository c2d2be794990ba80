# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GFP flag names for a ``mode:0x...`` value, per kernel era.

XFS always prints ``mode:0x%x`` without names, and kernels before ~4.5 print page allocation
failures the same way, so the bit layout of the kernel that wrote the line is needed to say what
the allocation was. Each era's bits below sit next to the header they were read from (upstream
tags unless a distribution kernel is named): the layout changed in 4.4 (gfp rework), 4.10
(__GFP_OTHER_NODE removed), 4.15 (COLD/NOTRACK removed, bits reshuffled), 5.1 (bits reshuffled),
5.14 (__GFP_SKIP_KASAN_POISON, unconditional until 5.18) and 6.3 (__GFP_ATOMIC removed); 6.15
prints single flags in bit order. Distribution kernels differ where they backported: RHEL 6
(__GFP_NO_KSWAPD, __GFP_OTHER_NODE, GFP_TRANSHUGE), RHEL 7 (__GFP_ACCOUNT from 7.4), 4.14.y from
4.14.67 (no __GFP_NOTRACK). One table per era, shared by the ``gfp_flags`` filter and the
``kernel_log_scan`` module.

Decoding follows the kernel's own ``%pGg`` (lib/vsprintf.c format_flags over the
``__def_gfpflag_names`` of include/trace/events/mmflags.h, used by mm/debug.c): walk the table in
order, print an entry when all its bits are set and clear them, so composite names (GFP_KERNEL,
GFP_NOFS, ...) come before single flags; bits left at the end are printed as one hex value. For
eras before %pGg existed (2.6.32, 3.10, 4.4) the composite names are the gfp.h definitions of
that era, in the same most-bits-first order.
"""


import re
import typing as t
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import Release, require_release as parse_release


# ---- single bits per era -----------------------------------------------------------------------

# Linux 2.6.32, include/linux/gfp.h (__GFP_WAIT ... __GFP_NOTRACK; zone modifiers in the low 4 bits).
_BITS_2_6_32 = {
    "__GFP_DMA": 0x1, "__GFP_HIGHMEM": 0x2, "__GFP_DMA32": 0x4, "__GFP_MOVABLE": 0x8,
    "__GFP_WAIT": 0x10, "__GFP_HIGH": 0x20, "__GFP_IO": 0x40, "__GFP_FS": 0x80,
    "__GFP_COLD": 0x100, "__GFP_NOWARN": 0x200, "__GFP_REPEAT": 0x400, "__GFP_NOFAIL": 0x800,
    "__GFP_NORETRY": 0x1000, "__GFP_COMP": 0x4000, "__GFP_ZERO": 0x8000,
    "__GFP_NOMEMALLOC": 0x10000, "__GFP_HARDWALL": 0x20000, "__GFP_THISNODE": 0x40000,
    "__GFP_RECLAIMABLE": 0x80000, "__GFP_NOTRACK": 0x200000,
}

# RHEL 6, kernel-2.6.32-*.el6 include/linux/gfp.h: transparent huge pages were backported (6.2) with
# __GFP_NO_KSWAPD and GFP_TRANSHUGE, and __GFP_OTHER_NODE with them (values as in upstream 2.6.39).
_BITS_2_6_32_EL6 = dict(_BITS_2_6_32)
_BITS_2_6_32_EL6.update({"__GFP_NO_KSWAPD": 0x400000, "__GFP_OTHER_NODE": 0x800000})

# Linux 3.10, include/linux/gfp.h (__GFP_MEMALLOC 3.6, __GFP_KMEMCG 3.8, __GFP_NO_KSWAPD 2.6.38,
# __GFP_OTHER_NODE 2.6.39, __GFP_WRITE 3.2). RHEL 7 (3.10.0-*.el7) from 7.4 (3.10.0-693) reuses
# 0x100000 as __GFP_ACCOUNT; before that it is __GFP_KMEMCG as upstream.
_BITS_3_10 = dict(_BITS_2_6_32)
_BITS_3_10.update({
    "__GFP_MEMALLOC": 0x2000, "__GFP_KMEMCG": 0x100000, "__GFP_NO_KSWAPD": 0x400000,
    "__GFP_OTHER_NODE": 0x800000, "__GFP_WRITE": 0x1000000,
})
_EL7_ACCOUNT_SINCE = 693  # RHEL 7.4 is 3.10.0-693.el7

# Linux 4.4, include/linux/gfp.h ("mm, page_alloc: distinguish between being unable to sleep, unwilling
# to sleep and avoiding waking kswapd": __GFP_WAIT split into __GFP_DIRECT_RECLAIM/__GFP_KSWAPD_RECLAIM).
# 4.4 itself still had the inverted __GFP_NOACCOUNT (0x100000); 4.5 made it __GFP_ACCOUNT.
_BITS_4_4 = {
    "__GFP_DMA": 0x1, "__GFP_HIGHMEM": 0x2, "__GFP_DMA32": 0x4, "__GFP_MOVABLE": 0x8,
    "__GFP_RECLAIMABLE": 0x10, "__GFP_HIGH": 0x20, "__GFP_IO": 0x40, "__GFP_FS": 0x80,
    "__GFP_COLD": 0x100, "__GFP_NOWARN": 0x200, "__GFP_REPEAT": 0x400, "__GFP_NOFAIL": 0x800,
    "__GFP_NORETRY": 0x1000, "__GFP_MEMALLOC": 0x2000, "__GFP_COMP": 0x4000, "__GFP_ZERO": 0x8000,
    "__GFP_NOMEMALLOC": 0x10000, "__GFP_HARDWALL": 0x20000, "__GFP_THISNODE": 0x40000,
    "__GFP_ATOMIC": 0x80000, "__GFP_ACCOUNT": 0x100000, "__GFP_NOTRACK": 0x200000,
    "__GFP_DIRECT_RECLAIM": 0x400000, "__GFP_OTHER_NODE": 0x800000, "__GFP_WRITE": 0x1000000,
    "__GFP_KSWAPD_RECLAIM": 0x2000000,
}

# Linux 4.10, include/linux/gfp.h ("mm: remove __GFP_OTHER_NODE": WRITE and KSWAPD_RECLAIM move down).
# 4.13 renamed __GFP_REPEAT to __GFP_RETRY_MAYFAIL (same bit). The 4.14.y stable series dropped
# __GFP_NOTRACK with the kmemcheck removal (at least from 4.14.67): 0x200000 has no name there.
_BITS_4_10 = dict(_BITS_4_4)
del _BITS_4_10["__GFP_OTHER_NODE"]
_BITS_4_10.update({"__GFP_WRITE": 0x800000, "__GFP_KSWAPD_RECLAIM": 0x1000000})
_NOTRACK_GONE_IN_4_14 = (4, 14, 67)

# Linux 4.15, include/linux/gfp.h (kmemcheck and __GFP_COLD gone, bits renumbered).
_BITS_4_15 = {
    "__GFP_DMA": 0x1, "__GFP_HIGHMEM": 0x2, "__GFP_DMA32": 0x4, "__GFP_MOVABLE": 0x8,
    "__GFP_RECLAIMABLE": 0x10, "__GFP_HIGH": 0x20, "__GFP_IO": 0x40, "__GFP_FS": 0x80,
    "__GFP_WRITE": 0x100, "__GFP_NOWARN": 0x200, "__GFP_RETRY_MAYFAIL": 0x400, "__GFP_NOFAIL": 0x800,
    "__GFP_NORETRY": 0x1000, "__GFP_MEMALLOC": 0x2000, "__GFP_COMP": 0x4000, "__GFP_ZERO": 0x8000,
    "__GFP_NOMEMALLOC": 0x10000, "__GFP_HARDWALL": 0x20000, "__GFP_THISNODE": 0x40000,
    "__GFP_ATOMIC": 0x80000, "__GFP_ACCOUNT": 0x100000, "__GFP_DIRECT_RECLAIM": 0x200000,
    "__GFP_KSWAPD_RECLAIM": 0x400000,
}

# Linux 5.1, include/linux/gfp.h (bits reshuffled; 0x800000 was the debug-only __GFP_NOLOCKDEP).
_BITS_5_1 = {
    "__GFP_DMA": 0x1, "__GFP_HIGHMEM": 0x2, "__GFP_DMA32": 0x4, "__GFP_MOVABLE": 0x8,
    "__GFP_RECLAIMABLE": 0x10, "__GFP_HIGH": 0x20, "__GFP_IO": 0x40, "__GFP_FS": 0x80,
    "__GFP_ZERO": 0x100, "__GFP_ATOMIC": 0x200, "__GFP_DIRECT_RECLAIM": 0x400,
    "__GFP_KSWAPD_RECLAIM": 0x800, "__GFP_WRITE": 0x1000, "__GFP_NOWARN": 0x2000,
    "__GFP_RETRY_MAYFAIL": 0x4000, "__GFP_NOFAIL": 0x8000, "__GFP_NORETRY": 0x10000,
    "__GFP_MEMALLOC": 0x20000, "__GFP_COMP": 0x40000, "__GFP_NOMEMALLOC": 0x80000,
    "__GFP_HARDWALL": 0x100000, "__GFP_THISNODE": 0x200000, "__GFP_ACCOUNT": 0x400000,
}

# Linux 5.14, include/linux/gfp.h: __GFP_ZEROTAGS 0x800000 and __GFP_SKIP_KASAN_POISON 0x1000000,
# unconditional and part of GFP_HIGHUSER_MOVABLE (so 0x1100cca prints GFP_HIGHUSER_MOVABLE there).
_BITS_5_14 = dict(_BITS_5_1)
_BITS_5_14.update({"__GFP_ZEROTAGS": 0x800000, "__GFP_SKIP_KASAN_POISON": 0x1000000})

# Linux 5.18, include/linux/gfp.h (include/linux/gfp_types.h from 6.0): the KASAN bits exist only with
# CONFIG_KASAN_HW_TAGS (arm64 MTE), so on the kernels that write these logs they are 0.
_BITS_5_18 = dict(_BITS_5_1)
_BITS_5_18["__GFP_ZEROTAGS"] = 0x800000

# Linux 6.3, include/linux/gfp_types.h ("mm: discard __GFP_ATOMIC"). 6.15 keeps the bits; its
# include/trace/events/mmflags.h ("tracing: gfp: Remove duplication of recording GFP flags") lists the
# single flags in bit order, after __GFP_RECLAIM.
_BITS_6_3 = dict(_BITS_5_18)
del _BITS_6_3["__GFP_ATOMIC"]


def _composites_pre_4_4(b: t.Dict[str, int], thp: bool) -> t.List[t.Tuple[str, int]]:
    wait_io_fs = b["__GFP_WAIT"] | b["__GFP_IO"] | b["__GFP_FS"]
    user = wait_io_fs | b["__GFP_HARDWALL"]
    highuser_movable = user | b["__GFP_HIGHMEM"] | b["__GFP_MOVABLE"]
    out = []
    if thp:  # transparent huge pages arrived in 2.6.38 (RHEL 6.2 backported them)
        out.append(("GFP_TRANSHUGE", highuser_movable | b["__GFP_COMP"] | b["__GFP_NOMEMALLOC"]
                    | b["__GFP_NORETRY"] | b["__GFP_NOWARN"] | b["__GFP_NO_KSWAPD"]))
    out += [
        ("GFP_HIGHUSER_MOVABLE", highuser_movable),
        ("GFP_HIGHUSER", user | b["__GFP_HIGHMEM"]),
        ("GFP_USER", user),
        ("GFP_TEMPORARY", wait_io_fs | b["__GFP_RECLAIMABLE"]),
        ("GFP_KERNEL", wait_io_fs),
        ("GFP_NOFS", b["__GFP_WAIT"] | b["__GFP_IO"]),
        ("GFP_ATOMIC", b["__GFP_HIGH"]),
        ("GFP_NOIO", b["__GFP_WAIT"]),
    ]
    return out


def _composites_reclaim(b: t.Dict[str, int], release: Release, era: str) -> t.List[t.Tuple[str, int]]:
    reclaim = b["__GFP_DIRECT_RECLAIM"] | b["__GFP_KSWAPD_RECLAIM"]
    kernel = reclaim | b["__GFP_IO"] | b["__GFP_FS"]
    user = kernel | b["__GFP_HARDWALL"]
    # 5.14-5.17: GFP_HIGHUSER_MOVABLE also carries __GFP_SKIP_KASAN_POISON (0 where the bit is absent).
    highuser_movable = user | b["__GFP_HIGHMEM"] | b["__GFP_MOVABLE"] | b.get("__GFP_SKIP_KASAN_POISON", 0)
    atomic = b["__GFP_HIGH"] | b.get("__GFP_ATOMIC", 0) | b["__GFP_KSWAPD_RECLAIM"]
    if era == "4.4" and release < (4, 8, 0):  # GFP_TRANSHUGE_LIGHT arrived in 4.8
        light = None
        transhuge = (highuser_movable | b["__GFP_COMP"] | b["__GFP_NOMEMALLOC"] | b["__GFP_NORETRY"]
                     | b["__GFP_NOWARN"]) & ~reclaim
    else:
        light = (highuser_movable | b["__GFP_COMP"] | b["__GFP_NOMEMALLOC"] | b["__GFP_NOWARN"]) & ~reclaim
        transhuge = light | b["__GFP_DIRECT_RECLAIM"]
    out = [("GFP_TRANSHUGE", transhuge)]
    if light is not None:
        out.append(("GFP_TRANSHUGE_LIGHT", light))
    out += [
        ("GFP_HIGHUSER_MOVABLE", highuser_movable),
        ("GFP_HIGHUSER", user | b["__GFP_HIGHMEM"]),
        ("GFP_USER", user),
    ]
    if release < (4, 14, 0):  # "mm: treewide: remove GFP_TEMPORARY"
        out.append(("GFP_TEMPORARY", kernel | b["__GFP_RECLAIMABLE"]))
    out += [
        ("GFP_KERNEL_ACCOUNT", kernel | b["__GFP_ACCOUNT"] if "__GFP_ACCOUNT" in b else 0),
        ("GFP_KERNEL", kernel),
        ("GFP_NOFS", reclaim | b["__GFP_IO"]),
        ("GFP_ATOMIC", atomic),
        ("GFP_NOIO", reclaim),
        ("GFP_NOWAIT", b["__GFP_KSWAPD_RECLAIM"]),
    ]
    return out


# Single flags in the order of mmflags.h before 6.15 (after the composites); a name missing from an
# era's bit table is skipped.
_SINGLE_ORDER = [
    ("GFP_DMA", "__GFP_DMA"), ("__GFP_HIGHMEM", "__GFP_HIGHMEM"), ("GFP_DMA32", "__GFP_DMA32"),
    ("__GFP_HIGH", "__GFP_HIGH"), ("__GFP_ATOMIC", "__GFP_ATOMIC"), ("__GFP_WAIT", "__GFP_WAIT"),
    ("__GFP_IO", "__GFP_IO"), ("__GFP_FS", "__GFP_FS"), ("__GFP_COLD", "__GFP_COLD"),
    ("__GFP_NOWARN", "__GFP_NOWARN"), ("__GFP_REPEAT", "__GFP_REPEAT"),
    ("__GFP_RETRY_MAYFAIL", "__GFP_RETRY_MAYFAIL"), ("__GFP_NOFAIL", "__GFP_NOFAIL"),
    ("__GFP_NORETRY", "__GFP_NORETRY"), ("__GFP_COMP", "__GFP_COMP"), ("__GFP_ZERO", "__GFP_ZERO"),
    ("__GFP_NOMEMALLOC", "__GFP_NOMEMALLOC"), ("__GFP_MEMALLOC", "__GFP_MEMALLOC"),
    ("__GFP_HARDWALL", "__GFP_HARDWALL"), ("__GFP_THISNODE", "__GFP_THISNODE"),
    ("__GFP_RECLAIMABLE", "__GFP_RECLAIMABLE"), ("__GFP_MOVABLE", "__GFP_MOVABLE"),
    ("__GFP_ACCOUNT", "__GFP_ACCOUNT"), ("__GFP_KMEMCG", "__GFP_KMEMCG"),
    ("__GFP_NOTRACK", "__GFP_NOTRACK"), ("__GFP_NO_KSWAPD", "__GFP_NO_KSWAPD"),
    ("__GFP_WRITE", "__GFP_WRITE"), ("__GFP_RECLAIM", None),
    ("__GFP_DIRECT_RECLAIM", "__GFP_DIRECT_RECLAIM"), ("__GFP_KSWAPD_RECLAIM", "__GFP_KSWAPD_RECLAIM"),
    ("__GFP_OTHER_NODE", "__GFP_OTHER_NODE"), ("__GFP_ZEROTAGS", "__GFP_ZEROTAGS"),
    ("__GFP_SKIP_KASAN_POISON", "__GFP_SKIP_KASAN_POISON"),
]

ERAS = ("2.6.32", "3.10", "4.4", "4.10", "4.15", "5.1", "5.14", "5.18", "6.3", "6.15")


def era_of(release: str) -> str:
    """The GFP-layout era of a kernel release (one of ERAS)."""
    version = parse_release(release)
    if version < (3, 0, 0):
        return "2.6.32"
    if version < (4, 4, 0):
        return "3.10"
    if version < (4, 10, 0):
        return "4.4"
    if version < (4, 15, 0):
        return "4.10"
    if version < (5, 1, 0):
        return "4.15"
    if version < (5, 14, 0):
        return "5.1"
    if version < (5, 18, 0):
        return "5.14"
    if version < (6, 3, 0):
        return "5.18"
    if version < (6, 15, 0):
        return "6.3"
    return "6.15"


def _el_build(release: str, dist: str) -> t.Optional[int]:
    # "3.10.0-514.26.2.el7.x86_64" -> 514: the RHEL kernel build number that tells the minor release.
    match = re.match(r"\s*\d+\.\d+\.\d+-(\d+)[^ ]*\.%s" % dist, str(release))
    return int(match.group(1)) if match else None


def flag_table(release: str) -> t.List[t.Tuple[str, int]]:
    """(name, mask) in %pGg order for ``release``: composites first, then single flags."""
    version = parse_release(release)
    era = era_of(release)
    if era == "2.6.32":
        el6 = _el_build(release, "el6") is not None
        bits = dict(_BITS_2_6_32_EL6 if el6 else _BITS_2_6_32)
        table = _composites_pre_4_4(bits, thp=el6 or version >= (2, 6, 38))
    elif era == "3.10":
        bits = dict(_BITS_3_10)
        build = _el_build(release, "el7")
        if build is not None and build >= _EL7_ACCOUNT_SINCE:
            bits["__GFP_ACCOUNT"] = bits.pop("__GFP_KMEMCG")
        table = _composites_pre_4_4(bits, thp=True)
    else:
        bits = dict({"4.4": _BITS_4_4, "4.10": _BITS_4_10, "4.15": _BITS_4_15, "5.1": _BITS_5_1,
                     "5.14": _BITS_5_14, "5.18": _BITS_5_18, "6.3": _BITS_6_3, "6.15": _BITS_6_3}[era])
        if era == "4.4" and version < (4, 5, 0):  # 4.4 still had the inverted __GFP_NOACCOUNT
            bits["__GFP_NOACCOUNT"] = bits.pop("__GFP_ACCOUNT")
        if version >= (4, 13, 0) and "__GFP_REPEAT" in bits:  # renamed, same bit
            bits["__GFP_RETRY_MAYFAIL"] = bits.pop("__GFP_REPEAT")
        if (4, 14, 0) <= version < (4, 15, 0) and version >= _NOTRACK_GONE_IN_4_14:
            del bits["__GFP_NOTRACK"]
        table = _composites_reclaim(bits, version, era)
    if era == "6.15":
        # mmflags.h since 6.15: GFP_DMA, GFP_DMA32, __GFP_RECLAIM, then every single flag in bit order.
        table += [("GFP_DMA", bits["__GFP_DMA"]), ("GFP_DMA32", bits["__GFP_DMA32"]),
                  ("__GFP_RECLAIM", bits["__GFP_DIRECT_RECLAIM"] | bits["__GFP_KSWAPD_RECLAIM"])]
        table += sorted(bits.items(), key=lambda item: item[1])
        return [(name, mask) for name, mask in table if mask]
    for name, bit_name in _SINGLE_ORDER:
        if bit_name is None:
            if "__GFP_DIRECT_RECLAIM" in bits:
                table.append((name, bits["__GFP_DIRECT_RECLAIM"] | bits["__GFP_KSWAPD_RECLAIM"]))
        elif bit_name in bits:
            table.append((name, bits[bit_name]))
    if "__GFP_NOACCOUNT" in bits:
        table.append(("__GFP_NOACCOUNT", bits["__GFP_NOACCOUNT"]))
    return [(name, mask) for name, mask in table if mask]


def decode(mode: int, release: str) -> t.List[str]:
    """Flag names for ``mode`` as the kernel ``release`` would print them with %pGg.

    Leftover bits no name covers come last as one hex string (``0x4000000``), as the kernel does.
    ``0`` decodes to ``[]`` (the kernel prints ``none``).
    """
    if isinstance(mode, bool) or not isinstance(mode, int) or mode < 0:
        raise ValueError("mode must be a non-negative integer, got %r" % (mode,))
    names = []
    left = mode
    for name, mask in flag_table(release):
        if left & mask == mask:
            names.append(name)
            left &= ~mask
            if not left:
                break
    if left:
        names.append("%#x" % left)
    return names


def parse_mode(value: t.Union[int, str]) -> int:
    """``0x250``, ``"0x250"``, ``"250"`` (hex, as the kernel prints) or an int -> int."""
    if isinstance(value, bool):
        raise ValueError("mode must be an integer or a hex string, got %r" % (value,))
    if isinstance(value, int):
        if value < 0:
            raise ValueError("mode must not be negative, got %r" % (value,))
        return value
    text = str(value).strip().lower()
    if text.startswith("mode:"):
        text = text[5:]
    if text.startswith("0x"):
        text = text[2:]
    if not text or not re.match(r"^[0-9a-f]+$", text):
        raise ValueError("mode must be an integer or a hex string like 0x250, got %r" % (value,))
    return int(text, 16)


def split_names(printed: str) -> t.List[str]:
    """Names the kernel printed in ``mode:0x..(A|B|C)``; ``none`` means no flags."""
    text = printed.strip()
    if not text or text == "none":
        return []
    return [part.strip() for part in text.split("|") if part.strip()]
