# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the write_fleet_report action reads hosts' variables: facts as stored, inventory templates in context."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

from ansible_collections.memfrag.linux.plugins.action.write_fleet_report import _has_template, _host_vars


class FakeHostVars(object):
    """raw_get gives a host's variables as stored; [] gives them templated (and counts how often it is asked)."""

    def __init__(self, raw, templated):
        self.raw, self.templated, self.templated_calls = raw, templated, 0

    def __contains__(self, name):
        return name in self.raw

    def raw_get(self, name):
        return self.raw.get(name, object())  # an unknown host: not a mapping, as ansible's undefined marker

    def __getitem__(self, name):
        self.templated_calls += 1
        return self.templated[name]


class Broken(dict):
    def __getitem__(self, key):
        raise AnsibleError("'no_such_var' is undefined")


FACTS = {"memfrag_buddyinfo": {"zones": []}, "memfrag_verdict": {"severity": "ok"}, "memfrag_meminfo": {"big": 1}}


def test_facts_are_read_as_stored_and_only_the_report_s_keys_kept():
    hv = FakeHostVars({"h": {"ansible_facts": dict(FACTS), "memfrag_verdict": {"severity": "ok"},
                             "report_textfile_dir": "/srv/tf", "other": "{{ x }}"}}, {})
    out, textfile, warnings = _call(hv, "h")
    assert out == {"ansible_facts": {"memfrag_buddyinfo": {"zones": []}, "memfrag_verdict": {"severity": "ok"}},
                   "memfrag_verdict": {"severity": "ok"}}
    assert textfile == "/srv/tf" and warnings == [] and hv.templated_calls == 0


def test_inventory_templates_are_templated_in_the_host_s_context():
    raw = {"h": {"memfrag_baseline": {"vm.min_free_kbytes": "{{ 1000 + 24 }}"}, "report_textfile_dir": "{{ d }}/tf"}}
    hv = FakeHostVars(raw, {"h": {"memfrag_baseline": {"vm.min_free_kbytes": "1024"}, "report_textfile_dir": "/x/tf"}})
    out, textfile, warnings = _call(hv, "h")
    assert out["memfrag_baseline"] == {"vm.min_free_kbytes": "1024"} and textfile == "/x/tf" and hv.templated_calls == 1


def test_a_broken_template_is_a_warning_and_an_unknown_host_no_data():
    hv = FakeHostVars({"h": {"memfrag_baseline": "{{ no_such_var }}", "ansible_facts": dict(FACTS)}}, {"h": Broken()})
    out, textfile, warnings = _call(hv, "h")
    assert "memfrag_baseline" not in out and out["ansible_facts"]["memfrag_verdict"] == {"severity": "ok"}
    assert textfile is None and len(warnings) == 1 and "'h': memfrag_baseline cannot be templated" in warnings[0]
    assert _call(hv, "nowhere") == ({}, None, [])


def test_hosts_not_in_a_real_inventory_are_no_data(tmp_path):
    """ansible-core's own HostVars: a name not in the inventory (hostile or mistyped) is no data, not a failure.

    On 2.19 raw_get of such a name raised ReferenceError outside a template and failed the whole report."""
    inventory_file = tmp_path / "hosts.yml"
    inventory_file.write_text('all:\n  hosts:\n    web1:\n      memfrag_verdict: {severity: ok}\n')
    loader = DataLoader()
    inventory = InventoryManager(loader, [str(inventory_file)])
    hostvars = HostVars(inventory, VariableManager(loader, inventory), loader)
    for name in ("../../x", "a/b", "c\nd", "e\x00f", "", "x" * 5000, "notinv"):
        assert _call(hostvars, name) == ({}, None, [])
    assert _call(hostvars, "web1")[0]["memfrag_verdict"] == {"severity": "ok"}


def test_template_markers_are_found_anywhere_in_the_value():
    assert _has_template({"a": ["x", {"b": "{% if 1 %}"}]}) and _has_template("{# c #}")
    assert not _has_template({"a": ["{ not }", 1, None]}) and not _has_template("50% {x}")


def _call(hv, name):
    warnings = []
    out, textfile = _host_vars(hv, name, "report_textfile_dir", warnings)
    return out, textfile, warnings
