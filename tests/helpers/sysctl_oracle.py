# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real sysctl appliers as a test oracle: crafted trees, a chroot toolbox, and who won each key.

A tree is a config_root (sysctl.d files, links, directories) plus a fake ``proc/sys/vm`` of empty
regular files. Each real applier (systemd-sysctl, ``sysctl --system``) runs on it through
sysctl_chroot.py in a private mount namespace; what it last wrote into each fake file is the
ground truth of which assignment won. Every assignment in a tree carries a distinct value, so the
written text identifies the line it came from.
"""

import json
import os
import shutil
import stat
import subprocess
import sys

from helpers.debian import ensure_command

HERE = os.path.dirname(os.path.abspath(__file__))
CHROOT_RUNNER = os.path.join(HERE, "sysctl_chroot.py")
VM_KEYS = ("swappiness", "min_free_kbytes", "vfs_cache_pressure", "watermark_scale_factor", "dirty_ratio",
           "dirty_background_ratio")
SYSCTL_DIRS = ("etc/sysctl.d", "run/sysctl.d", "usr/local/lib/sysctl.d", "usr/lib/sysctl.d", "lib/sysctl.d")
SYSTEMD_CANDIDATES = ("/usr/lib/systemd/systemd-sysctl", "/lib/systemd/systemd-sysctl")
TOOLS = {"systemd": ("systemd-sysctl", []), "procps": ("sysctl", ["--system"])}
# What each fake /proc/sys/vm file holds before a run. procps opens with "w" (truncates) and writes the value
# and a newline; systemd-sysctl opens without O_TRUNC (as /proc needs nothing else) and writes the value and a
# newline over the start. No value either writes starts with a tab (both strip it), so a file still starting
# with one was not written; an empty value (``vm.swappiness =``) shows as a lone newline.
UNWRITTEN = b"\tunwritten-by-oracle\n"


def systemd_sysctl():
    for path in SYSTEMD_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return None


def procps_sysctl():
    for path in ("/usr/sbin/sysctl", "/sbin/sysctl"):
        if os.access(path, os.X_OK):
            return path
    return shutil.which("sysctl")


def ensure_tools():
    """Install Debian's systemd and procps when either applier is missing (helpers.debian: apt-get, no services)."""
    if procps_sysctl() is None:
        ensure_command("sysctl", "procps")
    if systemd_sysctl() is None:
        # systemd-sysctl lives outside PATH; systemctl comes with it.
        ensure_command("systemctl", "systemd")
    return systemd_sysctl(), procps_sysctl()


def _libraries(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs, loader = [], None
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append(parts[2])
        elif parts and parts[0].startswith("/") and "ld-linux" in parts[0]:
            loader = parts[0]
    return libs, loader


def build_toolbox(dest, systemd_binary, procps_binary):
    """Copy both binaries, every library they load and the dynamic loader into ``dest``."""
    os.makedirs(os.path.join(dest, "bin"))
    os.makedirs(os.path.join(dest, "lib"))
    loader = None
    for name, binary in (("systemd-sysctl", systemd_binary), ("sysctl", procps_binary)):
        shutil.copy2(binary, os.path.join(dest, "bin", name))
        libs, found_loader = _libraries(binary)
        loader = loader or found_loader
        for lib in libs:
            target = os.path.join(dest, "lib", os.path.basename(lib))
            if not os.path.exists(target):
                shutil.copy2(os.path.realpath(lib), target)
    shutil.copy2(os.path.realpath(loader), os.path.join(dest, "ld.so"))
    return dest


def tool_versions(systemd_binary, procps_binary):
    systemd = subprocess.run([systemd_binary, "--version"], capture_output=True, text=True, check=False)
    procps = subprocess.run([procps_binary, "--version"], capture_output=True, text=True, check=False)
    return systemd.stdout.splitlines()[0].strip(), procps.stdout.strip().splitlines()[0].strip()


def namespaces_work():
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True,
                          check=False)
    return proc.returncode == 0


def _encode(text):
    # YAML strings stand for UTF-8 files; "\udcXX" (surrogateescape) stands for a raw byte.
    return text.encode("utf-8", "surrogateescape")


def build_tree(root, case):
    """Lay out ``case`` (files, links, dirs) under ``root`` with a fake proc/sys/vm and mount points."""
    for directory in ("proc/sys/vm", "dev", ".oracle"):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    for directory in case.get("make_dirs", SYSCTL_DIRS):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    with open(os.path.join(root, "dev", "null"), "wb"):
        pass
    reset_proc(root)
    for path in case.get("dirs") or []:
        os.makedirs(os.path.join(root, path.lstrip("/")), exist_ok=True)
    for path, text in (case.get("files") or {}).items():
        for marker, count in (case.get("pad") or {}).items():
            text = text.replace(marker, "x" * count)  # lines too long to write out in trees.yml
        full = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(_encode(text))
    for path, target in (case.get("links") or {}).items():
        full = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        os.symlink(target, full)
    return root


def reset_proc(root):
    for key in VM_KEYS:
        with open(os.path.join(root, "proc", "sys", "vm", key), "wb") as handle:
            handle.write(UNWRITTEN)
        os.chmod(os.path.join(root, "proc", "sys", "vm", key), 0o644)


def runner_env():
    return dict(os.environ, SYSCTL_ORACLE_HOST_MNTNS=os.readlink("/proc/self/ns/mnt"))


def run_applier(root, toolbox, applier):
    """Run one real applier on the tree; returns ({key: written text or None}, proc)."""
    reset_proc(root)
    tool, args = TOOLS[applier]
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, CHROOT_RUNNER,
                           root, toolbox, tool] + args, capture_output=True, text=True, timeout=60, check=False,
                          env=runner_env())
    written = {}
    for key in VM_KEYS:
        path = os.path.join(root, "proc", "sys", "vm", key)
        info = os.lstat(path)
        assert stat.S_ISREG(info.st_mode), path
        with open(path, "rb") as handle:
            raw = handle.read()
        if raw.startswith(b"\t"):
            written["vm." + key] = None
            continue
        data = raw.decode("utf-8", "surrogateescape")
        # The last write is the text up to the first newline (neither tool writes one inside a value).
        written["vm." + key] = data.split("\n", 1)[0]
    return written, proc


def _resolve_link_chain(root, path):
    """Host path of ``path`` with ``root`` as "/" (links followed component by component), or None.

    Written separately from the product's resolver on purpose: the oracle must not share its code.
    """
    todo = [p for p in path.split("/") if p]
    done = []
    for _hop in range(200):
        if not todo:
            return os.path.join(root, *done) if done else root
        part = todo.pop(0)
        if part in (".", ""):
            continue
        if part == "..":
            done = done[:-1]
            continue
        full = os.path.join(root, *(done + [part]))
        if os.path.islink(full):
            target = os.readlink(full)
            todo = target.split("/") + todo
            if target.startswith("/"):
                done = []
        elif os.path.lexists(full):
            done.append(part)
        else:
            return None
    return None


def candidates(root, case, written):
    """Every (path as the tools name it, \\n-line number) whose line text contains ``written``."""
    paths = set(case.get("files") or {}) | set(case.get("links") or {})
    for path in list(case.get("links") or {}):
        # Files reached through a linked directory are named by the link's path.
        full = _resolve_link_chain(root, path)
        if full and os.path.isdir(full):
            for name in os.listdir(full):
                paths.add(path.rstrip("/") + "/" + name)
    found = set()
    for path in paths:
        full = _resolve_link_chain(root, path)
        if full is None or not os.path.isfile(full):
            continue
        with open(full, "rb") as handle:
            text = handle.read().decode("utf-8", "surrogateescape")
        for number, line in enumerate(text.split("\n"), 1):
            if written and written in line:
                found.add((path, number))
            elif not written and any("=" in piece and not piece.split("=", 1)[1].strip(" \t\v\f")
                                     for piece in line.replace("\x00", "\r").split("\r")):
                found.add((path, number))  # an empty value (systemd also ends lines at \r and NUL)
    return found


def run_module(root, args, collections, python=sys.executable):
    """Run vm_sysctl as Ansible would (a module process reading its arguments file); (result, proc)."""
    args_path = os.path.join(os.path.dirname(root), "module-args.json")
    with open(args_path, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    module = os.path.join(collections, "ansible_collections", "memfrag", "linux", "plugins", "modules",
                          "vm_sysctl.py")
    env = dict(os.environ, PYTHONPATH=collections)
    proc = subprocess.run([python, module, args_path], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    try:
        return json.loads(proc.stdout), proc
    except ValueError:
        return None, proc


def model_of(root, keys, collections):
    """vm_sysctl's own answer for the tree: check mode, state=absent of a probe file nobody has."""
    return run_module(root, {
        "settings": dict((key, None) for key in keys), "state": "absent",
        "file": "/run/sysctl.d/zz-oracle-probe.conf", "config_root": root,
        "proc_root": os.path.join(root, "proc"), "apply": False, "_ansible_check_mode": True,
    }, collections)
