# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Processes from /proc-like trees: log events to live processes, holders of files, never following links."""

from __future__ import annotations

import os

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._xfs import processes

XFS_DEV = os.makedev(253, 2)
OTHER_DEV = os.makedev(8, 1)


class ProcTree(object):
    """A fake /proc: comm, fd links (to paths that do not exist here), fdinfo, maps."""

    def __init__(self, root):
        self.root = root

    def process(self, pid, comm, fds=(), maps=""):
        base = self.root / str(pid)
        (base / "fd").mkdir(parents=True)
        (base / "fdinfo").mkdir()
        (base / "comm").write_text(comm + "\n")
        (base / "maps").write_text(maps)
        for fd, target, flags, mnt_id, ino in fds:
            os.symlink(target, str(base / "fd" / str(fd)))
            lines = ["pos:\t0", "flags:\t%s" % flags]
            if mnt_id is not None:
                lines.append("mnt_id:\t%d" % mnt_id)
            if ino is not None:
                lines.append("ino:\t%d" % ino)
            (base / "fdinfo" / str(fd)).write_text("\n".join(lines) + "\n")
        return self


@pytest.fixture
def tree(tmp_path):
    return ProcTree(tmp_path)


def _mount_dev(mnt_id):
    return {40: XFS_DEV, 22: OTHER_DEV}.get(mnt_id)


def test_xfs_events_one_entry_per_process():
    events = [
        {"kind": "xfs_alloc_deadlock", "comm": "qemu-kvm", "pid": 6902, "size": 65552},
        {"kind": "xfs_alloc_deadlock", "comm": "qemu-kvm", "pid": 6902, "size": 65568},
        {"kind": "xfs_alloc_deadlock", "comm": None, "pid": None},            # 3.x form: names nobody
        {"kind": "xfs_alloc_deadlock", "comm": "x", "pid": True},            # not a pid
        {"kind": "page_alloc_failure", "comm": "java", "pid": 1},
        "not an event",
        {"kind": "xfs_alloc_deadlock", "comm": "CPU 0/KVM", "pid": 7001},   # a vCPU thread, spaces in comm
    ]
    named = processes.xfs_events(events)
    assert named == [{"comm": "qemu-kvm", "pid": 6902, "events": 2, "size": 65568},
                     {"comm": "CPU 0/KVM", "pid": 7001, "events": 1, "size": None}]


def test_match_by_pid_by_comm_or_not_at_all(tree):
    tree.process(6902, "qemu-kvm").process(7300, "qemu-kvm").process(4242, "bash")
    named = [{"comm": "qemu-kvm", "pid": 6902, "events": 1, "size": None},
             {"comm": "qemu-kvm", "pid": 4242, "events": 1, "size": None},    # pid reused by bash
             {"comm": "fs_mark", "pid": 3289, "events": 3, "size": 65624}]     # gone, nobody of that name
    matched = processes.match_processes(named, str(tree.root))
    assert matched[0]["matched_by"] == "pid" and matched[0]["pids"] == [6902]
    assert matched[1]["matched_by"] == "comm" and matched[1]["pids"] == [6902, 7300]
    assert "pid 4242 is now 'bash', not 'qemu-kvm'" in matched[1]["reason"]
    assert matched[2]["matched_by"] is None and matched[2]["pids"] == []
    assert matched[2]["reason"] == "pid 3289 has exited; no process is named 'fs_mark' now"


def test_long_command_names_compare_as_the_kernel_keeps_them(tree):
    tree.process(10, "a-very-long-com")  # TASK_COMM_LEN: 15 characters kept
    matched = processes.match_processes([{"comm": "a-very-long-command", "pid": 10, "events": 1, "size": None}], str(tree.root))
    assert matched[0]["matched_by"] == "pid"


def test_fd_targets_are_read_not_followed(tree, tmp_path):
    secret = tmp_path / "outside"
    secret.write_text("x")
    fifo = tmp_path / "fifo"
    os.mkfifo(str(fifo))
    tree.process(5, "reader", fds=[(3, str(secret), "0100000", None, None), (4, str(fifo), "0100000", None, None),
                                   (5, "socket:[12345]", "02", None, None)])
    # Opening the FIFO would block: the link text is all that is read.
    assert sorted(processes.fd_targets(str(tree.root), 5)) == [(3, str(secret)), (4, str(fifo)), (5, "socket:[12345]")]


def test_fdinfo_fields_and_write_modes(tree):
    tree.process(5, "w", fds=[(3, "/a", "0100002", 40, 133), (4, "/b", "02100001", None, None), (6, "/c", "0100000", 22, None)])
    root = str(tree.root)
    assert processes.read_fdinfo(root, 5, 3) == {"flags": 0o100002, "mnt_id": 40, "ino": 133}
    assert processes.read_fdinfo(root, 5, 4) == {"flags": 0o2100001, "mnt_id": None, "ino": None}
    assert processes.read_fdinfo(root, 5, 99) == {"flags": None, "mnt_id": None, "ino": None}
    assert processes.opened_for_write(0o100002) and processes.opened_for_write(0o2100001)
    assert not processes.opened_for_write(0o100000) and not processes.opened_for_write(None)


def test_holders_by_inode_path_and_mapping(tree):
    image = "/var/lib/libvirt/images/db01.img"
    wanted = {(XFS_DEV, 133): image}
    maps = ("7f00-7f10 rw-s 00000000 fd:02 133 %s\n" % image) + "7f10-7f20 r--p 00000000 fd:02 999 /usr/lib/x.so\n"
    tree.process(6902, "qemu-kvm", fds=[(20, image, "0140002", 40, 133)])
    tree.process(7000, "backup", fds=[(3, "/srv/vm one/db01.img", "0100000", 40, 133)])  # another mount, same inode
    tree.process(7100, "other", fds=[(3, image, "0100002", 40, 555)])                    # same path, another file
    tree.process(7200, "container", fds=[(3, image, "0100002", 77, 133)])                # another mount namespace
    tree.process(7300, "mapper", maps=maps)
    tree.process(7400, "old-kernel", fds=[(3, image, "0100000", None, None)])            # no mnt_id/ino: path decides
    tree.process(7500, "old-kernel2", fds=[(3, "/elsewhere/db01.img", "0100000", None, None)])
    held = processes.holders(str(tree.root), wanted, _mount_dev)[(XFS_DEV, 133)]
    assert held == [
        {"pid": 6902, "comm": "qemu-kvm", "write": True, "mapped": False},
        {"pid": 7000, "comm": "backup", "write": False, "mapped": False},
        {"pid": 7300, "comm": "mapper", "write": True, "mapped": True},
        {"pid": 7400, "comm": "old-kernel", "write": False, "mapped": False},
    ]


def test_no_wanted_files_reads_nothing(tree):
    assert processes.holders(str(tree.root), {}, _mount_dev) == {}


def test_unreadable_or_garbage_entries_are_ignored(tree):
    tree.process(9, "odd", maps="not a maps line\n00-01 rw-s 0 zz:zz 133 /x\n")
    (tree.root / "9" / "fd" / "notanumber").write_text("")
    (tree.root / "self").mkdir()
    assert processes.list_pids(str(tree.root)) == [9]
    assert processes.fd_targets(str(tree.root), 9) == []
    assert processes.mapped_files(str(tree.root), 9, {133}) == []
    assert processes.read_comm(str(tree.root), 12345) is None
