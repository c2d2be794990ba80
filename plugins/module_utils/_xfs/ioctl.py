# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two XFS ioctls the scan uses, from the standard library (fcntl, struct, ctypes).

- ``FS_IOC_FSGETXATTR`` (``XFS_IOC_FSGETXATTR`` before 4.5, same number): ``fsx_nextents`` is the number
  of records in the file's data-fork extent map, read from the inode (the in-core count when the map is
  loaded, else the on-disk one) -- the ioctl never reads or maps the extents themselves. This is what
  ``xfs_io -c stat`` prints as ``fsxattr.nextents``.
- ``XFS_IOC_FSBULKSTAT`` (v1, every kernel since 2.6): the inode table in batches, so the tree walk can
  skip small files from ``getdents`` alone instead of one ``stat`` per file. Needs CAP_SYS_ADMIN.
"""


import ctypes
import fcntl
import itertools
import stat
import struct
import typing as t

# struct fsxattr: xflags, extsize, nextents, projid, cowextsize, 8 pad bytes.
_FSXATTR = struct.Struct("=5I8x")
FS_IOC_FSGETXATTR = (2 << 30) | (_FSXATTR.size << 16) | (ord("X") << 8) | 31
FS_XFLAG_EXTSZINHERIT = 0x1000


def fsgetxattr(fd: int) -> t.Dict[str, int]:
    """``xflags``, ``extsize`` (bytes) and ``nextents`` of an open file or directory.

    Raises OSError (ENOTTY on a file system without the ioctl, EBADF on an O_PATH descriptor).
    """
    buf = bytearray(_FSXATTR.size)
    fcntl.ioctl(fd, FS_IOC_FSGETXATTR, buf, True)
    xflags, extsize, nextents, _projid, _cowextsize = _FSXATTR.unpack(bytes(buf))
    return {"xflags": xflags, "extsize": extsize, "nextents": nextents}


class _BsTime(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_int32)]  # time_t, as the kernel's compat layer expects


class XfsBstat(ctypes.Structure):
    """struct xfs_bstat (bulkstat v1); only its layout is used, for the field offsets."""

    _fields_ = [
        ("bs_ino", ctypes.c_uint64), ("bs_mode", ctypes.c_uint16), ("bs_nlink", ctypes.c_uint16),
        ("bs_uid", ctypes.c_uint32), ("bs_gid", ctypes.c_uint32), ("bs_rdev", ctypes.c_uint32),
        ("bs_blksize", ctypes.c_int32), ("bs_size", ctypes.c_int64), ("bs_atime", _BsTime),
        ("bs_mtime", _BsTime), ("bs_ctime", _BsTime), ("bs_blocks", ctypes.c_int64),
        ("bs_xflags", ctypes.c_uint32), ("bs_extsize", ctypes.c_int32), ("bs_extents", ctypes.c_int32),
        ("bs_gen", ctypes.c_uint32), ("bs_projid_lo", ctypes.c_uint16), ("bs_forkoff", ctypes.c_uint16),
        ("bs_projid_hi", ctypes.c_uint16), ("bs_sick", ctypes.c_uint16), ("bs_checked", ctypes.c_uint16),
        ("bs_pad", ctypes.c_ubyte * 2), ("bs_cowextsize", ctypes.c_uint32), ("bs_dmevmask", ctypes.c_uint32),
        ("bs_dmstate", ctypes.c_uint16), ("bs_aextents", ctypes.c_uint16),
    ]


class _BulkReq(ctypes.Structure):
    _fields_ = [("lastip", ctypes.c_void_p), ("icount", ctypes.c_int32), ("ubuffer", ctypes.c_void_p),
                ("ocount", ctypes.c_void_p)]


XFS_IOC_FSBULKSTAT = (3 << 30) | (ctypes.sizeof(_BulkReq) << 16) | (ord("X") << 8) | 101
_BSTAT_SIZE = ctypes.sizeof(XfsBstat)
# bs_blocks counts file system blocks (di_nblocks + delayed blocks), unlike stat's 512-byte st_blocks.
_INO_MODE_BLOCKS = struct.Struct("=QH%dxq" % (XfsBstat.bs_blocks.offset - XfsBstat.bs_mode.offset - 2))
_BLOCKS_WORD = XfsBstat.bs_blocks.offset // 8
_RECORD_WORDS = _BSTAT_SIZE // 8


def bulkstat_large_files(fd: int, min_blocks: int, batch: int = 1024,
                         keep_going: t.Callable[[], bool] = lambda: True) -> t.Tuple[t.Dict[int, int], int, bool]:
    """Regular files of the file system of ``fd`` holding at least ``min_blocks`` blocks.

    Returns ``({inode: blocks}, inodes seen, finished)``; ``finished`` is False when ``keep_going``
    said stop between batches. Raises OSError when the ioctl is refused (EPERM without CAP_SYS_ADMIN,
    ENOTTY off XFS).
    """
    buf = ctypes.create_string_buffer(_BSTAT_SIZE * batch)
    lastino = ctypes.c_uint64(0)
    ocount = ctypes.c_int32(0)
    req = _BulkReq(ctypes.addressof(lastino), batch, ctypes.addressof(buf), ctypes.addressof(ocount))
    found = {}  # type: t.Dict[int, int]
    seen = 0
    # The records' 8-byte words, read in place: bs_blocks of every record is picked at C speed, a batch without a
    # large file costs one max(), and only the few large ones are unpacked.
    words = memoryview(buf).cast("B").cast("q") if _BSTAT_SIZE % 8 == 0 else None
    while True:
        if not keep_going():
            return found, seen, False
        fcntl.ioctl(fd, XFS_IOC_FSBULKSTAT, req)
        count = ocount.value
        if count <= 0:
            return found, seen, True
        seen += count
        if words is not None:
            blocks = words[_BLOCKS_WORD:count * _RECORD_WORDS:_RECORD_WORDS]
            if max(blocks) < min_blocks:
                continue
            indexes = itertools.compress(range(count), map(min_blocks.__le__, blocks))
        else:  # pragma: no cover - the record is 8-byte aligned on every ABI we know
            indexes = range(count)
        for index in indexes:
            ino, mode, nblocks = _INO_MODE_BLOCKS.unpack_from(buf, index * _BSTAT_SIZE)
            if nblocks >= min_blocks and stat.S_ISREG(mode):
                found[ino] = nblocks
