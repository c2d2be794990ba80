# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ``sysctl_baseline``: the sysctl_tuning role's vm.* baseline (docs in sysctl_baseline.yml; logic in
plugins/module_utils/_sysctl/baseline.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.baseline import compute


def sysctl_baseline(facts, **options):
    if not isinstance(facts, dict):
        raise AnsibleFilterError("sysctl_baseline: expected ansible_facts (a dict with memfrag_buddyinfo and "
                                 "memfrag_meminfo), got %s" % type(facts).__name__)
    missing = [name for name in ("memfrag_buddyinfo", "memfrag_meminfo") if not isinstance(facts.get(name), dict)]
    if missing:
        raise AnsibleFilterError("sysctl_baseline: %s missing; run memfrag.linux.memory_facts first"
                                 % " and ".join(missing))
    try:
        return compute(facts["memfrag_buddyinfo"], facts["memfrag_meminfo"], options)
    except ValueError as exc:
        raise AnsibleFilterError("sysctl_baseline: %s" % exc)
    except (TypeError, KeyError, AttributeError) as exc:
        raise AnsibleFilterError("sysctl_baseline: facts are not in the shape memfrag.linux modules return: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"sysctl_baseline": sysctl_baseline}
