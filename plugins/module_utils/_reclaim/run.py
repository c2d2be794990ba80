# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One guarded, measured run of a reclaim trigger (the body of compact_memory and drop_caches).

Order matters: measure, check the interface, then (for real) take the lock, check the cooldown
under the lock (two racing runs must not both pass it), check dirty data, open the audit log and
save the cooldown state (a run that can do neither triggers nothing), sync (drop_caches), write the
trigger, measure again, and append the audit line. Once the audit log is open every outcome is
audited and the lock released; a run that wrote nothing puts the cooldown state back as it was.
Check mode writes nothing at all.
"""


import socket
import time
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.buddyinfo import MAX_ORDERS
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, page_size_problem
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.guards import (
    AuditLog, GuardError, RunLock, cooldown_remaining, dirty_bytes, read_state, restore_state, write_state)
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.measure import buddy_snapshot, counters_delta, counters_snapshot, meminfo_snapshot, summary
from ansible_collections.memfrag.linux.plugins.module_utils._units import MIB
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.triggers import NODE_ID, TriggerError, bounded_sync, check_writable, write_trigger


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


# Counts and durations above this are typing mistakes (a billion MiB, 30 years of seconds).
MAX_OPTION_VALUE = 10 ** 9
MAX_SYNC_TIMEOUT = 86400


def check_options(params: t.Mapping[str, t.Any], counts: t.Sequence[str] = ()) -> t.Optional[str]:
    """Why the guard options (and the named non-negative ``counts``) are unusable, or None.

    A page size that is not a power of two of at least 512 (``-4096`` was accepted once) and node ids that are
    not the kernel's ASCII digits ('²'.isdigit() is true) are refused here, before anything is measured.
    """
    problem = page_size_problem(params.get("page_size"))
    if problem:
        return problem
    for name in ("cooldown",) + tuple(counts):
        value = params.get(name)
        if value is not None and not 0 <= value <= MAX_OPTION_VALUE:
            return "%s must be between 0 and %d, got %d" % (name, MAX_OPTION_VALUE, value)
    # An order outside buddyinfo's columns was measured as the last column (orders: [-1]) or not at all.
    bad_orders = [order for order in params.get("orders") or () if not 0 <= order < MAX_ORDERS]
    if bad_orders:
        order = bad_orders[0]
        return "orders must be buddy orders from 0 to %d, got %s" % (
            MAX_ORDERS - 1, order if abs(order) < 10 ** 30 else "a %d-digit number" % len(str(abs(order))))
    if params.get("sync_timeout") is not None and params["sync_timeout"] > MAX_SYNC_TIMEOUT:
        return "sync_timeout must be at most %d seconds" % MAX_SYNC_TIMEOUT
    for name in ("nodes", "compact_nodes"):
        nodes = params.get(name)
        if nodes is None or [str(n) for n in nodes] in (["all"], ["auto"] if name == "compact_nodes" else ["all"]):
            continue
        bad = [n for n in nodes if not NODE_ID.match(str(n))]
        if bad or not nodes:
            return "%s must be %s or a list of NUMA node ids (ASCII digits), got %r" % (
                name, "[auto], [all]" if name == "compact_nodes" else "[all]", bad[0] if bad else nodes)
    return None


class Request(object):
    """What to run. ``targets`` is a list of (trigger path, value to write)."""

    def __init__(self, action: str, targets: t.List[t.Tuple[str, str]], proc_root: str, lock_dir: str, state_dir: str,
                 audit_log: str, cooldown: int, check_mode: bool, page_size: int, what: str,
                 measure_meminfo: bool = False, sync: bool = False, sync_timeout: float = 0,
                 max_dirty_bytes: t.Optional[int] = None, measure_counters: bool = False,
                 sync_function: t.Optional[t.Callable[[], None]] = None, orders: t.Sequence[int] = (4, 9)) -> None:
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
        self.orders = list(orders)


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
    audit = AuditLog(req.audit_log)

    def finish(msg: str, failed: bool = False, refused: t.Optional[str] = None) -> t.Dict[str, t.Any]:
        result["msg"] = msg
        result["failed"] = failed
        result["refused"] = refused
        result["elapsed"] = round(time.monotonic() - started, 3)
        if not result["summary"]:
            result["summary"] = msg
        if audit.fd is not None:
            _audit(req, result, now(), warnings, audit)
        return result

    if not req.check_mode:
        # Fail closed: a run that cannot be audited never reaches the trigger (and every outcome from here on,
        # refusals included, gets its audit line).
        try:
            audit.open()
        except GuardError as exc:
            return finish(exc.message, failed=True, refused=exc.reason)
    try:
        return _guarded(req, result, warnings, finish, audit, now)
    finally:
        audit.close()


def _guarded(req: Request, result: t.Dict[str, t.Any], warnings: t.List[str], finish: t.Callable[..., t.Dict[str, t.Any]],
             audit: AuditLog, now: t.Callable[[], float]) -> t.Dict[str, t.Any]:
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
        try:
            state = read_state(req.state_dir, req.action)
        except GuardError as exc:
            return finish(exc.message, failed=True, refused=exc.reason)
        remaining = cooldown_remaining(state, req.cooldown, now())
        result["cooldown_remaining"] = round(remaining, 1)
        if remaining > 0:
            return finish("%s skipped: last run %.0fs ago, cooldown is %ds (%.0fs left); nothing written"
                          % (req.action, now() - float(state["last_run"]), req.cooldown, remaining), refused="cooldown")
        refusal = _dirty_refusal(req, result["before"])
        if refusal:
            return finish(refusal, failed=True, refused="dirty")
        # Fail closed: the cooldown is saved before the trigger is written, so a run whose state cannot be kept
        # (a symlinked or unwritable state_dir) never reaches the kernel and can never escape the cooldown.
        try:
            write_state(req.state_dir, req.action, {"last_run": now(), "action": req.action, "written": []})
        except GuardError as exc:
            return finish(exc.message, failed=True, refused=exc.reason)
        return _trigger(req, result, warnings, finish, state, now)
    finally:
        lock.release()


def _trigger(req: Request, result: t.Dict[str, t.Any], warnings: t.List[str], finish: t.Callable[..., t.Dict[str, t.Any]],
             previous: t.Optional[t.Dict[str, t.Any]], now: t.Callable[[], float]) -> t.Dict[str, t.Any]:
    def undo_state() -> None:
        # Nothing reached the kernel: put the cooldown back as it was.
        try:
            restore_state(req.state_dir, req.action, previous)
        except GuardError as exc:
            warnings.append(exc.message)

    if req.sync:
        done, waited = bounded_sync(req.sync_timeout, *([req.sync_function] if req.sync_function else []))
        result["sync"] = {"completed": done, "seconds": waited}
        if not done:
            undo_state()
            return finish("sync did not finish within sync_timeout=%ss; not dropping caches while data is still "
                          "being written" % req.sync_timeout, failed=True, refused="sync_timeout")
    trigger_started = time.monotonic()
    for path, value in req.targets:
        try:
            write_trigger(path, value)
        except TriggerError as exc:
            if not result["written"]:
                undo_state()
            return finish(exc.message, failed=True, refused=exc.reason)
        result["written"].append({"path": path, "value": value})
        result["changed"] = True
    trigger_seconds = time.monotonic() - trigger_started
    try:
        write_state(req.state_dir, req.action, {"last_run": now(), "action": req.action, "written": result["written"]})
    except GuardError as exc:
        warnings.append("%s (the record written before the trigger still holds the cooldown)" % exc.message)
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
                                orders=req.orders, before_mem=before_mem, after_mem=after_mem, counters=delta)
    return finish(result["summary"])


def _dirty_refusal(req: Request, before: t.Dict[str, t.Any]) -> t.Optional[str]:
    if req.max_dirty_bytes is None or "meminfo" not in before:
        return None
    dirty = dirty_bytes(before["meminfo"])
    if dirty > req.max_dirty_bytes:
        return ("Dirty+Writeback is %.0f MiB, above max_dirty_mb=%d: syncing that much would stall the host and "
                "dirty pages cannot be dropped anyway; refusing" % (dirty / float(MIB), req.max_dirty_bytes // MIB))
    return None


def _check_mode(req: Request, result: t.Dict[str, t.Any], lock: RunLock, finish: t.Callable[..., t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
    if lock.held_elsewhere():
        return finish("would refuse: another memfrag reclaim run holds %s" % lock.path, failed=True, refused="lock_held")
    try:
        state = read_state(req.state_dir, req.action)
    except GuardError as exc:
        return finish("would refuse: " + exc.message, failed=True, refused=exc.reason)
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


def _audit(req: Request, result: t.Dict[str, t.Any], when: float, warnings: t.List[str], audit: AuditLog) -> None:
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
        audit.write(record)
    except GuardError as exc:
        warnings.append(exc.message)
