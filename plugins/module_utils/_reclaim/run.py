# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One guarded, measured run of a reclaim trigger (the body of compact_memory and drop_caches).

Order matters: measure, check the interface, then (for real) take the lock, check the cooldown
under the lock (two racing runs must not both pass it), check dirty data and sync (drop_caches),
write the trigger, record the state, measure again, and append the audit line. Every refusal and
failure still releases the lock and is audited; check mode writes nothing at all.
"""


import socket
import time
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.guards import (
    GuardError, RunLock, append_audit, cooldown_remaining, dirty_bytes, read_state, write_state)
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.measure import buddy_snapshot, counters_delta, counters_snapshot, meminfo_snapshot, summary
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.triggers import TriggerError, bounded_sync, check_writable, write_trigger
from ansible_collections.memfrag.linux.plugins.module_utils._units import MIB


# Options both trigger modules take (documented once in the memfrag.linux.reclaim_guards fragment).
GUARD_ARGUMENT_SPEC = dict(
    proc_root=dict(type="path", default="/proc"),
    sys_root=dict(type="path", default="/sys"),
    cooldown=dict(type="int", default=900),
    lock_dir=dict(type="path", default="/run/memfrag"),
    state_dir=dict(type="path", default="/var/lib/memfrag"),
    audit_log=dict(type="path", default="/var/log/memfrag/reclaim.log"),
    page_size=dict(type="int"),
)  # type: t.Dict[str, t.Dict[str, t.Any]]


class Request(object):
    """What to run. ``targets`` is a list of (trigger path, value to write)."""

    def __init__(self, action: str, targets: t.List[t.Tuple[str, str]], proc_root: str, lock_dir: str, state_dir: str,
                 audit_log: str, cooldown: int, check_mode: bool, page_size: int, what: str,
                 measure_meminfo: bool = False, sync: bool = False, sync_timeout: float = 0,
                 max_dirty_bytes: t.Optional[int] = None, measure_counters: bool = False,
                 sync_function: t.Optional[t.Callable[[], None]] = None) -> None:
        self.action = action
        self.targets = targets
        self.proc_root = proc_root
        self.lock_dir = lock_dir
        self.state_dir = state_dir
        self.audit_log = audit_log
        self.cooldown = cooldown
        self.check_mode = check_mode
        self.page_size = page_size
        self.what = what
        self.measure_meminfo = measure_meminfo
        self.sync = sync
        self.sync_timeout = sync_timeout
        self.max_dirty_bytes = max_dirty_bytes
        self.measure_counters = measure_counters
        self.sync_function = sync_function


def _measure(req: Request, warnings: t.List[str]) -> t.Dict[str, t.Any]:
    zones, zone_warnings = buddy_snapshot(req.proc_root, req.page_size)
    warnings.extend(zone_warnings)
    snap = {"zones": zones}  # type: t.Dict[str, t.Any]
    if req.measure_meminfo:
        mem, mem_warnings = meminfo_snapshot(req.proc_root)
        warnings.extend(mem_warnings)
        snap["meminfo"] = mem
    if req.measure_counters:
        snap["counters"] = counters_snapshot(req.proc_root)
    return snap


def run(req: Request, now: t.Callable[[], float] = time.time) -> t.Dict[str, t.Any]:
    """Return the module result (``failed`` set on refusal or error); never raises for kernel trouble."""
    warnings = []  # type: t.List[str]
    result = {"changed": False, "failed": False, "refused": None, "written": [], "warnings": warnings,
              "elapsed": 0.0, "before": None, "after": None, "summary": "",
              "cooldown_remaining": 0.0}  # type: t.Dict[str, t.Any]
    started = time.monotonic()

    def finish(msg: str, failed: bool = False, refused: t.Optional[str] = None, audit: bool = True) -> t.Dict[str, t.Any]:
        result["msg"] = msg
        result["failed"] = failed
        result["refused"] = refused
        result["elapsed"] = round(time.monotonic() - started, 3)
        if not result["summary"]:
            result["summary"] = msg
        if audit and not req.check_mode:
            _audit(req, result, now(), warnings)
        return result

    try:
        result["before"] = _measure(req, warnings)
    except ProcFileError as exc:
        return finish("cannot measure before %s: %s" % (req.action, exc), failed=True, refused="measure")

    try:
        for path, _value in req.targets:
            check_writable(path)
    except TriggerError as exc:
        return finish(exc.message, failed=True, refused=exc.reason)

    lock = RunLock(req.lock_dir)
    if req.check_mode:
        return _check_mode(req, result, lock, finish)

    try:
        lock.acquire()
    except GuardError as exc:
        return finish(exc.message, failed=True, refused=exc.reason)
    try:
        state, state_warnings = read_state(req.state_dir, req.action)
        warnings.extend(state_warnings)
        remaining = cooldown_remaining(state, req.cooldown, now())
        result["cooldown_remaining"] = round(remaining, 1)
        if remaining > 0:
            return finish("%s skipped: last run %.0fs ago, cooldown is %ds (%.0fs left); nothing written"
                          % (req.action, now() - float(state["last_run"]), req.cooldown, remaining), refused="cooldown")
        refusal = _dirty_refusal(req, result["before"])
        if refusal:
            return finish(refusal, failed=True, refused="dirty")
        if req.sync:
            done, waited = bounded_sync(req.sync_timeout, *([req.sync_function] if req.sync_function else []))
            result["sync"] = {"completed": done, "seconds": waited}
            if not done:
                return finish("sync did not finish within sync_timeout=%ss; not dropping caches while data is still "
                              "being written" % req.sync_timeout, failed=True, refused="sync_timeout")
        trigger_started = time.monotonic()
        for path, value in req.targets:
            try:
                write_trigger(path, value)
            except TriggerError as exc:
                return finish(exc.message, failed=True, refused=exc.reason)
            result["written"].append({"path": path, "value": value})
            result["changed"] = True
        trigger_seconds = time.monotonic() - trigger_started
        try:
            write_state(req.state_dir, req.action, {"last_run": now(), "action": req.action, "written": result["written"]})
        except (GuardError, IOError, OSError) as exc:
            warnings.append("cooldown state not saved in %s: %s; the next run will not be held back" % (req.state_dir, exc))
        try:
            result["after"] = _measure(req, warnings)
        except ProcFileError as exc:
            warnings.append("cannot measure after %s: %s" % (req.action, exc))
            return finish("%s written; the after-measurement failed" % req.what)
        before_mem = result["before"].get("meminfo")
        after_mem = result["after"].get("meminfo")
        delta = counters_delta(result["before"].get("counters"), result["after"].get("counters"))
        if delta is not None:
            result["kernel_counters"] = delta
        result["summary"] = summary(req.what, result["before"]["zones"], result["after"]["zones"], trigger_seconds,
                                    before_mem=before_mem, after_mem=after_mem, counters=delta)
        return finish(result["summary"])
    finally:
        lock.release()


def _dirty_refusal(req: Request, before: t.Dict[str, t.Any]) -> t.Optional[str]:
    if req.max_dirty_bytes is None or "meminfo" not in before:
        return None
    dirty = dirty_bytes(before["meminfo"])
    if dirty > req.max_dirty_bytes:
        return ("Dirty+Writeback is %.0f MiB, above max_dirty_mb=%d: syncing that much would stall the host and "
                "dirty pages cannot be dropped anyway; refusing" % (dirty / float(MIB), req.max_dirty_bytes // MIB))
    return None


def _check_mode(req: Request, result: t.Dict[str, t.Any], lock: RunLock, finish: t.Callable[..., t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
    warnings = result["warnings"]
    if lock.held_elsewhere():
        return finish("would refuse: another memfrag reclaim run holds %s" % lock.path, failed=True, refused="lock_held")
    state, state_warnings = read_state(req.state_dir, req.action)
    warnings.extend(state_warnings)
    remaining = cooldown_remaining(state, req.cooldown, time.time())
    result["cooldown_remaining"] = round(remaining, 1)
    if remaining > 0:
        return finish("would skip %s: within the cooldown (%.0fs left)" % (req.action, remaining), refused="cooldown")
    refusal = _dirty_refusal(req, result["before"])
    if refusal:
        return finish("would refuse: " + refusal, failed=True, refused="dirty")
    plan = ", ".join("write %s to %s" % (value, path) for path, value in req.targets)
    if req.sync:
        plan = "sync (at most %ss), then %s" % (req.sync_timeout, plan)
    result["changed"] = True
    result["would"] = plan
    return finish("check mode: would %s" % plan)


def _audit(req: Request, result: t.Dict[str, t.Any], when: float, warnings: t.List[str]) -> None:
    def brief(snap: t.Optional[t.Dict[str, t.Any]]) -> t.Optional[t.Dict[str, t.Any]]:
        if not snap:
            return None
        out = {"zones": [{"node": z["node"], "zone": z["zone"], "free_blocks": z["free_blocks"]} for z in snap["zones"]]}  # type: t.Dict[str, t.Any]
        if "meminfo" in snap:
            out["meminfo"] = snap["meminfo"]
        return out

    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
        "host": socket.gethostname(),
        "action": req.action,
        "changed": result["changed"],
        "failed": result["failed"],
        "refused": result["refused"],
        "written": result["written"],
        "elapsed": result["elapsed"],
        "summary": result["summary"],
        "before": brief(result["before"]),
        "after": brief(result["after"]),
    }
    try:
        append_audit(req.audit_log, record)
    except (GuardError, IOError, OSError) as exc:
        warnings.append("audit log %s not written: %s" % (req.audit_log, exc))
