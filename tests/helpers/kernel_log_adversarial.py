# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel log lines built to make a pattern matcher backtrack: one generator per trick and pattern.

Shared by the linear-time unit test and the hostile-file benchmark. Each generator takes a length and
returns a message of about that many characters:

- repeated prefixes of every form (``XFS: `` twelve thousand times before ``possible memory allocation
  deadlock``, the case from issue 18, and its kin for every other form and prefix pattern),
- long digit runs where a form has a number (pid, order, mode, seconds, uptime),
- nested parentheses where a form has a comm or flag names in parentheses,
- long runs of the separator each form uses (spaces, colons, commas, ``|``).
"""

from __future__ import annotations


def _fill(head, unit, tail, length):
    count = max(1, (length - len(head) - len(tail)) // max(1, len(unit)))
    return head + unit * count + tail


# (name, build(length) -> message); messages are kernel message text (no syslog prefix)
GENERATORS = [
    # repeated prefixes of every form
    ("xfs prefix repeated", lambda n: _fill("", "XFS: ", "possible memory allocation deadlock", n)),
    ("xfs comm prefix repeated", lambda n: _fill("", "XFS: a(1", ") possible memory allocation deadlock", n)),
    ("xfs needle repeated", lambda n: _fill("", "XFS: possible memory allocation deadlock ", "", n)),
    ("paf prefix repeated", lambda n: _fill("", "x: page allocation failure", "", n)),
    ("paf colon comm repeated", lambda n: _fill("", "a: ", "page allocation failure: order:1", n)),
    ("stall prefix repeated", lambda n: _fill("", "x: page allocation stalls for ", "1ms", n)),
    ("stall without ms repeated", lambda n: _fill("", ": page allocation stalls for 1", "", n)),
    ("hung task prefix repeated", lambda n: _fill("INFO: ", "task ", "x:1 blocked for more than 1 seconds", n)),
    ("hung task needle repeated", lambda n: _fill("", "task a:1 blocked for more than ", "1 seconds", n)),
    ("hung blocked repeated", lambda n: _fill("", " blocked for more than 1", " seconds", n)),
    ("oom invoked repeated", lambda n: _fill("", "x invoked oom-killer: gfp_mask=0x", "1", n)),
    ("oom constraint repeated", lambda n: _fill("", "oom-kill:constraint=A", ",task=x,pid=1", n)),
    ("oom constraint task repeated", lambda n: _fill("oom-kill:constraint=A", ",task=", ",pid=1", n)),
    ("oom killed repeated", lambda n: _fill("", ": Killed process 1 (", ")", n)),
    ("oom candidate repeated", lambda n: _fill("", "Kill process 1 (x", ") score 1 or a child", n)),
    ("oom shared repeated", lambda n: _fill("", "Kill process 1 (", "x) sharing same memory", n)),
    ("release prefix repeated", lambda n: _fill("", "Linux version ", "3.10.0", n)),
    ("taint prefix repeated", lambda n: _fill("", "Tainted: G ", "4.19.0", n)),
    # long digit runs
    ("xfs pid digits", lambda n: _fill("XFS: a(", "1", ") possible memory allocation deadlock size 1 in kmem_alloc", n)),
    ("xfs size digits", lambda n: _fill("XFS: possible memory allocation deadlock size ", "9", " in kmem_alloc", n)),
    ("xfs mode hex digits", lambda n: _fill("XFS: possible memory allocation deadlock in kmem_alloc (mode:0x", "f", ")", n)),
    ("paf order digits", lambda n: _fill("x: page allocation failure: order:", "7", ", mode:0x20", n)),
    ("stall ms digits", lambda n: _fill("x: page allocation stalls for ", "5", "ms, order:0", n)),
    ("hung pid digits", lambda n: _fill("INFO: task x:", "1", " blocked for more than 120 seconds.", n)),
    ("hung seconds digits", lambda n: _fill("INFO: task x:1 blocked for more than ", "1", " seconds.", n)),
    ("hung seconds digits no unit", lambda n: _fill("INFO: task x:1 blocked for more than ", "1", "", n)),
    ("oom order digits", lambda n: _fill("x invoked oom-killer: gfp_mask=0x201da, order=", "1", ", oom_score_adj=0", n)),
    ("oom killed pid digits", lambda n: _fill("Killed process ", "4", " (java)", n)),
    ("oom score digits", lambda n: _fill("Kill process 1 (x) score ", "9", " or a child", n)),
    ("uptime digits", lambda n: _fill("[", "1", ".5] XFS: possible memory allocation deadlock", n)),
    ("uptime fraction digits", lambda n: _fill("[1.", "5", "] XFS: possible memory allocation deadlock", n)),
    # nested parentheses
    ("xfs parentheses", lambda n: _fill("XFS: ", "(", "1) possible memory allocation deadlock", n)),
    ("paf names parentheses", lambda n: _fill("x: page allocation failure: order:1, mode:0x20", "(", ")", n)),
    ("oom names parentheses", lambda n: _fill("x invoked oom-killer: gfp_mask=0x20", "(", "), order=0", n)),
    ("oom killed parentheses", lambda n: _fill("Killed process 1 ", "(", "x)", n)),
    ("oom candidate parentheses", lambda n: _fill("Kill process 1 (", "(", ") score 1 or a child", n)),
    ("oom shared parentheses", lambda n: _fill("Kill process 1 (", "(x) ", "sharing same memory", n)),
    # long runs of each form's separators
    ("xfs spaces", lambda n: _fill("XFS: possible memory allocation deadlock", " ", "size 1 in kmem_alloc (mode:0x250)", n)),
    ("xfs spaces before mode", lambda n: _fill("XFS: possible memory allocation deadlock in kmem_alloc", " ", "(mode:0x250)", n)),
    ("paf spaces", lambda n: _fill("x: page allocation failure:", " ", "order:1, mode:0x20", n)),
    ("hung colons", lambda n: _fill("INFO: task x", ":", "1 blocked for more than 1 seconds", n)),
    ("bare hung colons", lambda n: _fill("x", ":1", " blocked for more than 1 seconds", n)),
    ("constraint commas", lambda n: _fill("oom-kill:constraint=A", ",", "task=x,pid=1", n)),
    ("names pipes", lambda n: _fill("x: page allocation failure: order:0, mode:0x20(", "GFP_ATOMIC|", ")", n)),
    ("nodemask commas", lambda n: _fill("x invoked oom-killer: gfp_mask=0x20, nodemask=", "0", ", order=0", n)),
    ("taint flags spaces", lambda n: _fill("CPU: 0 PID: 1 Comm: x Tainted: G", " ", "4.19.0 #1", n)),
    ("nbsp runs", lambda n: _fill("XFS:", "\xa0", "possible\xa0memory\xa0allocation\xa0deadlock", n)),
]

# Prefixes put before a message to reach the file-line parser: the kernel's own, and a spoofing program's.
KERNEL_PREFIX = "Mar  5 22:42:57 node06 kernel: "
USER_PREFIX = "Mar  5 22:42:57 node06 mallory[4242]: "

# The prefix parser's own tricks (whole lines).
PREFIX_GENERATORS = [
    ("syslog spaces after the time", lambda n: _fill("Mar  5 22:42:57", " ", "node06 kernel: XFS: x", n)),
    ("syslog long host", lambda n: _fill("Mar  5 22:42:57 ", "h", " kernel: XFS: x", n)),
    ("syslog long tag", lambda n: _fill("Mar  5 22:42:57 node06 ", "t", ": XFS: x", n)),
    ("syslog tag pid digits", lambda n: _fill("Mar  5 22:42:57 node06 kernel[", "4", "]: XFS: x", n)),
    ("iso fraction digits", lambda n: _fill("2024-03-05T22:42:57.", "1", " node06 kernel: x", n)),
    ("dmesg -T spaces", lambda n: _fill("[Tue Nov", " ", "5 11:18:34 2019] XFS: x", n)),
    ("uptime spaces", lambda n: _fill("[", " ", "1.5] XFS: x", n)),
    ("level brackets", lambda n: _fill("", "<4>[ 1.5] ", "XFS: x", n)),
    ("mail quoting", lambda n: _fill("", "> ", "XFS: x", n)),
    ("dateless host", lambda n: _fill("", "h", " kernel: x", n)),
]

LENGTHS = (1024, 64 * 1024, 1024 * 1024)
