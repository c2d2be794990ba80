# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kinds of kernel-log event the collection counts: the one list the scanner, the findings and the report share.

Private to the collection. Kept apart from the patterns so that judging a host (findings) does not compile the
scanner's regular expressions.
"""

# Order is the order of the counts in every result and report row.
KINDS = ("xfs_alloc_deadlock", "page_alloc_failure", "page_alloc_stall", "hung_task", "oom_kill")

# What each kind means to an operator, as findings and reports say it.
DESCRIPTIONS = {
    "xfs_alloc_deadlock": "XFS possible memory allocation deadlock messages",
    "page_alloc_failure": "page allocation failures",
    "page_alloc_stall": "page allocation stalls",
    "hung_task": "hung task reports",
    "oom_kill": "OOM kills",
}
