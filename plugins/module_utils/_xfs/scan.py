# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find the XFS files with the most extents: in directory trees, or among the files processes hold open.

``scan`` is what the ``xfs_extent_scan`` module returns; ``host_files`` is the ``memfrag_xfs_files`` fact
``memory_facts`` sets for the diagnose role (scan only when the kernel log has XFS deadlocks, starting
from the processes those messages name).
"""


import os
import stat
import time
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import require_release
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._xfs import extent_map, mounts as mounts_mod, processes, walk
from ansible_collections.memfrag.linux.plugins.module_utils._xfs.ioctl import bulkstat_large_files

METHODS = ("auto", "stat")
DEFAULTS = {"min_extents": 10000, "max_files": 1000000, "time_limit": 60.0, "max_results": 50}
# What the memfrag_xfs_files fact keeps per host (the fleet report reads it).
FACT_FILES = 10
MAX_SKIPPED = 100


def check_limits(params: t.Mapping[str, t.Any]) -> None:
    """Raise ValueError naming the first bound that would not bound anything."""
    for key in ("min_extents", "max_files", "max_results"):
        value = params.get(key)
        if value is not None and int(value) < 1:
            raise ValueError("%s must be at least 1, got %s" % (key, value))
    limit = params.get("time_limit")
    if limit is not None and not 0 < float(limit) <= 86400:
        raise ValueError("time_limit must be more than 0 and at most 86400 seconds, got %s" % limit)
    if params.get("method") not in (None,) + METHODS:
        raise ValueError("method must be one of %s, got %r" % (", ".join(METHODS), params.get("method")))


class _Scan(object):
    def __init__(self, params: t.Mapping[str, t.Any], proc_root: str, kernel_release: str, page_size: int,
                 clock: t.Callable[[], float]) -> None:
        self.params = dict(DEFAULTS)
        self.params.update((key, value) for key, value in params.items() if value is not None)
        check_limits(self.params)
        self.proc_root = proc_root
        self.min_extents = int(self.params["min_extents"])
        self.page_size = page_size
        self.release = kernel_release
        self.era = extent_map.era_for_release(require_release(kernel_release))
        self.budget = walk.Budget(int(self.params["max_files"]), float(self.params["time_limit"]), clock)
        self.found = walk.Found(int(self.params["max_results"]))
        self.skipped = []  # type: t.List[t.Dict[str, str]]
        self.skipped_total = 0
        self.scanned = []  # type: t.List[t.Dict[str, t.Any]]
        self.warnings = []  # type: t.List[str]
        self.mounts, mount_warnings = mounts_mod.read_mounts(proc_root)
        self.warnings.extend(mount_warnings)
        self._candidates = {}  # type: t.Dict[int, t.Tuple[t.Optional[t.Dict[int, int]], str]]

    def skip(self, path: str, reason: str) -> None:
        self.skipped_total += 1
        if len(self.skipped) < MAX_SKIPPED:
            self.skipped.append({"path": path, "reason": reason})

    def record(self, path: str, mount: str, extents: int, info: os.stat_result) -> t.Dict[str, t.Any]:
        entry = {"path": path, "mount": mount, "size": info.st_size, "extents": extents}
        entry.update(extent_map.file_alloc(extents, self.era, self.page_size))
        entry["open_by"] = []
        return entry

    def describe_dev(self, dev: int) -> str:
        mount = mounts_mod.mount_of_device(self.mounts, dev)
        if mount is None:
            return "another file system (%s)" % mounts_mod.device_text(dev)
        return "another file system (%s on %s)" % (mount["fstype"], mount["mount"])

    # Trees --------------------------------------------------------------------------------------

    def scan_path(self, path: str) -> None:
        try:
            parent_fd, name, info = walk.resolve(path)
        except walk.PathRefused as exc:
            self.skip(exc.path, exc.reason)
            return
        except OSError as exc:
            self.skip(path, exc.strerror or str(exc))
            return
        try:
            mount = mounts_mod.mount_of_device(self.mounts, info.st_dev)
            if mount is None:
                self.skip(path, "its file system (%s) is not in the mount table" % mounts_mod.device_text(info.st_dev))
            elif mount["fstype"] != "xfs":
                self.skip(path, "%s file system, not XFS" % mount["fstype"])
            elif stat.S_ISREG(info.st_mode):
                self._one_file(parent_fd, name, path, mount["mount"], info)
            elif stat.S_ISDIR(info.st_mode):
                self._tree(parent_fd, name, path, mount, info)
            else:
                self.skip(path, "not a regular file or directory")
        finally:
            os.close(parent_fd)

    def _one_file(self, parent_fd: int, name: str, path: str, mount: str, info: os.stat_result) -> None:
        try:
            extents, info = walk.count_extents(parent_fd, name, (info.st_dev, info.st_ino))
        except OSError as exc:
            self.skip(path, exc.strerror or str(exc))
            return
        self.scanned.append({"path": path, "mount": mount, "device": mounts_mod.device_text(info.st_dev), "method": "file",
                             "directories": 0, "too_small": 0, "opened": 1, "errors": 0, "walked": "file"})
        if extents >= self.min_extents:
            self.found.add((info.st_dev, info.st_ino), extents, lambda: self.record(path, mount, extents, info))

    def _tree(self, parent_fd: int, name: str, path: str, mount: t.Mapping[str, t.Any], info: os.stat_result) -> None:
        try:
            top = walk.open_dir(parent_fd, name, (info.st_dev, info.st_ino))
        except OSError as exc:
            self.skip(path, exc.strerror or str(exc))
            return
        candidates, method = self._prefilter(top, info.st_dev)
        top_path = os.path.normpath(path)
        summary = {"path": top_path, "mount": mount["mount"], "device": mounts_mod.device_text(info.st_dev), "method": method}
        if not self.budget.time_left() or candidates == {}:
            # Bulkstat found no file on this file system with enough blocks: there is nothing to walk for.
            os.close(top)
            summary.update(directories=0, too_small=0, opened=0, errors=0, walked="no" if candidates == {} else "stopped")
            self.scanned.append(summary)
            return
        mount_points = {}
        for item in self.mounts:
            if item["mount"] != top_path and item["mount"].startswith(top_path.rstrip("/") + "/"):
                same = mounts_mod.device(item) == info.st_dev
                mount_points[item["mount"]] = ("a bind mount of this file system (%s)" % item["root"] if same else
                                               "another file system (%s on %s)" % (item["fstype"], item["mount"]))
        tree = walk.TreeScan(mount["mount"], info.st_dev, os.fstatvfs(top).f_bsize, self.min_extents, self.budget,
                             self.found, self.record, candidates, self.describe_dev, mount_points)
        tree.walk(top, top_path)
        for item in tree.skipped:
            self.skip(item["path"], item["reason"])
        summary.update(tree.counts)
        # "until all found": every large file bulkstat listed was met before the end of the tree.
        summary["walked"] = ("stopped" if self.budget.stopped else "until all found" if tree.remaining == set() else "all")
        self.scanned.append(summary)

    def _prefilter(self, fd: int, dev: int) -> t.Tuple[t.Optional[t.Dict[int, int]], str]:
        """Large regular files of the file system from bulkstat (once per file system), or None: stat each."""
        if dev in self._candidates:
            return self._candidates[dev]
        result = (None, "stat")  # type: t.Tuple[t.Optional[t.Dict[int, int]], str]
        if self.params.get("method", "auto") == "auto":
            try:
                found, _seen, finished = bulkstat_large_files(fd, self.min_extents, keep_going=self.budget.time_left)
                result = (found, "bulkstat") if finished else (None, "bulkstat (stopped by the time limit)")
            except OSError as exc:
                result = (None, "stat (bulkstat refused: %s)" % (exc.strerror or exc))
        self._candidates[dev] = result
        return result

    # Processes ----------------------------------------------------------------------------------

    def scan_process(self, pid: int) -> t.Dict[str, t.Any]:
        """Count the extents of every XFS file ``pid`` holds open; a summary for the report."""
        summary = {"pid": pid, "comm": processes.read_comm(self.proc_root, pid), "xfs_files": 0,
                   "max_extents": None, "files": []}  # type: t.Dict[str, t.Any]
        try:
            targets = processes.fd_targets(self.proc_root, pid)
        except (OSError, ProcFileError) as exc:
            summary["reason"] = "cannot list its open files: %s" % (getattr(exc, "strerror", None) or exc)
            return summary
        seen = set()
        for fd, target in targets:
            if not target.startswith("/") or target in seen:
                continue  # sockets, pipes, anonymous inodes
            seen.add(target)
            if target.endswith(processes.DELETED):
                self.skip(target, "held open by pid %d but deleted; its extents stay until it is closed" % pid)
                continue
            self._process_file(pid, fd, target, summary)
        return summary

    def _process_file(self, pid: int, fd: int, target: str, summary: t.Dict[str, t.Any]) -> None:
        info = processes.read_fdinfo(self.proc_root, pid, fd)
        mount = None
        if info["mnt_id"] is not None:
            mount = mounts_mod.mount_by_id(self.mounts, info["mnt_id"])
            if mount is None:
                self.skip(target, "held by pid %d in another mount namespace (a container?); not resolvable here" % pid)
                return
            if mount["fstype"] != "xfs":
                return  # libraries, logs and sockets on other file systems: not what we look for
        try:
            parent_fd, name, lstat = walk.resolve(target)
        except (walk.PathRefused, OSError) as exc:
            self.skip(target, getattr(exc, "reason", None) or str(exc))
            return
        try:
            if mount is None:
                mount = mounts_mod.mount_of_device(self.mounts, lstat.st_dev)
                if mount is None or mount["fstype"] != "xfs":
                    return
            if lstat.st_dev != mounts_mod.device(mount) or (info["ino"] is not None and info["ino"] != lstat.st_ino):
                self.skip(target, "this path names another file here than the one pid %d holds" % pid)
                return
            if not stat.S_ISREG(lstat.st_mode):
                return
            try:
                extents, fstat = walk.count_extents(parent_fd, name, (lstat.st_dev, lstat.st_ino))
            except OSError as exc:
                self.skip(target, exc.strerror or str(exc))
                return
        finally:
            os.close(parent_fd)
        summary["xfs_files"] += 1
        summary["max_extents"] = max(summary["max_extents"] or 0, extents)
        if extents >= self.min_extents:
            summary["files"].append(target)
            mount_point = mount["mount"]
            self.found.add((fstat.st_dev, fstat.st_ino), extents, lambda: self.record(target, mount_point, extents, fstat))

    # Result -------------------------------------------------------------------------------------

    def add_holders(self, files: t.List[t.Dict[str, t.Any]]) -> None:
        wanted = {}
        for entry in files:
            try:
                parent_fd, name, info = walk.resolve(entry["path"])
                os.close(parent_fd)
            except (walk.PathRefused, OSError):
                continue
            wanted[(info.st_dev, info.st_ino)] = entry["path"]
        by_id = dict((mount["id"], mounts_mod.device(mount)) for mount in self.mounts)
        held = processes.holders(self.proc_root, wanted, by_id.get)
        for entry in files:
            for key, path in wanted.items():
                if path == entry["path"]:
                    entry["open_by"] = held.get(key, [])

    def result(self, process_summaries: t.List[t.Dict[str, t.Any]], named: t.List[t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
        files = self.found.worst_first()
        if files and self.params.get("open_by", True):
            self.add_holders(files)
        stopped = None
        if self.budget.stopped:
            stopped = {"reason": self.budget.stopped, "entries": self.budget.entries,
                       "seconds": round(self.budget.elapsed(), 3),
                       "limit": self.params["max_files"] if self.budget.stopped == "max_files" else self.params["time_limit"]}
        return {
            "files": files,
            "found": self.found.total,
            "min_extents": self.min_extents,
            "extent_map": {"kernel_release": self.release, "era": self.era,
                           "description": extent_map.era_description(self.era), "page_size": self.page_size},
            "scanned": self.scanned,
            "processes": process_summaries,
            "log_processes": named,
            "skipped_paths": self.skipped,
            "skipped_paths_total": self.skipped_total,
            "stopped_early": stopped,
            "entries": self.budget.entries,
            "seconds": round(self.budget.elapsed(), 3),
        }


def scan(params: t.Mapping[str, t.Any], proc_root: str = "/proc", kernel_release: t.Optional[str] = None,
         page_size: t.Optional[int] = None, clock: t.Callable[[], float] = time.monotonic) -> t.Tuple[t.Dict[str, t.Any], t.List[str]]:
    """Run one scan. ``params``: paths, pids, events, min_extents, max_files, time_limit, max_results, open_by,
    method, and ``mounts_without_process`` (scan every XFS mount when events/pids name no live process).

    Raises ValueError for bad limits or release, ProcFileError when the mount table cannot be read.
    """
    job = _Scan(params, proc_root, kernel_release or os.uname()[2], page_size or os.sysconf("SC_PAGE_SIZE"), clock)
    named = processes.match_processes(processes.xfs_events(params.get("events") or []), proc_root)
    pids = list(params.get("pids") or [])
    for entry in named:
        pids.extend(pid for pid in entry["pids"] if pid not in pids)
    summaries = []
    for pid in pids:
        if not job.budget.time_left():
            break
        summaries.append(job.scan_process(int(pid)))
    paths = list(params.get("paths") or [])
    asked_processes = bool(params.get("pids") or params.get("events"))
    if not paths and (not asked_processes or (params.get("mounts_without_process") and not pids)):
        filesystems, skipped = mounts_mod.xfs_filesystems(job.mounts)
        paths = [mount["mount"] for mount in filesystems]
        for item in skipped:
            job.skip(item["path"], item["reason"])
        if not filesystems:
            job.warnings.append("no XFS file system is mounted")
    for path in paths:
        if not job.budget.time_left():
            break
        job.scan_path(path)
    return job.result(summaries, named), job.warnings


def fact(result: t.Mapping[str, t.Any], **extra: t.Any) -> t.Dict[str, t.Any]:
    """The compact per-host summary kept as ``memfrag_xfs_files`` (what the report and judge read)."""
    summary = {
        "scanned": True,
        "files": [dict((key, entry[key]) for key in ("path", "mount", "size", "extents", "alloc_bytes", "alloc_order", "open_by"))
                  for entry in result["files"][:FACT_FILES]],
        "found": result["found"],
        "min_extents": result["min_extents"],
        "era": result["extent_map"]["era"],
        "kernel_release": result["extent_map"]["kernel_release"],
        "log_processes": result["log_processes"],
        "stopped_early": result["stopped_early"],
    }
    summary.update(extra)
    return summary


def host_files(options: t.Mapping[str, t.Any], log_scan: t.Optional[t.Mapping[str, t.Any]], proc_root: str,
               clock: t.Callable[[], float] = time.monotonic) -> t.Tuple[t.Dict[str, t.Any], t.List[str]]:
    """``memfrag_xfs_files`` for memory_facts' ``xfs_files`` option (scan ``auto`` or ``always``)."""
    counts = (log_scan or {}).get("counts") or {}
    deadlocks = int(counts.get("xfs_alloc_deadlock") or 0)
    if options.get("scan", "auto") == "auto" and not deadlocks:
        why = "no kernel log was scanned" if log_scan is None else "no XFS allocation deadlock in the kernel log"
        return {"scanned": False, "reason": why}, []
    if os.path.realpath(proc_root) != "/proc":
        return {"scanned": False, "reason": "proc_root is a capture, not this host: its files are not here"}, []
    params = dict((key, options.get(key)) for key in ("paths", "min_extents", "max_files", "time_limit", "max_results"))
    params["events"] = (log_scan or {}).get("events") or []
    params["mounts_without_process"] = True
    result, warnings = scan(params, proc_root, clock=clock)
    return fact(result, deadlock_events=deadlocks), warnings
