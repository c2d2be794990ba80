# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment(object):
    # Attributes of the facts modules (buddyinfo_facts, meminfo_facts, memory_facts): they only read
    # files under proc_root and set facts.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
    details: Only reads files; check mode returns the same facts.
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
    details: Linux C(/proc), or any directory laid out like it (an extracted sosreport, a test tree).
"""
