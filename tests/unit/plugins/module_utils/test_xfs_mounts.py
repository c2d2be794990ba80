# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mount table: XFS file systems once each, other mounts skipped with the reason."""

from __future__ import annotations

import os

from ansible_collections.memfrag.linux.plugins.module_utils._xfs import mounts

MOUNTINFO = """\
22 1 253:0 / / rw,relatime shared:1 - xfs /dev/mapper/rhel-root rw,attr2,inode64,noquota
23 22 0:21 / /proc rw,nosuid shared:5 - proc proc rw
40 22 253:2 / /var/lib/libvirt/images rw,noatime shared:20 - xfs /dev/mapper/vg-images rw,inode64
41 22 253:2 /vm01 /srv/vm\\040one rw,noatime shared:20 - xfs /dev/mapper/vg-images rw,inode64
42 22 8:1 / /boot rw,relatime shared:2 - ext4 /dev/sda1 rw
43 40 0:45 / /var/lib/libvirt/images/run rw - tmpfs tmpfs rw
44 22 253:3 /data /mnt/bind rw shared:30 master:2 - xfs /dev/mapper/vg-data rw
45 22 253:3 / /data rw shared:30 - xfs /dev/mapper/vg-data rw
garbage line without the separator
"""


def test_parse_fields_and_escapes():
    found, warnings = mounts.parse_mountinfo(MOUNTINFO)
    assert len(found) == 8
    assert warnings and "line 9" in warnings[0]
    bind = [item for item in found if item["id"] == 41][0]
    assert bind["mount"] == "/srv/vm one" and bind["root"] == "/vm01" and (bind["major"], bind["minor"]) == (253, 2)
    assert bind["fstype"] == "xfs" and bind["source"] == "/dev/mapper/vg-images"
    # optional fields (shared:30 master:2) do not shift fstype and source
    assert [item["fstype"] for item in found if item["id"] == 44] == ["xfs"]


def test_each_xfs_file_system_once_through_its_widest_mount():
    found, _warnings = mounts.parse_mountinfo(MOUNTINFO)
    chosen, skipped = mounts.xfs_filesystems(found)
    assert [item["mount"] for item in chosen] == ["/", "/data", "/var/lib/libvirt/images"]
    reasons = dict((item["path"], item["reason"]) for item in skipped)
    assert reasons["/boot"] == "ext4 file system, not XFS"
    assert reasons["/srv/vm one"].startswith("same XFS file system (253:2) as /var/lib/libvirt/images")
    # the bind mount listed before the whole file system is still the one skipped
    assert reasons["/mnt/bind"].startswith("same XFS file system (253:3) as /data")
    assert "/proc" not in reasons and "/var/lib/libvirt/images/run" not in reasons  # pseudo file systems: not listed


def test_lookups():
    found, _warnings = mounts.parse_mountinfo(MOUNTINFO)
    assert mounts.mount_of_device(found, os.makedev(253, 2))["mount"] == "/var/lib/libvirt/images"
    assert mounts.mount_of_device(found, os.makedev(9, 9)) is None
    assert mounts.mount_by_id(found, 43)["fstype"] == "tmpfs"
    assert mounts.mount_by_id(found, 99) is None
    assert mounts.device_text(os.makedev(253, 2)) == "253:2"


def test_read_mounts_of_a_tree(tmp_path):
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "mountinfo").write_text(MOUNTINFO)
    found, warnings = mounts.read_mounts(str(tmp_path))
    assert len(found) == 8 and len(warnings) == 1
