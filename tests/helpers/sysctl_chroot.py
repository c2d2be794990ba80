# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one real sysctl applier inside a crafted tree, never against this machine's kernel or /etc.

Usage (only ever through ``unshare --mount --propagation private``, see sysctl_oracle.py):

    SYSCTL_ORACLE_HOST_MNTNS=$(readlink /proc/self/ns/mnt) unshare --mount --propagation private \\
        python sysctl_chroot.py TREE TOOLBOX TOOL [ARGS...]

In the private mount namespace it binds TOOLBOX (the applier binaries, their libraries and the
dynamic loader, copied from the host) read-only on TREE/.oracle and /dev/null on TREE/dev/null,
chroots into TREE, and refuses to go on unless TREE/proc is a plain directory: not procfs
(statfs magic PROC_SUPER_MAGIC), no /proc/self, every /proc/sys/vm entry a regular file. Only then
does it exec the tool, which can then write nothing but the fake files under TREE/proc/sys.
"""

import ctypes
import ctypes.util
import os
import stat
import subprocess
import sys

PROC_SUPER_MAGIC = 0x9FA0
REFUSED = 97  # exit status when the guard refuses to run the tool


class _StatFs(ctypes.Structure):
    # struct statfs on 64-bit Linux starts with the long f_type; the rest is never read.
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_long * 31)]


def filesystem_magic(path):
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    buf = _StatFs()
    if libc.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return buf.f_type & 0xFFFFFFFF


def refuse(reason):
    sys.stderr.write("sysctl_chroot: refusing to run: %s\n" % reason)
    sys.exit(REFUSED)


def guard_fake_proc(proc="/proc"):
    """Refuse unless ``proc`` is a plain directory tree of regular files (no procfs reachable)."""
    for path in (proc, proc + "/sys", proc + "/sys/vm"):
        if not os.path.isdir(path) or os.path.islink(path):
            refuse("%s is not a plain directory" % path)
        if filesystem_magic(path) == PROC_SUPER_MAGIC:
            refuse("%s is procfs" % path)
    if os.path.lexists(proc + "/self") or os.path.lexists(proc + "/1"):
        refuse("%s/self or %s/1 exists: this looks like a real /proc" % (proc, proc))
    for name in os.listdir(proc + "/sys/vm"):
        info = os.lstat(os.path.join(proc, "sys", "vm", name))
        if not stat.S_ISREG(info.st_mode):
            refuse("%s/sys/vm/%s is not a regular file" % (proc, name))


def main(argv):
    tree, toolbox, tool = argv[1], argv[2], argv[3]
    tree = os.path.realpath(tree)
    if tree == "/" or not os.path.isdir(tree):
        refuse("the tree %r is not a directory other than /" % tree)
    if os.path.ismount(os.path.join(tree, "proc")):
        refuse("%s/proc is a mount point" % tree)
    # The caller must have put us in a private mount namespace (it passes its own namespace in
    # SYSCTL_ORACLE_HOST_MNTNS); a bind mount here must never show up in the caller's namespace.
    host = os.environ.get("SYSCTL_ORACLE_HOST_MNTNS")
    if not host or os.readlink("/proc/self/ns/mnt") == host:
        refuse("not in a private mount namespace")
    for source, target in ((toolbox, os.path.join(tree, ".oracle")), ("/dev/null", os.path.join(tree, "dev", "null"))):
        subprocess.run(["mount", "--bind", source, target], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", os.path.join(tree, ".oracle")], check=True)
    os.chroot(tree)
    os.chdir("/")
    guard_fake_proc("/proc")
    env = {"PATH": "/nonexistent", "LC_ALL": "C", "SYSTEMD_LOG_LEVEL": "debug", "SYSTEMD_LOG_TARGET": "console",
           "SYSTEMD_COLORS": "0"}
    loader = "/.oracle/ld.so"
    os.execve(loader, [loader, "--library-path", "/.oracle/lib", "/.oracle/bin/" + tool] + argv[4:], env)


if __name__ == "__main__":
    main(sys.argv)
