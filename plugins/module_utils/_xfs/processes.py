# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Processes and the files they hold, from ``/proc/PID/{comm,fd,fdinfo,maps}`` under a root.

Everything under the root is untrusted text: an ``fd`` entry is read with ``readlink`` and never
followed. Its target is a path in the process's mount namespace; it is looked up again in ours
(without symlinks, see walk.resolve) and accepted only when ``fdinfo``'s ``mnt_id`` names a mount of
ours on the same device and, where the kernel prints it (``ino:``, 5.14+), the same inode.

A pid in a kernel message is the thread that looped (``current->pid``); ``/proc/<tid>`` answers for a
thread too, with that thread's ``comm`` and the thread group's open files.
"""


import os
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, path_under, read_bytes, read_text

TASK_COMM_LEN = 16  # the kernel keeps 15 characters of a command name
_ACCMODE = 0o3      # O_ACCMODE: 1 write-only, 2 read-write
DELETED = " (deleted)"


def list_pids(proc_root: str) -> t.List[int]:
    try:
        names = os.listdir(path_under(proc_root, "."))
    except (OSError, ProcFileError):
        return []
    return sorted(int(name) for name in names if name.isdigit())


def read_comm(proc_root: str, pid: int) -> t.Optional[str]:
    try:
        return read_text(proc_root, "%d/comm" % pid, limit=4096).rstrip("\n")
    except ProcFileError:
        return None


def fd_targets(proc_root: str, pid: int) -> t.List[t.Tuple[int, str]]:
    """``(fd, link text)`` of every open descriptor; raises OSError/ProcFileError when unreadable."""
    fd_dir = path_under(proc_root, "%d/fd" % pid)
    found = []
    for name in os.listdir(fd_dir):
        if not name.isdigit():
            continue
        try:
            found.append((int(name), os.readlink(os.path.join(fd_dir, name))))
        except OSError:
            continue  # closed since the listing, or not a link (a fixture tree): nothing to say
    return found


def read_fdinfo(proc_root: str, pid: int, fd: int) -> t.Dict[str, t.Optional[int]]:
    """``flags`` (octal in the file), ``mnt_id`` (3.15+) and ``ino`` (5.14+) of one descriptor; None when absent."""
    info = {"flags": None, "mnt_id": None, "ino": None}  # type: t.Dict[str, t.Optional[int]]
    try:
        text = read_text(proc_root, "%d/fdinfo/%d" % (pid, fd), limit=65536)
    except ProcFileError:
        return info
    for line in text.splitlines():
        key, _sep, value = line.partition(":")
        value = value.strip()
        try:
            if key == "flags":
                info["flags"] = int(value, 8)
            elif key in ("mnt_id", "ino"):
                info[key] = int(value)
        except ValueError:
            continue
    return info


def opened_for_write(flags: t.Optional[int]) -> bool:
    return flags is not None and flags & _ACCMODE in (1, 2)


def xfs_events(events: t.Iterable[t.Mapping[str, t.Any]]) -> t.List[t.Dict[str, t.Any]]:
    """The XFS deadlock events that name a process, one entry per (comm, pid), in first-seen order."""
    named = {}  # type: t.Dict[t.Tuple[str, int], t.Dict[str, t.Any]]
    for event in events or []:
        if not isinstance(event, dict) or event.get("kind") != "xfs_alloc_deadlock":
            continue
        comm, pid = event.get("comm"), event.get("pid")
        if not comm or not isinstance(pid, int) or isinstance(pid, bool):
            continue
        entry = named.setdefault((comm, pid), {"comm": comm, "pid": pid, "events": 0, "size": None})
        entry["events"] += 1
        if isinstance(event.get("size"), int):
            entry["size"] = max(entry["size"] or 0, event["size"])
    return list(named.values())


def match_processes(named: t.Sequence[t.Mapping[str, t.Any]], proc_root: str, limit: int = 20) -> t.List[t.Dict[str, t.Any]]:
    """For each (comm, pid) of the log: the live processes it stands for.

    ``matched_by: pid`` when that pid still runs under that command name; otherwise (it exited, or the pid
    was reused by another program) ``matched_by: comm`` with the processes now running under the name,
    or ``None`` with the reason.
    """
    comms = None  # type: t.Optional[t.Dict[int, t.Optional[str]]]
    result = []
    for item in named[:limit]:
        comm = item["comm"][:TASK_COMM_LEN - 1]
        entry = dict(item)
        live = read_comm(proc_root, item["pid"])
        if live == comm:
            entry.update(matched_by="pid", pids=[item["pid"]])
        else:
            if comms is None:
                comms = dict((pid, read_comm(proc_root, pid)) for pid in list_pids(proc_root))
            same = [pid for pid, name in sorted(comms.items()) if name == comm][:limit]
            why = ("pid %d has exited" % item["pid"] if live is None
                   else "pid %d is now %r, not %r" % (item["pid"], live, comm))
            if same:
                entry.update(matched_by="comm", pids=same, reason="%s; processes named %r now" % (why, comm))
            else:
                entry.update(matched_by=None, pids=[], reason="%s; no process is named %r now" % (why, comm))
        result.append(entry)
    return result


def mapped_files(proc_root: str, pid: int, inodes: t.Set[int]) -> t.List[t.Tuple[int, int, bool]]:
    """``(dev, ino, shared writable)`` of the file mappings of ``pid`` whose inode is in ``inodes``."""
    try:
        data = read_bytes(proc_root, "%d/maps" % pid)
    except ProcFileError:
        return []
    # Most processes map none of the files: a byte search for each inode number (" 133 " between the device and
    # the path) skips them without parsing a line.
    if not any(b" %d " % ino in data for ino in inodes):
        return []
    found = []
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split(None, 5)
        if len(fields) < 5:
            continue
        try:
            ino = int(fields[4])
            if ino not in inodes:
                continue
            major, minor = fields[3].split(":")
            dev = os.makedev(int(major, 16), int(minor, 16))
        except ValueError:
            continue
        perms = fields[1]
        found.append((dev, ino, "w" in perms and perms.endswith("s")))
    return found


def holders(proc_root: str, wanted: t.Mapping[t.Tuple[int, int], str],
            mount_dev: t.Callable[[int], t.Optional[int]]) -> t.Dict[t.Tuple[int, int], t.List[t.Dict[str, t.Any]]]:
    """Processes holding each file of ``wanted`` ({(dev, ino): path}) open or mapped.

    ``mount_dev(mnt_id)`` gives the device of one of our mounts (None: not in our mount namespace).
    Each holder is ``{pid, comm, write, mapped}``; ``write`` means a descriptor opened for writing or a
    shared writable mapping.
    """
    if not wanted:
        return {}
    # Candidates by the last path component: the same file reached through another mount of the same
    # file system (a bind mount) has another path but the same name, device and inode.
    by_name = {}  # type: t.Dict[str, t.List[t.Tuple[t.Tuple[int, int], str]]]
    for key, path in wanted.items():
        by_name.setdefault(path.rsplit("/", 1)[-1], []).append((key, path))
    inodes = set(key[1] for key in wanted)
    found = {}  # type: t.Dict[t.Tuple[int, int], t.Dict[int, t.Dict[str, t.Any]]]
    for pid in list_pids(proc_root):
        try:
            targets = fd_targets(proc_root, pid)
        except (OSError, ProcFileError):
            targets = []
        for fd, target in targets:
            candidates = by_name.get(target.rsplit("/", 1)[-1])
            if not candidates:
                continue
            info = read_fdinfo(proc_root, pid, fd)
            for key, path in candidates:
                if info["mnt_id"] is not None and mount_dev(info["mnt_id"]) != key[0]:
                    continue  # another mount namespace or another file system
                if info["ino"] is not None:
                    if info["ino"] != key[1]:
                        continue
                elif target != path:
                    continue  # without the inode number only the exact path identifies the file
                holder = found.setdefault(key, {}).setdefault(pid, {"pid": pid, "write": False, "mapped": False})
                holder["write"] = holder["write"] or opened_for_write(info["flags"])
        for dev, ino, shared_write in mapped_files(proc_root, pid, inodes):
            if (dev, ino) in wanted:
                holder = found.setdefault((dev, ino), {}).setdefault(pid, {"pid": pid, "write": False, "mapped": False})
                holder["mapped"] = True
                holder["write"] = holder["write"] or shared_write
    result = {}
    for key, per_pid in found.items():
        result[key] = [{"pid": pid, "comm": read_comm(proc_root, pid), "write": per_pid[pid]["write"],
                        "mapped": per_pid[pid]["mapped"]} for pid in sorted(per_pid)]
    return result
