# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reclaim ladder: least damage first, stop at the target, in one guarded run (reclaim_memory's body).

Judge first (zones short at the target order, allocation events from the kernel log, the caller's
own condition). A host that does not need it is not touched. Otherwise, under one run lock, with the
cooldown checked, the audit log opened and the cooldown state saved BEFORE anything is triggered,
the steps below run in this order, each only while the target is still missed, and each measured:

``compact``          compaction (compact_memory, or nodeN/compact for the nodes that are short);
``hugetlb_compact``  compaction driven by a high-order allocation: huge pages for the shortfall are
                     taken through nr_hugepages and given back at once (the original value is always
                     written back); the kernel compacts for that order, and frees whole huge pages;
``cgroup_reclaim``   cgroup v2 ``memory.reclaim`` for just the shortfall, at most the inactive (cold) page
                     cache, then compaction again;
``drop_pagecache``   sync, then drop every clean page-cache page (drop_caches 1), then compaction again;
``drop_slab``        drop reclaimable slab (drop_caches 2), then compaction again.

The kernel is reached only through a ``Host`` (files under the given roots), so the decisions are
unit-tested with a fake host whose buddyinfo changes as triggers are written.
"""


import math
import socket
import time
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, path_under
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.guards import (
    AuditLog, GuardError, RunLock, cooldown_remaining, dirty_bytes, read_state, restore_state, write_state)
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.measure import (
    buddy_snapshot, counters_delta, counters_snapshot, meminfo_snapshot, summary)
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.policy import need
from ansible_collections.memfrag.linux.plugins.module_utils._units import MIB
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.triggers import (
    TriggerError, bounded_sync, check_writable, compact_paths, read_number, write_trigger)

ACTION = "reclaim_memory"
# Least damage first; the ladder always runs them in this order, whatever order they are given in.
STEPS = ("compact", "hugetlb_compact", "cgroup_reclaim", "drop_pagecache", "drop_slab")
# hugetlb_compact is opt-in: bench_reclaim measured no gain from it after compaction on 6.1 or 6.18 (README).
DEFAULT_STEPS = ("compact", "cgroup_reclaim", "drop_pagecache")
MEMINFO_NAMES = ("MemTotal", "MemFree", "Cached", "Inactive(file)", "SReclaimable", "Dirty", "Writeback", "SwapTotal",
                 "Hugepagesize")
# memory.reclaim asks the kernel for the coldest pages, but when the inactive file list is shorter than the request
# it deactivates and evicts hot (active) cache to make up the rest: measured on 6.1, 37 MiB asked with 11 MiB
# inactive evicted 42 MiB of active cache. So the request never exceeds the inactive page cache.
COLD_CACHE_FIELD = "Inactive(file)"
# Huge pages taken for allocation-driven compaction stay within this share of free memory, so the
# step compacts rather than pushing the host into reclaim.
HUGETLB_FREE_SHARE = 0.5
# Where the cgroup v2 hierarchy is mounted under sys_root (unified on hybrid v1/v2 hosts).
CGROUP2_MOUNTS = ("fs/cgroup", "fs/cgroup/unified")
# Refusals that are a guard doing its job: recorded, the ladder stops, the run is not a failure.
GUARD_STOPS = ("cooldown", "dirty", "sync_timeout")
# Step problems after which the next step may still help: recorded, the ladder goes on.
STEP_SKIPS = ("missing", "rejected", "not_useful", "nothing_to_do")


class Plan(object):
    """What the caller asked for (module options, already validated)."""

    def __init__(self, order: int, target_mb: int, zone_names: t.Sequence[str], steps: t.Sequence[str] = DEFAULT_STEPS,
                 compact_nodes: t.Sequence[str] = ("auto",), cgroup: str = "", compact_after_free: bool = True,
                 slab_min_mb: int = 512, max_dirty_mb: int = 256, sync_timeout: float = 60, cooldown: int = 900,
                 log_scan: t.Optional[t.Mapping[str, t.Any]] = None, guard_query_hit: bool = False,
                 guard_query: str = "") -> None:
        self.order = order
        self.target_mb = target_mb
        self.zone_names = list(zone_names)
        self.steps = [step for step in STEPS if step in steps]
        self.compact_nodes = [str(node) for node in compact_nodes]
        self.cgroup = cgroup.strip("/")
        self.compact_after_free = compact_after_free
        self.slab_min_bytes = slab_min_mb * MIB
        self.max_dirty_bytes = max_dirty_mb * MIB
        self.sync_timeout = sync_timeout
        self.cooldown = cooldown
        self.log_scan = log_scan
        self.guard_query_hit = guard_query_hit
        self.guard_query = guard_query


class Host(object):
    """The kernel files of one host under ``proc_root`` and ``sys_root``; every read and write goes through here."""

    def __init__(self, proc_root: str, sys_root: str, page_size: int, lock_dir: str, state_dir: str, audit_log: str,
                 sync: t.Optional[t.Callable[[], None]] = None) -> None:
        self.proc_root = proc_root
        self.sys_root = sys_root
        self.page_size = page_size
        self.lock_dir = lock_dir
        self.state_dir = state_dir
        self.audit_log = audit_log
        self._sync = sync

    def measure(self) -> t.Dict[str, t.Any]:
        """Zones, the meminfo fields the ladder uses, and the compaction counters. Raises ProcFileError."""
        zones, warnings = buddy_snapshot(self.proc_root, self.page_size)
        meminfo, mem_warnings = meminfo_snapshot(self.proc_root, MEMINFO_NAMES)
        return {"zones": zones, "meminfo": meminfo, "counters": counters_snapshot(self.proc_root),
                "warnings": warnings + mem_warnings}

    def proc_path(self, relative: str) -> str:
        return _under(self.proc_root, relative)

    def sys_path(self, relative: str) -> str:
        return _under(self.sys_root, relative)

    def node_compact_exists(self, node: int) -> bool:
        try:
            check_writable(self.sys_path("devices/system/node/node%d/compact" % node))
        except TriggerError:
            return False
        return True

    def cgroup_reclaim_path(self, cgroup: str) -> str:
        """memory.reclaim of ``cgroup`` in the first cgroup v2 mount that has it (raises TriggerError missing)."""
        tried = []
        for mount in CGROUP2_MOUNTS:
            path = self.sys_path("/".join(part for part in (mount, cgroup, "memory.reclaim") if part))
            tried.append(path)
            try:
                check_writable(path)
                return path
            except TriggerError as exc:
                if exc.reason != "missing":
                    raise
        raise TriggerError("missing", "no cgroup v2 memory.reclaim (%s): a kernel before 5.19, cgroup v1 holding the memory "
                                      "controller, or no such cgroup" % ", ".join(tried))

    def write(self, path: str, value: str) -> None:
        write_trigger(path, value)

    def read_number(self, path: str) -> int:
        return read_number(path)

    def sync(self, timeout: float) -> t.Tuple[bool, float]:
        return bounded_sync(timeout, *([self._sync] if self._sync else []))


def _under(root: str, relative: str) -> str:
    try:
        return path_under(root, relative)
    except ProcFileError as exc:
        raise TriggerError("io", str(exc))


class _Refused(Exception):
    """A step or the whole run cannot go on (``reason`` as in TriggerError/GuardError)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super(_Refused, self).__init__(message)


class Ladder(object):
    """One run. ``run()`` returns the module result; it raises nothing for kernel or guard trouble."""

    def __init__(self, plan: Plan, host: Host, check_mode: bool = False, now: t.Callable[[], float] = time.time) -> None:
        self.plan = plan
        self.host = host
        self.check_mode = check_mode
        self.now = now
        self.warnings = []  # type: t.List[str]
        self.actions = []  # type: t.List[t.Dict[str, t.Any]]
        self.audit = AuditLog(host.audit_log)
        self.latest = None  # type: t.Optional[t.Dict[str, t.Any]]
        self.decision = None  # type: t.Optional[t.Dict[str, t.Any]]
        self.progress = None  # type: t.Optional[t.Dict[str, t.Any]]
        self.audit_error = None  # type: t.Optional[str]

    # -- judging -------------------------------------------------------------------------------------------------

    def _measure(self) -> t.Dict[str, t.Any]:
        snap = self.host.measure()
        self.warnings.extend(snap.pop("warnings", []))
        return snap

    def _judge(self, snap: t.Dict[str, t.Any], first: bool = False) -> t.Dict[str, t.Any]:
        plan = self.plan
        if first:
            return need(snap["zones"], plan.order, plan.target_mb, plan.zone_names, plan.log_scan, plan.guard_query_hit,
                        plan.guard_query)
        return need(snap["zones"], plan.order, plan.target_mb, plan.zone_names)

    # -- the run ---------------------------------------------------------------------------------------------------

    def run(self) -> t.Dict[str, t.Any]:
        started = time.monotonic()
        result = {"changed": False, "failed": False, "refused": None, "msg": ""}  # type: t.Dict[str, t.Any]
        try:
            self.latest = self._measure()
        except ProcFileError as exc:
            return self._finish(result, started, "cannot measure free memory: %s" % exc, failed=True, refused="measure")
        self.decision = self.progress = self._judge(self.latest, first=True)
        if not self.decision["needed"]:
            return self._finish(result, started, "reclaim not needed, host untouched: " + self.decision["reason"])
        if self.check_mode:
            return self._check_mode(result, started)

        # Fail closed: a run that cannot be audited triggers nothing; from here on every outcome is audited.
        try:
            self.audit.open()
        except GuardError as exc:
            return self._finish(result, started, exc.message, failed=True, refused=exc.reason)
        try:
            self._guarded(result)
            self._audit_end(result)
        finally:
            self.audit.close()
        return self._finish(result, started, result["msg"] or self._outcome(), failed=result["failed"],
                            refused=result["refused"])

    def _guarded(self, result: t.Dict[str, t.Any]) -> None:
        lock = RunLock(self.host.lock_dir)
        try:
            lock.acquire()
        except GuardError as exc:
            result.update(msg=exc.message, failed=True, refused=exc.reason)
            return
        try:
            try:
                previous = read_state(self.host.state_dir, ACTION)
            except GuardError as exc:
                result.update(msg=exc.message, failed=True, refused=exc.reason)
                return
            remaining = cooldown_remaining(previous, self.plan.cooldown, self.now())
            if remaining > 0:
                message = ("%s skipped: last run %.0fs ago, cooldown is %ds (%.0fs left); nothing written"
                           % (ACTION, self.now() - float(previous["last_run"]), self.plan.cooldown, remaining))
                self.actions.append({"action": ACTION, "step": None, "changed": False, "refused": "cooldown",
                                     "elapsed": 0.0, "summary": message})
                result.update(msg=message, refused="cooldown", cooldown_remaining=round(remaining, 1))
                return
            # Fail closed: the cooldown is saved before the first trigger, so a run whose state cannot be kept
            # (a symlinked or unwritable state_dir) never reaches the kernel and never escapes the cooldown.
            try:
                write_state(self.host.state_dir, ACTION, {"last_run": self.now(), "action": ACTION, "finished": False})
            except GuardError as exc:
                result.update(msg=exc.message, failed=True, refused=exc.reason)
                return
            try:
                self._climb(result)
            finally:
                if not result["changed"]:
                    # Nothing was written: the next run need not wait for a cooldown it did not cause.
                    try:
                        restore_state(self.host.state_dir, ACTION, previous)
                    except GuardError as exc:
                        self.warnings.append(exc.message)
                else:
                    self._save_state()
        finally:
            lock.release()

    def _climb(self, result: t.Dict[str, t.Any]) -> None:
        for index, step in enumerate(self.plan.steps):
            # The first step always runs on a host that needs reclaim (kernel-log events or the caller's condition
            # can ask for it while the zones look fine); every later one only while the target is missed.
            if index and self.progress["target_met"]:
                return
            try:
                getattr(self, "_step_" + step)(result)
            except _Refused as exc:
                self._record(step, step, None, None, 0.0, exc.message, refused=exc.reason)
                if exc.reason in STEP_SKIPS and self.audit_error is None:
                    continue
                result["refused"] = exc.reason
                if exc.reason not in GUARD_STOPS:
                    result["failed"] = True
                result["msg"] = exc.message
                return
            except ProcFileError as exc:
                result.update(failed=True, refused="measure", msg="cannot measure free memory after %s: %s" % (step, exc))
                return
            if self.audit_error is not None:
                result.update(failed=True, refused="io", msg=self.audit_error + "; stopped before the next step")
                return

    # -- steps -------------------------------------------------------------------------------------------------------

    def _compact(self, result: t.Dict[str, t.Any], step: str, label: str) -> None:
        plan = self.plan
        nodes = plan.compact_nodes
        if nodes == ["auto"]:
            short = sorted(set(int(z["node"]) for z in self.progress["short_zones"]))
            all_nodes = sorted(set(int(z["node"]) for z in self.latest["zones"]))
            # Per node only where it is a real saving (some node is not short) and the kernel has the files.
            if short and len(short) < len(all_nodes) and all(self.host.node_compact_exists(n) for n in short):
                nodes = [str(n) for n in short]
            else:
                nodes = ["all"]
        try:
            paths = compact_paths(self.host.proc_root, self.host.sys_root, nodes)
        except TriggerError as exc:
            raise _Refused(exc.reason, exc.message)
        what = "compact_memory" if nodes == ["all"] else "compact nodes %s" % ",".join(nodes)
        self._trigger(result, step, what + label, [(path, "1") for path in paths])

    def _step_compact(self, result: t.Dict[str, t.Any]) -> None:
        self._compact(result, "compact", "")

    def _step_hugetlb_compact(self, result: t.Dict[str, t.Any]) -> None:
        meminfo = self.latest["meminfo"]
        hp_size = int(meminfo.get("Hugepagesize", 0))
        if hp_size < self.host.page_size:
            raise _Refused("missing", "no Hugepagesize in meminfo: a kernel without CONFIG_HUGETLBFS")
        hp_order = int(round(math.log(hp_size // self.host.page_size, 2)))
        if self.plan.order > hp_order:
            raise _Refused("not_useful", "huge pages are order %d, below the target order %d" % (hp_order, self.plan.order))
        path = self.host.proc_path("sys/vm/nr_hugepages")
        try:
            check_writable(path)
            original = self.host.read_number(path)
        except TriggerError as exc:
            raise _Refused(exc.reason, exc.message)
        wanted = -(-self.progress["shortfall_bytes"] // hp_size)
        room = int(int(meminfo.get("MemFree", 0)) * HUGETLB_FREE_SHARE) // hp_size
        count = min(wanted, room)
        if count <= 0:
            raise _Refused("nothing_to_do", "no room for a huge page within half of MemFree")
        before, started = self.latest, time.monotonic()
        written = []
        obtained = 0
        error = None  # type: t.Optional[TriggerError]
        try:
            self.host.write(path, str(original + count))
            written.append({"path": path, "value": str(original + count)})
            obtained = max(0, self.host.read_number(path) - original)
        except TriggerError as exc:
            error = exc
        finally:
            # Always give the huge pages back, whatever happened above.
            restored = self._restore_number(path, original)
            if written:
                written.append({"path": path, "value": str(original)})
        if written:
            result["changed"] = True
        if not restored:
            raise _Refused("io", "%s could not be put back to %d after allocation-driven compaction; set it back by hand"
                           % (path, original))
        if error is not None and not written:
            raise _Refused(error.reason, error.message)
        self._after("hugetlb_compact", "hugetlb_compact", before, started, written,
                    extra={"huge_pages_wanted": count, "huge_pages_obtained": obtained},
                    detail=" (%d of %d huge pages of %d KiB taken and given back)" % (obtained, count, hp_size // 1024))

    def _restore_number(self, path: str, original: int) -> bool:
        for dummy in range(3):
            try:
                self.host.write(path, str(original))
                if self.host.read_number(path) == original:
                    return True
            except TriggerError as exc:
                self.warnings.append("restoring %s to %d: %s" % (path, original, exc.message))
        return False

    def _step_cgroup_reclaim(self, result: t.Dict[str, t.Any]) -> None:
        try:
            path = self.host.cgroup_reclaim_path(self.plan.cgroup)
        except TriggerError as exc:
            raise _Refused(exc.reason, exc.message)
        amount = self.progress["shortfall_bytes"]
        if amount <= 0:
            raise _Refused("nothing_to_do", "no judged zone is short, so there is no shortfall to reclaim")
        meminfo = self.latest["meminfo"]
        if COLD_CACHE_FIELD not in meminfo:
            # Fail closed: without the cold-cache size the request could not be kept off the hot cache.
            raise _Refused("missing", "meminfo has no %s, so memory.reclaim cannot be kept to cold page cache"
                           % COLD_CACHE_FIELD)
        cold = int(meminfo[COLD_CACHE_FIELD]) // self.host.page_size * self.host.page_size
        if cold <= 0:
            raise _Refused("nothing_to_do", "no inactive page cache: memory.reclaim would evict hot cache")
        capped = cold < amount
        amount = min(amount, cold)
        # Without swap only page cache (and slab) can be reclaimed; with swap, ask for no swapping (6.9+ key),
        # and a kernel that does not know the key refuses it (EINVAL), which skips the step: swapping out
        # applications to defragment is not a bounded, cache-keeping step.
        value = "%d" % amount
        if int(self.latest["meminfo"].get("SwapTotal", 0)) > 0:
            value += " swappiness=0"
        self._trigger(result, "cgroup_reclaim", "cgroup memory.reclaim", [(path, value)], partial_ok=True,
                      detail=" of %d MiB%s" % (amount // MIB, " (capped at the inactive page cache)" if capped else ""),
                      extra={"reclaim_bytes": amount, "capped_at_inactive_file": capped})
        if self.plan.compact_after_free and not self.progress["target_met"]:
            self._compact(result, "cgroup_reclaim", " after memory.reclaim")

    def _step_drop_pagecache(self, result: t.Dict[str, t.Any]) -> None:
        self._drop(result, "drop_pagecache", "1", "drop_caches pagecache")
        if self.plan.compact_after_free and not self.progress["target_met"]:
            self._compact(result, "drop_pagecache", " after drop")

    def _step_drop_slab(self, result: t.Dict[str, t.Any]) -> None:
        reclaimable = int(self.latest["meminfo"].get("SReclaimable", 0))
        if reclaimable < self.plan.slab_min_bytes:
            raise _Refused("nothing_to_do", "SReclaimable is %d MiB, below slab_min_mb=%d" % (
                reclaimable // MIB, self.plan.slab_min_bytes // MIB))
        self._drop(result, "drop_slab", "2", "drop_caches slab")
        if self.plan.compact_after_free and not self.progress["target_met"]:
            self._compact(result, "drop_slab", " after slab drop")

    def _drop(self, result: t.Dict[str, t.Any], step: str, value: str, what: str) -> None:
        try:
            path = self.host.proc_path("sys/vm/drop_caches")
            check_writable(path)
        except TriggerError as exc:
            raise _Refused(exc.reason, exc.message)
        dirty = dirty_bytes(self.latest["meminfo"])
        if dirty > self.plan.max_dirty_bytes:
            raise _Refused("dirty", "Dirty+Writeback is %.0f MiB, above max_dirty_mb=%d: syncing that much would stall the "
                                    "host and dirty pages cannot be dropped anyway; stopping before %s"
                           % (dirty / float(MIB), self.plan.max_dirty_bytes // MIB, what))
        done, waited = self.host.sync(self.plan.sync_timeout)
        if not done:
            raise _Refused("sync_timeout", "sync did not finish within sync_timeout=%ss; not dropping caches while data is "
                                           "still being written" % self.plan.sync_timeout)
        self._trigger(result, step, what, [(path, value)], extra={"sync_seconds": waited})

    # -- one trigger, measured and recorded ---------------------------------------------------------------------------

    def _trigger(self, result: t.Dict[str, t.Any], step: str, what: str, targets: t.List[t.Tuple[str, str]],
                 partial_ok: bool = False, extra: t.Optional[t.Dict[str, t.Any]] = None, detail: str = "") -> None:
        if self.audit_error is not None:
            raise _Refused("io", self.audit_error)
        for path, dummy in targets:
            try:
                check_writable(path)
            except TriggerError as exc:
                raise _Refused(exc.reason, exc.message)
        before, started = self.latest, time.monotonic()
        written = []
        extra = dict(extra or {})
        for path, value in targets:
            try:
                self.host.write(path, value)
            except TriggerError as exc:
                if exc.reason == "partial" and partial_ok:
                    extra["partial"] = True
                else:
                    if written:
                        result["changed"] = True
                        self._after(step, what, before, started, written, extra, detail)
                    raise _Refused(exc.reason, exc.message)
            written.append({"path": path, "value": value})
            result["changed"] = True
        self._after(step, what, before, started, written, extra, detail)

    def _after(self, step: str, what: str, before: t.Dict[str, t.Any], started: float, written: t.List[t.Dict[str, str]],
               extra: t.Optional[t.Dict[str, t.Any]] = None, detail: str = "") -> None:
        seconds = time.monotonic() - started
        try:
            after = self._measure()
        except ProcFileError as exc:
            # Written but not measured: recorded and audited all the same, then the ladder stops.
            self._record(step, what, before, None, seconds, "%s written; the after-measurement failed: %s" % (what, exc),
                         written=written, extra=extra)
            raise
        self.latest = after
        self.progress = self._judge(after)
        delta = counters_delta(before.get("counters"), after.get("counters"))
        line = summary(what + detail, before["zones"], after["zones"], seconds, orders=[self.plan.order],
                       before_mem=before.get("meminfo"), after_mem=after.get("meminfo"), counters=delta)
        if extra and extra.get("partial"):
            line += " (the kernel reclaimed less than asked)"
        self._record(step, what, before, after, seconds, line, written=written, extra=extra, counters=delta)

    def _record(self, step: t.Optional[str], what: str, before: t.Optional[t.Dict[str, t.Any]],
                after: t.Optional[t.Dict[str, t.Any]], seconds: float, line: str, refused: t.Optional[str] = None,
                written: t.Optional[t.List[t.Dict[str, str]]] = None, extra: t.Optional[t.Dict[str, t.Any]] = None,
                counters: t.Optional[t.Dict[str, int]] = None) -> None:
        order = self.plan.order
        entry = {
            "action": what, "step": step, "changed": bool(written), "refused": refused, "elapsed": round(seconds, 3),
            "summary": line, "order": order, "written": written or [],
            "before_high_order_bytes": _judged_bytes(self, before), "after_high_order_bytes": _judged_bytes(self, after),
            "target_met": self.progress["target_met"] if after is not None else None,
        }  # type: t.Dict[str, t.Any]
        if before is not None and after is not None:
            for name in ("Cached", "SReclaimable", "MemFree"):
                if name in before["meminfo"] and name in after["meminfo"]:
                    entry.setdefault("meminfo_delta", {})[name] = after["meminfo"][name] - before["meminfo"][name]
        if counters is not None:
            entry["kernel_counters"] = counters
        entry.update(extra or {})
        self.actions.append(entry)
        if self.audit.fd is not None:
            record = {"time": _stamp(self.now()), "host": socket.gethostname(), "action": ACTION, "step": step,
                      "what": what, "changed": entry["changed"], "refused": refused, "written": entry["written"],
                      "elapsed": entry["elapsed"], "summary": line,
                      "before": _brief(before), "after": _brief(after)}
            try:
                self.audit.write(record)
            except GuardError as exc:
                # The next step could not be audited either: _climb and _trigger stop the ladder.
                self.audit.close()
                self.audit_error = exc.message

    def _audit_end(self, result: t.Dict[str, t.Any]) -> None:
        if self.audit.fd is None:
            return
        try:
            self.audit.write({"time": _stamp(self.now()), "host": socket.gethostname(), "action": ACTION, "step": "end",
                              "changed": result["changed"], "failed": result["failed"], "refused": result["refused"],
                              "target_met": self.progress["target_met"], "steps": [a["action"] for a in self.actions],
                              "reason": self.decision["reason"]})
        except GuardError as exc:
            self.warnings.append(exc.message)

    def _save_state(self) -> None:
        try:
            write_state(self.host.state_dir, ACTION, {"last_run": self.now(), "action": ACTION, "finished": True,
                                                      "steps": [a["action"] for a in self.actions if a["changed"]]})
        except GuardError as exc:
            # The state written before the first trigger still holds the cooldown.
            self.warnings.append(exc.message)

    # -- check mode ------------------------------------------------------------------------------------------------------

    def _check_mode(self, result: t.Dict[str, t.Any], started: float) -> t.Dict[str, t.Any]:
        lock = RunLock(self.host.lock_dir)
        if lock.held_elsewhere():
            return self._finish(result, started, "would refuse: another memfrag reclaim run holds %s" % lock.path,
                                failed=True, refused="lock_held")
        try:
            previous = read_state(self.host.state_dir, ACTION)
        except GuardError as exc:
            return self._finish(result, started, "would refuse: " + exc.message, failed=True, refused=exc.reason)
        remaining = cooldown_remaining(previous, self.plan.cooldown, self.now())
        if remaining > 0:
            message = "would skip %s: within the cooldown (%.0fs left)" % (ACTION, remaining)
            self.actions.append({"action": ACTION, "step": None, "changed": False, "refused": "cooldown", "elapsed": 0.0,
                                 "summary": message})
            return self._finish(result, started, message, refused="cooldown")
        for step in self.plan.steps:
            plan = self._would(step)
            self.actions.append({"action": step, "step": step, "changed": plan is not None, "refused": None if plan else "missing",
                                 "elapsed": 0.0, "summary": "check mode: would %s" % plan if plan else
                                 "check mode: %s is not available here" % step})
        result["changed"] = any(a["changed"] for a in self.actions)
        result["would"] = [a["summary"] for a in self.actions]
        plan = "; ".join(a["action"] for a in self.actions if a["changed"])
        return self._finish(result, started, "check mode: would run, each only while the target is missed: " + plan)

    def _would(self, step: str) -> t.Optional[str]:
        host = self.host
        try:
            if step == "compact":
                paths = compact_paths(host.proc_root, host.sys_root, ["all"] if self.plan.compact_nodes == ["auto"]
                                      else self.plan.compact_nodes)
                for path in paths:
                    check_writable(path)
                return "write 1 to %s" % ", ".join(paths)
            if step == "hugetlb_compact":
                path = host.proc_path("sys/vm/nr_hugepages")
                check_writable(path)
                return "raise %s for the shortfall and put it back" % path
            if step == "cgroup_reclaim":
                return "write the shortfall (%d MiB, at most the inactive page cache) to %s, then compact" % (
                    self.progress["shortfall_bytes"] // MIB, host.cgroup_reclaim_path(self.plan.cgroup))
            path = host.proc_path("sys/vm/drop_caches")
            check_writable(path)
            if step == "drop_pagecache":
                return "sync (at most %ss), then write 1 to %s, then compact" % (self.plan.sync_timeout, path)
            return "write 2 to %s if SReclaimable >= %d MiB" % (path, self.plan.slab_min_bytes // MIB)
        except TriggerError:
            return None

    # -- result -------------------------------------------------------------------------------------------------------------

    def _outcome(self) -> str:
        met = self.progress["target_met"]
        return "reclaim %s: %s" % ("reached the target" if met else "did NOT reach the target",
                                   "; ".join(a["summary"] for a in self.actions) or "no step ran")

    def _finish(self, result: t.Dict[str, t.Any], started: float, msg: str, failed: bool = False,
                refused: t.Optional[str] = None) -> t.Dict[str, t.Any]:
        result.update(msg=msg, failed=failed, refused=refused, elapsed=round(time.monotonic() - started, 3))
        result["warnings"] = self.warnings
        decision = self.decision or {}
        progress = self.progress or decision
        plan = self.plan
        fact = {
            "needed": bool(decision.get("needed")),
            "reason": decision.get("reason", msg),
            "check_mode": self.check_mode,
            "order": plan.order,
            "target_mb": plan.target_mb,
            "actions": [dict((k, a.get(k)) for k in ("action", "step", "changed", "refused", "elapsed", "summary"))
                        for a in self.actions],
            "target_met": progress.get("target_met"),
            "before_high_order_bytes": decision.get("high_order_bytes"),
            "after_high_order_bytes": progress.get("high_order_bytes"),
            "before_free_bytes_at_or_above_order": decision.get("free_bytes_at_or_above_order"),
            "after_free_bytes_at_or_above_order": progress.get("free_bytes_at_or_above_order"),
        }
        result["needed"] = fact["needed"]
        result["target_met"] = fact["target_met"]
        result["steps"] = self.actions
        result["decision"] = decision
        result["ansible_facts"] = {"memfrag_reclaim": fact}
        result["report"] = report_lines(fact)
        return result


def report_lines(fact: t.Dict[str, t.Any]) -> t.List[str]:
    """What the role prints per host: the decision, each step's summary, and the outcome at the target order."""
    lines = [("reclaim needed: " if fact["needed"] else "reclaim not needed, host untouched: ") + str(fact["reason"])]
    lines.extend(a["summary"] for a in fact["actions"])
    if fact["before_high_order_bytes"] is not None:
        lines.append("free in blocks of order >= %d: %.0f MiB -> %.0f MiB, target %d MiB per zone %s%s" % (
            fact["order"], fact["before_high_order_bytes"] / float(MIB), (fact["after_high_order_bytes"] or 0) / float(MIB),
            fact["target_mb"], "met" if fact["target_met"] else "NOT met",
            " (check mode: nothing was written)" if fact["check_mode"] else ""))
    return lines


def _judged_bytes(ladder: Ladder, snap: t.Optional[t.Dict[str, t.Any]]) -> t.Optional[int]:
    if snap is None:
        return None
    return ladder._judge(snap)["high_order_bytes"]


def _brief(snap: t.Optional[t.Dict[str, t.Any]]) -> t.Optional[t.Dict[str, t.Any]]:
    if not snap:
        return None
    return {"zones": [{"node": z["node"], "zone": z["zone"], "free_blocks": z["free_blocks"]} for z in snap["zones"]],
            "meminfo": snap.get("meminfo")}


def _stamp(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
