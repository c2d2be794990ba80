# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""xfs_extent_scan on the lab's own kernels (bookworm 6.1, bullseye 5.10) over SSH: a loop XFS file system made
in each guest, a fragmented file on it, and the module's count against the guest's ``xfs_io -c stat``.
Select with ``-m lab``."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.lab

MOUNT = "/mnt/memfrag-xfs"
IMAGE = "/var/tmp/memfrag-xfs.img"
BLOCKS = 3000  # about 6,000 extents: enough to find, quick under software emulation

# Write, punch every other block, write it again (as tests/helpers/xfs_loop.fragment does on the host).
FRAGMENT = r"""
import ctypes, ctypes.util, os, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
path, blocks = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"m" * (2 * blocks * 4096)); os.fsync(fd)
for i in range(blocks):
    assert libc.fallocate(fd, 3, (2 * i + 1) * 4096, 4096) == 0
os.fsync(fd)
for i in range(blocks):
    os.pwrite(fd, b"f" * 4096, (2 * i + 1) * 4096)
os.fsync(fd); os.close(fd)
"""

# 512M sparse: mkfs.xfs of bookworm (xfsprogs 6.1) refuses a file system under 300 MB.
SETUP = ("set -e; modprobe loop || true; modprobe xfs || true; truncate -s 512M %(image)s; "
         "dev=$(losetup --find --show %(image)s); echo $dev > %(image)s.dev; mkfs.xfs -q -f $dev; "
         "mkdir -p %(mount)s; mount -t xfs $dev %(mount)s; mkdir -p %(mount)s/vm; "
         "python3 - %(mount)s/vm/disk.img %(blocks)d << 'MEMFRAG_EOF'\n%(script)s\nMEMFRAG_EOF\n")
TEARDOWN = ("umount %(mount)s || umount -l %(mount)s; losetup -d $(cat %(image)s.dev) || true; "
            "rm -f %(image)s %(image)s.dev; rmdir %(mount)s || true")


def _nextents(vm_lab, vm, path):
    out = vm_lab.ssh(vm, "xfs_io -r -c stat %s" % path)
    return int(re.search(r"fsxattr\.nextents = (\d+)", out).group(1))


@pytest.fixture
def guest_xfs(vm_lab):
    values = {"image": IMAGE, "mount": MOUNT, "blocks": BLOCKS, "script": FRAGMENT}
    made = []
    try:
        for vm in vm_lab.vms:
            made.append(vm)
            vm_lab.ssh(vm, SETUP % values, timeout=600)
        yield dict((vm.name, _nextents(vm_lab, vm, MOUNT + "/vm/disk.img")) for vm in vm_lab.vms)
    finally:
        for vm in made:
            vm_lab.ssh(vm, TEARDOWN % values, check=False)


def test_scan_on_the_guest_kernels(vm_lab, guest_xfs, fleet_playbook):
    run = fleet_playbook("""
- hosts: all
  gather_facts: false
  become: true
  tasks:
    - name: Scan the guest's XFS
      memfrag.linux.xfs_extent_scan:
        paths: [%s]
        min_extents: 1000
    - name: The same with one fstatat per file
      memfrag.linux.xfs_extent_scan:
        paths: [%s]
        min_extents: 1000
        method: stat
""" % (MOUNT, MOUNT), vm_lab.inventory())
    assert run.rc == 0, run
    for vm in vm_lab.vms:
        (result,) = run.results("Scan the guest's XFS", vm.name)
        assert result["extent_map"]["kernel_release"] == vm.kernel_release
        assert result["extent_map"]["era"] == "iext_btree"  # 5.10 and 6.1 are both past 4.15
        assert [item["path"] for item in result["files"]] == [MOUNT + "/vm/disk.img"]
        assert result["files"][0]["extents"] == guest_xfs[vm.name] >= 2 * BLOCKS - 100
        assert result["scanned"][0]["method"] == "bulkstat"
        (by_stat,) = run.results("The same with one fstatat per file", vm.name)
        assert by_stat["files"][0]["extents"] == guest_xfs[vm.name]
