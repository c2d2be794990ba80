# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mount table (``/proc/self/mountinfo``): which file systems are XFS and where they are mounted.

mountinfo rather than /proc/mounts: it has each mount's device number (to match ``st_dev``), its id
(to match ``mnt_id`` in ``/proc/PID/fdinfo``) and the root of a bind mount.
"""


import os
import re
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import read_text

_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as \040 \011 \012 \134.
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo(text: str) -> t.Tuple[t.List[t.Dict[str, t.Any]], t.List[str]]:
    """Mounts in the order listed, and a warning per line that is not in the kernel's format."""
    mounts = []
    warnings = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
            major, minor = fields[2].split(":")
            mounts.append({
                "id": int(fields[0]), "parent": int(fields[1]), "major": int(major), "minor": int(minor),
                "root": _unescape(fields[3]), "mount": _unescape(fields[4]), "options": fields[5],
                "fstype": fields[dash + 1], "source": _unescape(fields[dash + 2]),
            })
        except (ValueError, IndexError):
            warnings.append("mountinfo line %d is not in the kernel's format; ignored: %r" % (number, line[:200]))
    return mounts, warnings


def read_mounts(proc_root: str) -> t.Tuple[t.List[t.Dict[str, t.Any]], t.List[str]]:
    """Parse ``proc_root/self/mountinfo`` (raises ProcFileError when it cannot be read)."""
    return parse_mountinfo(read_text(proc_root, "self/mountinfo"))


def device(mount: t.Mapping[str, t.Any]) -> int:
    return os.makedev(mount["major"], mount["minor"])


def device_text(dev: int) -> str:
    return "%d:%d" % (os.major(dev), os.minor(dev))


def xfs_filesystems(mounts: t.Sequence[t.Mapping[str, t.Any]]) -> t.Tuple[t.List[t.Dict[str, t.Any]], t.List[t.Dict[str, str]]]:
    """One mount per XFS file system (its whole tree where possible), and the other mounts skipped with why.

    A file system mounted twice (bind mounts, the same device at two places) is scanned once, through the
    mount showing the most of it (root ``/``, else the shortest root). Mounts that are not XFS are listed
    as skipped only when they come from a block device; pseudo file systems (proc, sysfs, cgroup) are left out.
    """
    chosen = {}  # type: t.Dict[int, t.Dict[str, t.Any]]
    skipped = []
    for mount in mounts:
        if mount["fstype"] != "xfs":
            if mount["source"].startswith("/dev/"):
                skipped.append({"path": mount["mount"], "reason": "%s file system, not XFS" % mount["fstype"]})
            continue
        dev = device(mount)
        best = chosen.get(dev)
        if best is None or (len(mount["root"]), mount["id"]) < (len(best["root"]), best["id"]):
            if best is not None:
                skipped.append(_same_fs(best, mount))
            chosen[dev] = dict(mount)
        else:
            skipped.append(_same_fs(mount, best))
    return sorted(chosen.values(), key=lambda item: item["mount"]), skipped


def _same_fs(duplicate: t.Mapping[str, t.Any], kept: t.Mapping[str, t.Any]) -> t.Dict[str, str]:
    return {"path": duplicate["mount"], "reason": "same XFS file system (%s) as %s, scanned there"
            % (device_text(device(kept)), kept["mount"])}


def mount_of_device(mounts: t.Sequence[t.Mapping[str, t.Any]], dev: int) -> t.Optional[t.Dict[str, t.Any]]:
    """The mount of device ``dev`` that shows most of it, or None."""
    found = [mount for mount in mounts if device(mount) == dev]
    if not found:
        return None
    return dict(min(found, key=lambda item: (len(item["root"]), item["id"])))


def mount_by_id(mounts: t.Sequence[t.Mapping[str, t.Any]], mount_id: int) -> t.Optional[t.Dict[str, t.Any]]:
    for mount in mounts:
        if mount["id"] == mount_id:
            return dict(mount)
    return None
