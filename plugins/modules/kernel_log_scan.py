#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
module: kernel_log_scan
short_description: Find allocation deadlocks, page allocation failures, stalls, hung tasks and OOM kills in kernel logs
version_added: 0.1.0
author: memfrag.linux contributors (@memfrag)
description:
  - Scans the kernel ring buffer (C(/dev/kmsg)), the systemd journal (kernel transport) and syslog files
    (rotated and compressed ones included) for the messages memory fragmentation causes, and summarises them
    per kind with exact counts, first and last time seen, and a bounded list of events with the fields each
    message carries (order, GFP mode and flag names, task, pid, size, function, seconds, killed pid).
  - "Recognises every era's wording: XFS C(possible memory allocation deadlock) (with and without the task name, pid
    and C(size N); kmem_alloc, kmem_zone_alloc, kmem_realloc, xfs_buf_allocate_memory), C(page allocation failure)
    (including 2.6's C(failure. order:N)), C(page allocation stalls for Nms) (4.9-4.14), C(blocked for more than N
    seconds) and OOM kills (C(Killed process), C(Kill process ... sharing same memory)), counting one per killed
    process. Other filesystems' C(Possible memory allocation deadlock) messages are not XFS events."
  - 'Only the kernel speaks, and who wrote a line is settled before its message is looked at. In syslog files a
    line counts only when its program tag is exactly C(kernel:) (the kernel never logs a pid, so C(kernel[4242]:)
    is a program), so C(logger "XFS: possible memory allocation deadlock ...") or an sshd line quoting that text
    does not create an event and is never parsed further. A line without any prefix (a wrapped continuation)
    belongs to the line before it. C(dmesg) and C(dmesg -T) formatted files, and bare excerpts, are taken as
    kernel output. In the ring buffer and the journal a record counts only when its syslog facility is C(kern)
    (0); see O(include_userspace_kmsg). Each event says its O(sources) and C(origin), so a play can insist on
    ring-buffer or journal evidence.'
  - Fast on big logs. Files are read in 1 MiB binary chunks and searched for five fixed strings with libc's
    C(strstr) (through Python's ctypes; Python's own substring search when that is unavailable); each hit is
    confirmed in place and only the lines holding one are decoded and parsed. An uncompressed file with more
    than 64 MiB to read is split at a line boundary and its second half is scanned by a forked child process at
    the same time when the host has two or more usable CPUs. With O(state_file) a second run reads only bytes
    appended since the first.
  - Linear time and bounded memory on any input. Lines longer than 8 KiB (no kernel line comes near that) are
    skipped; every message form is found by a fixed string and parsed from fixed positions, so no line costs more
    than its length whatever it holds; numbers are bounded before they are converted (a value no kernel prints
    leaves that field null, with a warning). Memory is the read buffer plus the kept events.
  - Damage never stops a scan. Binary junk (NUL runs), bytes that are not UTF-8, lines longer than any kernel
    message and compressed files that end early are reported as warnings and the rest is still read. Paths
    that are not regular files (FIFOs, devices, sockets, C(/proc/*/fd/*) links) are skipped unopened.
  - Log text pasted from web pages or tickets often has non-breaking spaces (U+00A0) between words; such lines
    are read as if they had spaces, and their events say C(byte_exact=false).
  - The same kernel message usually sits in the ring buffer, the journal and a syslog file. Sources are read in
    that order and an event from a later source stamped after the earliest record of an earlier source is
    counted once (see RV(ignored.duplicates)); so is a kernel line that the syslog daemon wrote to two files.
    Syslog stamps whole seconds and ring-buffer times are converted from uptime, so a copy can be stamped just
    before that earliest record. Within 2 seconds before it, an event counts as a copy only when the earlier
    source has the same message at its start; a clock step of more than that can still count an edge event twice.
options:
  sources:
    description:
      - Where to look. V(kmsg) is the kernel ring buffer read through C(/dev/kmsg) (non-blocking; the module
        never waits for new messages). V(journal) is C(journalctl _TRANSPORT=kernel) of every boot, in JSON.
        V(files) are the log files in O(paths).
      - Default is every source present on the host; a missing one is listed in RV(skipped_sources) with the
        reason. A source named explicitly but missing gives a warning, not a failure.
    type: list
    elements: str
    choices: [kmsg, journal, files]
  paths:
    description:
      - Files or shell globs for the V(files) source. Rotated files (C(messages-20240101), C(syslog.2.gz)) are
        included by the globs; gzip, xz and bzip2 compression is recognised by content, not by name.
      - Files are read oldest first (by modification time), so RV(events) ends with the newest.
      - A symbolic link pointing outside its own directory is not followed.
    type: list
    elements: str
    default: ["/var/log/messages*", "/var/log/kern.log*", "/var/log/syslog*"]
  since:
    description:
      - Only events newer than this. A duration back from now (V(24h), V(30m), V(7d), V(2w), or seconds as
        V(3600)), or an ISO 8601 time (V(2024-03-05T22:00:00), V(2024-03-05T22:00:00+01:00)) or date.
      - Applies where a line has a time. Syslog dates lack the year; it is taken from the file's modification
        time. Lines with only an uptime (C([ 123.456])) or no time at all are always counted.
    type: str
  state_file:
    description:
      - Remember how far each source was read (inode, head hash and byte offset per file, cursor for the
        journal, boot id and sequence number for the ring buffer) so the next run reports only new events and
        reads only new bytes.
      - A truncated or replaced file is read again from the start; a rotated file (renamed, copied, or
        compressed into C(.gz)) is recognised by its first bytes and resumes where it was left.
      - Written atomically (temporary file and rename) with mode 0600; not written in check mode.
      - A path that exists and is not a regular file (a FIFO, a device, a directory) fails the module before
        anything is read; it is never opened in a way that could block. Records with fields of the wrong type or
        range are dropped with a warning and those sources are read from the start.
    type: path
  kernel_release:
    description:
      - Kernel release whose GFP bit layout decodes C(mode:0x...) values printed without flag names (every XFS
        message; page allocation failures before about 4.5), for every event. Names the kernel printed itself are
        used as printed.
      - "Default is the release each log names itself - the boot line C(Linux version ...), the taint line of a
        stack dump (C(CPU: 3 PID: 1 Comm: x Not tainted 3.10.0-1160.el7.x86_64 #1), C(Tainted: G ... 4.19.0-...))
        near an event - nearest before the event in the same file (else in the older files of the same scan; a file
        resumed through O(state_file) remembers it), in the same boot of the journal; the ring buffer is the running
        kernel's. They are found in the same pass as the events. Where a log names none, the running kernel, with
        a warning. Each decoded event says C(gfp_release) and C(gfp_release_source)."
    type: str
  max_events:
    description:
      - Keep at most this many events (the newest) in RV(events); RV(counts) stay exact and
        RV(events_dropped) says how many were left out. At most 1000000.
    type: int
    default: 100
  include_userspace_kmsg:
    description:
      - The kernel writes its own messages with syslog facility C(kern) (0). A process that writes into
        C(/dev/kmsg) (any root process can) gets facility C(user) unless it asks for another one, never C(kern).
        Such records look like kernel lines but prove nothing about the kernel, so by default they are ignored and
        only counted in RV(ignored.userspace_kmsg).
      - Set to V(true) to count them too, with origin C(kmsg_userspace) or C(journal_userspace) (useful for
        testing alerting with injected lines).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The scan runs; O(state_file) is not written and C(changed) says whether it would have been.
  diff_mode:
    support: none
  platform:
    platforms: posix
    support: full
    details: Linux only (C(/dev/kmsg), journald, syslog files).
notes:
  - Needs root to read C(/dev/kmsg) when C(kernel.dmesg_restrict=1) and to read most files under C(/var/log).
  - Speed, measured on a 1 GiB syslog with a few hundred matching lines (see
    C(tests/benchmarks/bench_kernel_log_scan.py)), is in the collection README.
seealso:
  - name: Kernel documentation of /dev/kmsg
    description: Record format and facility rules for records written by userspace.
    link: https://www.kernel.org/doc/Documentation/ABI/testing/dev-kmsg
"""

EXAMPLES = r"""
- name: Scan every kernel log source on the host for the last day
  memfrag.linux.kernel_log_scan:
    since: 24h
  register: memfrag_log_scan

- name: Fail when XFS could not allocate memory recently
  ansible.builtin.assert:
    that: memfrag_log_scan.counts.xfs_alloc_deadlock == 0
    fail_msg: >-
      {{ memfrag_log_scan.counts.xfs_alloc_deadlock }} XFS allocation deadlock message(s), last at
      {{ memfrag_log_scan.last_seen.xfs_alloc_deadlock }}

- name: Only new events since the previous run (e.g. from a timer), only from the kernel itself
  memfrag.linux.kernel_log_scan:
    sources: [kmsg, journal]
    state_file: /var/lib/memfrag/kernel_log_scan.json

- name: Old logs copied from a RHEL 7 host (GFP modes decoded with the release the logs name)
  memfrag.linux.kernel_log_scan:
    sources: [files]
    paths:
      - /srv/incident-42/var/log/messages*
    max_events: 20

- name: An excerpt that names no kernel, from a known one
  memfrag.linux.kernel_log_scan:
    sources: [files]
    paths: [/srv/incident-43/excerpt.txt]
    kernel_release: 3.10.0-1160.el7.x86_64
"""

RETURN = r"""
counts:
  description: Events per kind, after O(since) and de-duplication. Every key is always present.
  returned: always
  type: dict
  contains:
    xfs_alloc_deadlock:
      description: XFS C(possible memory allocation deadlock) messages.
      type: int
    page_alloc_failure:
      description: C(page allocation failure) messages.
      type: int
    page_alloc_stall:
      description: C(page allocation stalls for) messages (kernels 4.9-4.14 only).
      type: int
    hung_task:
      description: C(blocked for more than N seconds) hung-task reports.
      type: int
    oom_kill:
      description: Processes killed by the OOM killer (one per C(Killed process) or C(sharing same memory) line).
      type: int
  sample: {xfs_alloc_deadlock: 2, page_alloc_failure: 0, page_alloc_stall: 0, hung_task: 1, oom_kill: 0}
forms:
  description:
    - Lines per message form, finer than RV(counts). The OOM report parts C(oom_invoked) (C(invoked oom-killer)),
      C(oom_kill_candidate) (C(Kill process ... score ... or sacrifice child)) and C(oom_constraint)
      (C(oom-kill:constraint=)) are counted here but are not kills.
  returned: always
  type: dict
  sample: {xfs_alloc_deadlock: 2, page_alloc_failure: 0, page_alloc_stall: 0, hung_task: 1, oom_invoked: 1,
           oom_kill_candidate: 1, oom_constraint: 0, oom_killed: 1, oom_kill_shared_mm: 0}
first_seen:
  description: Per kind, the time of the earliest event with a usable time (ISO 8601, UTC), or null.
  returned: always
  type: dict
  sample: {xfs_alloc_deadlock: "2024-03-05T21:42:57+00:00", page_alloc_failure: null, page_alloc_stall: null,
           hung_task: "2024-03-05T21:43:34+00:00", oom_kill: null}
last_seen:
  description: Per kind, the time of the latest event with a usable time (ISO 8601, UTC), or null.
  returned: always
  type: dict
  sample: {xfs_alloc_deadlock: "2024-03-05T21:42:59+00:00", page_alloc_failure: null, page_alloc_stall: null,
           hung_task: "2024-03-05T21:43:34+00:00", oom_kill: null}
events:
  description: The newest O(max_events) events, oldest first. Keys a line does not carry are absent.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: One of the RV(counts) keys.
      type: str
    form:
      description: The message form (a RV(forms) key).
      type: str
    source:
      description: V(kmsg), V(journal) or V(files).
      type: str
    origin:
      description:
        - Who vouches that the kernel wrote it. C(kmsg) and C(journal) - a facility-0 record of the ring buffer or
          the journal's kernel transport. C(kmsg_userspace), C(journal_userspace) - written by a process (only with
          O(include_userspace_kmsg)). C(syslog) - a syslog line tagged C(kernel) (as trustworthy as the syslog
          daemon). C(dmesg) - a dmesg-formatted line in a file. C(text) - a file line with no prefix.
      type: str
    path:
      description: The file, for V(files).
      type: str
    timestamp:
      description: Time of the line (ISO 8601, UTC), or null when the line has none.
      type: str
    uptime:
      description: Seconds since boot, when the line carries C([ 123.456]) or comes from the ring buffer.
      type: float
    message:
      description: The kernel message without log prefixes (at most 1024 characters).
      type: str
    comm:
      description: Task name (allocating task; hung task; killed process for C(oom_kill)).
      type: str
    pid:
      description: Process id of the task, when the line gives it.
      type: int
    order:
      description: Allocation order (page allocation failure/stall; for C(oom_kill), of the allocation that invoked the OOM killer).
      type: int
    mode:
      description: GFP mask as an integer (C(mode:0x...) or C(gfp_mask=0x...)).
      type: int
    gfp_flags:
      description: Flag names, as the kernel printed them or decoded for O(kernel_release) (see C(gfp_flags_source)).
      type: list
      elements: str
    gfp_flags_source:
      description: C(kernel) when the line carried the names, else C(decoded for <release>).
      type: str
    gfp_release:
      description: The kernel release whose GFP layout decoded C(mode), when the line carried no names.
      type: str
    gfp_release_source:
      description:
        - "Where C(gfp_release) came from - C(kernel_release option), a C(Linux version line) or C(taint line) at an
          offset of a file (or a record of a saved ring buffer, or a boot of the journal), C(running kernel (this
          boot's ring buffer)), or C(running kernel (fallback: the log names no release)) (with a warning)."
      type: str
    byte_exact:
      description:
        - False when the line was not byte for byte what the kernel printed - non-breaking spaces read as spaces
          (text pasted from a web page or ticket) or bytes that are not UTF-8 (shown as U+FFFD).
      type: bool
    size:
      description: Bytes XFS tried to allocate (4.4+ message form).
      type: int
    function:
      description: XFS function that retried (kmem_alloc, kmem_zone_alloc, kmem_realloc, xfs_buf_allocate_memory).
      type: str
    seconds:
      description: Hung-task time; stall duration for page allocation stalls.
      type: float
    killed_pid:
      description: PID the OOM killer killed.
      type: int
    invoked_by:
      description: For C(oom_kill), the task whose allocation invoked the OOM killer (from the same report).
      type: str
  sample:
    - kind: xfs_alloc_deadlock
      form: xfs_alloc_deadlock
      source: files
      origin: syslog
      path: /var/log/messages
      timestamp: "2024-03-05T21:42:57+00:00"
      message: "XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250)"
      function: kmem_alloc
      mode: 592
      byte_exact: true
      gfp_flags: [GFP_NOFS, __GFP_NOWARN]
      gfp_flags_source: decoded for 3.10.0-1160.el7.x86_64
      gfp_release: 3.10.0-1160.el7.x86_64
      gfp_release_source: Linux version line at offset 0 of /var/log/messages
events_dropped:
  description: Events counted but left out of RV(events) because of O(max_events).
  returned: always
  type: int
ignored:
  description: Matching lines that were not counted, and why.
  returned: always
  type: dict
  contains:
    not_kernel:
      description:
        - Syslog lines holding the text of an event whose program tag is not exactly C(kernel:) (logger, sshd
          quoting the text, C(kernel[4242]:)...). Their message is not classified.
      type: int
    userspace_kmsg:
      description: Ring-buffer or journal records written by a process, not the kernel (see O(include_userspace_kmsg)).
      type: int
    before_since:
      description: Events older than O(since).
      type: int
    duplicates:
      description: Events already counted from an earlier source, or from another file holding the same line
        (same host, second and message; rsyslog on Debian writes kernel lines to both C(kern.log) and C(syslog)).
      type: int
sources:
  description: What each source did. C(files.files) lists every file with its status (C(new), C(resumed),
    C(rotated), C(truncated), C(replaced) - same inode, other content - or C(unchanged)), compression and the byte range read.
  returned: always
  type: dict
  sample:
    kmsg: {status: scanned, records: 1024, new_records: 1024, oldest: "2024-03-05T08:00:01+00:00"}
    journal: {status: skipped, reason: no journal files under /var/log/journal or /run/log/journal}
    files: {status: scanned, notes: [], files: [{path: /var/log/messages, status: new, compression: null, start: 0,
            end: 1048576, bytes_read: 1048576}]}
skipped_sources:
  description: Sources that were not read (absent on the host); RV(sources) gives the reason.
  returned: always
  type: list
  elements: str
  sample: [journal]
kernel_release:
  description:
    - O(kernel_release) when given, else the running kernel (what events fall back to where a log names no
      release; each decoded event says its own C(gfp_release)).
  returned: always
  type: str
since:
  description: O(since) as an absolute time (ISO 8601, UTC), or null.
  returned: always
  type: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.options import SCAN_OPTIONS, warnings_to_show
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import run_scan
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import empty_state, load_state, save_state, state_path_problem


def main():
    module = AnsibleModule(
        argument_spec=dict(SCAN_OPTIONS, state_file=dict(type="path")),
        supports_check_mode=True,
    )
    params = module.params
    warnings = []
    state_path = params["state_file"]
    state = empty_state()
    if state_path:
        problem = state_path_problem(state_path)
        if problem:
            module.fail_json(msg=problem)
        state, problem = load_state(state_path)
        if problem:
            warnings.append(problem)

    try:
        result, new_state = run_scan(params, state, warnings.append, module.get_bin_path("journalctl"), time.time())
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    changed = False
    if state_path:
        if module.check_mode:
            changed = new_state != state
        else:
            directory = os.path.dirname(os.path.abspath(state_path))
            if not os.path.isdir(directory):
                module.fail_json(msg="state_file: directory %s does not exist" % directory, **result)
            try:
                changed = save_state(state_path, new_state)
            except (IOError, OSError) as exc:
                module.fail_json(msg="state_file %s could not be written: %s" % (state_path, exc), **result)

    for text in warnings_to_show(warnings):
        module.warn(text)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
