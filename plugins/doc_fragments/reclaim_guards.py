# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment(object):
    # Guard options shared by memfrag.linux.compact_memory, memfrag.linux.drop_caches and memfrag.linux.reclaim_memory.
    DOCUMENTATION = r"""
options:
  cooldown:
    description:
      - Seconds after this trigger's last run on the host during which it is not run again.
      - A run within the cooldown writes nothing, returns RV(refused=cooldown) and is not changed,
        so re-running a playbook is safe. The time of the last run is kept in O(state_dir), which survives
        reboots. V(0) disables the cooldown.
    type: int
    default: 900
  lock_dir:
    description:
      - Directory of the run lock C(reclaim.lock). Both triggers share it, so only one reclaim runs at a
        time on a host; another run finds it held and fails with RV(refused=lock_held).
      - Keep it on a tmpfs cleared at boot (C(/run)); the kernel releases the lock when the holder dies.
    type: path
    default: /run/memfrag
  state_dir:
    description:
      - Directory holding the time of each trigger's last run (C(<trigger>.state.json)), for O(cooldown).
    type: path
    default: /var/lib/memfrag
  audit_log:
    description:
      - File to which one JSON line per run (not in check mode) is appended, with the host, the trigger,
        what was written, whether it was refused and why, and free memory per zone and order before and after.
      - Created with mode C(0600) in a directory created with mode C(0700); never written through a symbolic link.
    type: path
    default: /var/log/memfrag/reclaim.log
  sys_root:
    description:
      - Directory that stands for C(/sys) (per-node compaction triggers). For tests on a fake tree.
    type: path
    default: /sys
  page_size:
    description:
      - Base page size in bytes used to turn buddyinfo block counts into bytes. Defaults to the host's.
    type: int
"""
