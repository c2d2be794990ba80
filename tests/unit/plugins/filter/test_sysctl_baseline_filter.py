# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter sysctl_baseline: ansible_facts in, the baseline out; clear errors for facts it cannot use."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.memfrag.linux.plugins.filter.sysctl_baseline import FilterModule

sysctl_baseline = FilterModule().filters()["sysctl_baseline"]

FACTS = {
    "memfrag_buddyinfo": {
        "page_size": 4096, "orders": 11, "pages_per_block": 512, "kernel_release": "6.1.0-18-amd64",
        "tunables": {"min_free_kbytes": 45056, "watermark_scale_factor": 10, "vfs_cache_pressure": 100},
        "zones": [{"node": 0, "zone": "DMA", "managed_pages": 3840}, {"node": 0, "zone": "DMA32", "managed_pages": 246000}],
    },
    "memfrag_meminfo": {"meminfo": {"MemTotal": 999360 * 1024}, "slab": {"reclaimable_bytes": 0}},
    "hostname": "ignored",
}


def test_filter_returns_settings_inputs_reasons():
    result = sysctl_baseline(FACTS)
    # the second case of cases/sysctl_baseline.yml, without slab: 3% of 999360 kB = 29980
    assert result["settings"] == {"vm.min_free_kbytes": 29980, "vm.watermark_scale_factor": 100}
    assert result["inputs"]["thp_reserve_kbytes"] == 45056
    assert sysctl_baseline(FACTS, min_free_max_percent=4.0, computed_keys=["vm.min_free_kbytes"])["settings"] == {
        "vm.min_free_kbytes": 39974}  # 999360 x 4.0 / 100 = 39974.4


@pytest.mark.parametrize("facts,options,message", [
    ([], {}, "expected ansible_facts"),
    ({"memfrag_meminfo": {}}, {}, "memfrag_buddyinfo missing; run memfrag.linux.memory_facts first"),
    (dict(FACTS, memfrag_meminfo={"meminfo": {}}), {}, "lack MemTotal"),
    (FACTS, {"min_free_kbytes": "a lot"}, "min_free_kbytes must be a whole number"),
    (dict(FACTS, memfrag_buddyinfo=dict(FACTS["memfrag_buddyinfo"], zones=[5])), {}, "not in the shape"),
])
def test_filter_errors(facts, options, message):
    with pytest.raises(AnsibleFilterError, match=message):
        sysctl_baseline(facts, **options)


def test_defaults_are_the_same_everywhere():
    """baseline.DEFAULTS, the role's defaults and argument_specs, and the filter's documentation agree."""
    import os
    import yaml
    from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.baseline import DEFAULTS

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..")
    with open(os.path.join(root, "roles", "sysctl_tuning", "defaults", "main.yml")) as handle:
        role_defaults = yaml.safe_load(handle)
    with open(os.path.join(root, "roles", "sysctl_tuning", "meta", "argument_specs.yml")) as handle:
        specs = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    with open(os.path.join(root, "plugins", "filter", "sysctl_baseline.yml")) as handle:
        documented = yaml.safe_load(handle)["DOCUMENTATION"]["options"]
    for name, value in DEFAULTS.items():
        role_name = "sysctl_tuning_" + name
        assert role_defaults[role_name] == value, role_name
        assert specs[role_name].get("default") == value, role_name
        assert documented[name].get("default") == value, name
