# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of one kernel log scan, apart from the scanner.

The kernel_log_scan module's options and memory_facts' ``kernel_log`` suboptions are one argument spec,
SCAN_OPTIONS. It lives here, not in _kernel_log_scan, because a module compiles every module_utils file it
imports on the target at each run: memory_facts declares the spec on every host and imports the scanner
only on hosts that scan.
"""


import typing as t

SOURCES = ("kmsg", "journal", "files")
DEFAULT_PATHS = ("/var/log/messages*", "/var/log/kern.log*", "/var/log/syslog*")

SCAN_OPTIONS = dict(
    sources=dict(type="list", elements="str", choices=list(SOURCES)),
    paths=dict(type="list", elements="str", default=list(DEFAULT_PATHS)),
    since=dict(type="str"),
    kernel_release=dict(type="str"),
    max_events=dict(type="int", default=100),
    include_userspace_kmsg=dict(type="bool", default=False),
)

# Warnings shown one by one; the rest are summed up in one line (a directory of unreadable rotated logs
# would otherwise bury the result).
MAX_WARNINGS = 20


def warnings_to_show(warnings: t.Sequence[str]) -> t.List[str]:
    """The first MAX_WARNINGS warnings, and one line counting the rest."""
    shown = list(warnings[:MAX_WARNINGS])
    if len(warnings) > MAX_WARNINGS:
        shown.append("%d more warnings not shown" % (len(warnings) - MAX_WARNINGS))
    return shown
