# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How much contiguous kernel memory a file's extent map needs, per XFS era.

XFS keeps the extent map of every open (or cached) file in memory while it is used. The allocations
that hold it are made with KM_NOFS and, until 6.9, without KM_MAYFAIL: ``kmem_alloc()`` then loops
forever and prints ``possible memory allocation deadlock ... in kmem_alloc`` every 100 tries when the
buddy allocator has no free block of that order. Read from the sources named below:

Extent list with an indirection array, 2.6.19 - 4.14 (e.g. RHEL 7's 3.10; read in
fs/xfs/libxfs/xfs_inode_fork.c of the RHEL 7.9 tree, same code as upstream 3.x/4.x):

- records are ``xfs_bmbt_rec_host_t``, 16 bytes;
- up to ``XFS_INLINE_EXTS`` (2) records live inside the inode fork: no allocation;
- up to ``XFS_LINEAR_EXTS`` (``XFS_IEXT_BUFSZ`` 4096 / 16 = 256) records: one direct list,
  ``kmem_realloc(roundup_pow_of_two(16 * n), KM_NOFS)`` (``xfs_iext_realloc_direct``);
- more: 4096-byte extent buffers of up to 256 records each plus the indirection array of one
  ``xfs_ext_irec_t`` (a pointer and two 32-bit counts: 16 bytes on 64-bit) per buffer, grown one entry at
  a time by ``xfs_iext_irec_new`` -> ``xfs_iext_realloc_indirect`` ->
  ``kmem_realloc(nlists * sizeof(xfs_ext_irec_t), KM_NOFS)``. Reading a file's extents in
  (``xfs_iread_extents`` -> ``xfs_iext_add``) fills every buffer, so ``nlists = ceil(n / 256)``; later
  inserts split buffers and ``xfs_iext_irec_compact`` only repacks below half full, so a file changed
  since it was read can have up to twice as many lists. The array outgrows a page at 65,537 extents:
  the familiar ``size 65552`` deadlock is the array of 4,097 lists, about 1.05 million extents, and
  ``kmalloc`` of 65,552 bytes is an order-5 (128 KiB) page allocation. 4.9-4.14 print the loop as
  ``in kmem_realloc``.

Extent b+tree, 4.15 and later (``xfs: use a b+tree for the in-core extent list``;
fs/xfs/libxfs/xfs_iext_tree.c): every leaf and node is ``NODE_SIZE`` (256) bytes, allocated with
``kmem_zalloc(NODE_SIZE, KM_NOFS)``; a root leaf with fewer than ``RECS_PER_LEAF`` (15) records is
``kmem_realloc``'d one 16-byte record at a time. Whatever the extent count, the map needs nothing
larger than 256 bytes: order 0. A file cannot be the reason for a high-order XFS deadlock there.

Extent-map buffers that fall back instead of looping (never a deadlock, but a contiguous attempt
first, which may compact or reclaim):

- ``XFS_IOC_GETBMAP[X]`` (``xfs_bmap``, ``xfs_io -c bmap``, which ask for ``2 * (nextents + 1)`` records):
  up to 4.14 ``xfs_getbmap`` allocates ``bmv_count * sizeof(struct getbmapx)`` (48 bytes) with
  ``kmem_zalloc(.., KM_MAYFAIL)`` / ``kmem_zalloc_large`` (vmalloc fallback), plus a fixed 16-map
  (512-byte) ``kmem_alloc(subnex * sizeof(*map), KM_MAYFAIL | KM_NOFS)`` -- the line often quoted in
  incident reports, which does not grow with the file; from 4.15 ``xfs_ioc_getbmap`` allocates
  ``bmv_count * sizeof(struct kgetbmap)`` (32 bytes) with ``kmem_zalloc_large``, later ``kvzalloc`` /
  ``kvcalloc`` (vmalloc fallback). ``xfs_fsr`` reads the map 128 records at a time: 4 KiB.
- FIEMAP (``filefrag``): up to 4.7 ``xfs_vn_fiemap`` goes through ``xfs_getbmap`` with ``bmv_count``
  capped at ``PAGE_SIZE * 16 / sizeof(struct getbmapx)`` (at most 64 KiB, vmalloc fallback); from 4.8 it
  is ``iomap_fiemap``, which copies one extent at a time and allocates no buffer.
"""


import ctypes
import typing as t

# Sizes from the structures above; the irec entry holds one pointer.
REC_BYTES = 16                      # xfs_bmbt_rec_host_t / struct xfs_iext_rec
INLINE_EXTS = 2                     # XFS_INLINE_EXTS
IEXT_BUFSZ = 4096                   # XFS_IEXT_BUFSZ
LINEAR_EXTS = IEXT_BUFSZ // REC_BYTES  # XFS_LINEAR_EXTS
IREC_BYTES = ctypes.sizeof(ctypes.c_void_p) + 8  # xfs_ext_irec_t: er_extbuf, er_extcount, er_extoff
NODE_SIZE = 256                     # xfs_iext_tree.c
RECS_PER_LEAF = (NODE_SIZE - 2 * ctypes.sizeof(ctypes.c_void_p)) // REC_BYTES
GETBMAPX_BYTES = 48                 # struct getbmapx (xfs_getbmap's buffer up to 4.14)
KGETBMAP_BYTES = 32                 # struct kgetbmap (4.15+)

ERA_EXTENT_LIST = "extent_list"     # 2.6.19 - 4.14
ERA_IEXT_BTREE = "iext_btree"       # 4.15+

_ERA_TEXT = {
    ERA_EXTENT_LIST: ("in-core extent list with an indirection array (2.6.19-4.14): 4 KiB extent buffers "
                      "and one 16-byte entry per buffer in a single array that grows with the extent count"),
    ERA_IEXT_BTREE: ("in-core extent b+tree (4.15+): 256-byte nodes and leaves whatever the extent count"),
}


def era_for_release(version: t.Tuple[int, int, int]) -> t.Optional[str]:
    """The extent-map era of a kernel (major, minor, patch), or None before 2.6.19 (not modelled)."""
    if version >= (4, 15, 0):
        return ERA_IEXT_BTREE
    if version >= (2, 6, 19):
        return ERA_EXTENT_LIST
    return None


def era_description(era: t.Optional[str]) -> str:
    if era is None:
        return "kernels before 2.6.19 kept one linear extent array; not modelled here"
    return _ERA_TEXT[era]


def _roundup_pow2(value: int) -> int:
    return 1 << (value - 1).bit_length() if value > 1 else 1


def _ceil_div(value: int, divisor: int) -> int:
    return -(-value // divisor)


def incore_alloc_bytes(extents: int, era: t.Optional[str]) -> t.Optional[int]:
    """Largest single KM_NOFS allocation the in-core map of ``extents`` extents needs (see the module doc).

    For the extent-list era this is the map as read from disk (fully packed buffers); a file changed since
    can need up to twice the indirection array. None when the era is not modelled.
    """
    extents = max(0, int(extents))
    if era == ERA_IEXT_BTREE:
        if extents == 0:
            return 0
        return REC_BYTES * extents if extents < RECS_PER_LEAF else NODE_SIZE
    if era == ERA_EXTENT_LIST:
        if extents <= INLINE_EXTS:
            return 0
        if extents <= LINEAR_EXTS:
            return _roundup_pow2(REC_BYTES * extents)
        return max(IEXT_BUFSZ, IREC_BYTES * _ceil_div(extents, LINEAR_EXTS))
    return None


def getbmap_bytes(extents: int, era: t.Optional[str]) -> t.Optional[int]:
    """Contiguous buffer a whole-file XFS_IOC_GETBMAPX by xfs_bmap asks for first (vmalloc fallback)."""
    count = 2 * (max(0, int(extents)) + 1)
    if era == ERA_IEXT_BTREE:
        return count * KGETBMAP_BYTES
    if era == ERA_EXTENT_LIST:
        return count * GETBMAPX_BYTES
    return None


def alloc_order(size: t.Optional[int], page_size: int) -> t.Optional[int]:
    """The buddy order of one allocation of ``size`` bytes (the kernel's get_order())."""
    if size is None:
        return None
    pages = _ceil_div(max(1, int(size)), page_size)
    return max(0, (pages - 1).bit_length())


def extents_for_irec_size(size: int) -> t.Optional[t.Tuple[int, int]]:
    """For an extent-list-era deadlock of ``size`` bytes that is an indirection array: the range of extent
    counts whose freshly read map has exactly that array (``None`` when ``size`` cannot be one)."""
    if size <= IEXT_BUFSZ or size % IREC_BYTES:
        return None
    lists = size // IREC_BYTES
    return ((lists - 1) * LINEAR_EXTS + 1, lists * LINEAR_EXTS)


def file_alloc(extents: int, era: t.Optional[str], page_size: int) -> t.Dict[str, t.Optional[int]]:
    """The per-file numbers the scan returns."""
    incore = incore_alloc_bytes(extents, era)
    bmap = getbmap_bytes(extents, era)
    return {"alloc_bytes": incore, "alloc_order": alloc_order(incore, page_size),
            "getbmap_bytes": bmap, "getbmap_order": alloc_order(bmap, page_size)}
