# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""target_hosts: which hosts a playbook plays on, and which inventories stop it before any task."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.memfrag.linux.plugins.filter import target_hosts as plugin

DEFAULT = ["/etc/ansible/hosts"]
NO_HOSTS = {"all": [], "ungrouped": []}
HOSTS = {"all": ["web1", "db1"], "ungrouped": [], "web": ["web1"]}
REAL_DEFAULT_SOURCES = plugin._default_sources


@pytest.fixture(autouse=True)
def default_inventory(monkeypatch):
    """Ansible's default inventory is DEFAULT, not configured anywhere, and absent; not a syntax check."""
    monkeypatch.setattr(plugin, "_default_sources", lambda: list(DEFAULT))
    monkeypatch.setattr(plugin, "_syntax_check", lambda: False)


def test_syntax_check_needs_no_inventory(monkeypatch):
    """ansible-playbook --syntax-check and ansible-lint template hosts but run nothing."""
    monkeypatch.setattr(plugin, "_syntax_check", lambda: True)
    assert target(None, NO_HOSTS, DEFAULT, playbook="tune") == "all"
    assert target("web", NO_HOSTS, ["/nonexistent/inventory"]) == "web"


def target(requested, groups, sources, **kwargs):
    return plugin.target_hosts(requested, groups, sources, **kwargs)


def test_no_inventory_read_only_playbook_plays_on_localhost():
    assert target(None, NO_HOSTS, DEFAULT, implicit_localhost=True) == "localhost"


def test_no_inventory_changing_playbook_refuses_the_implicit_localhost():
    with pytest.raises(AnsibleFilterError, match="tune changes the hosts it runs on, so it runs only on hosts you name"):
        target(None, NO_HOSTS, DEFAULT, playbook="tune")


@pytest.mark.parametrize("implicit", [True, False])
def test_named_host_without_inventory_is_what_the_user_named(implicit):
    assert target("localhost", NO_HOSTS, DEFAULT, implicit_localhost=implicit) == "localhost"


@pytest.mark.parametrize("implicit", [True, False])
def test_missing_inventory_fails(tmp_path, implicit):
    missing = str(tmp_path / "nope.ini")
    with pytest.raises(AnsibleFilterError, match="diagnose: the inventory %s does not exist" % missing):
        target(None, NO_HOSTS, [missing], implicit_localhost=implicit, playbook="diagnose")
    # Naming hosts does not rescue a mistyped inventory.
    with pytest.raises(AnsibleFilterError, match="does not exist"):
        target("localhost", NO_HOSTS, [missing], implicit_localhost=implicit)


def test_one_missing_source_among_good_ones_fails(tmp_path):
    good = tmp_path / "hosts.ini"
    good.write_text("web1\ndb1\n")
    with pytest.raises(AnsibleFilterError, match="nope.ini does not exist"):
        target(None, HOSTS, [str(good), str(tmp_path / "nope.ini")], implicit_localhost=True)


@pytest.mark.parametrize("implicit", [True, False])
def test_inventory_without_hosts_fails(tmp_path, implicit):
    unparsable = tmp_path / "bad.ini"
    unparsable.write_text("[bad\nfoo=\n")
    with pytest.raises(AnsibleFilterError, match="report: the inventory %s gave no hosts" % unparsable):
        target(None, NO_HOSTS, [str(unparsable)], implicit_localhost=implicit, playbook="report")


def test_inventory_with_hosts_plays_on_all_or_the_named_ones(tmp_path):
    good = tmp_path / "hosts.ini"
    good.write_text("web1\ndb1\n")
    assert target(None, HOSTS, [str(good)]) == "all"
    assert target("web", HOSTS, [str(good)]) == "web"
    assert target(["web1"], HOSTS, [str(good)]) == ["web1"]
    assert target("", HOSTS, [str(good)]) == "all"
    # A host list (``-i web1,db1,``) is not a path.
    assert target(None, HOSTS, ["web1,db1,"]) == "all"


def test_default_inventory_with_hosts_is_an_inventory():
    assert target(None, HOSTS, DEFAULT) == "all"


def test_configured_inventory_counts_as_given(monkeypatch, tmp_path):
    """An inventory set in ansible.cfg or ANSIBLE_INVENTORY is given even without -i: missing, it fails."""
    monkeypatch.setattr(plugin, "_default_sources", lambda: None)
    configured = tmp_path / "inventory"
    with pytest.raises(AnsibleFilterError, match="inventory %s does not exist" % configured):
        target(None, NO_HOSTS, [str(configured)], implicit_localhost=True)
    configured.write_text("")
    with pytest.raises(AnsibleFilterError, match="inventory %s gave no hosts" % configured):
        target(None, NO_HOSTS, [str(configured)], implicit_localhost=True)


@pytest.mark.parametrize("groups, sources, words", [
    ([], DEFAULT, "groups must be the groups magic variable"),
    (NO_HOSTS, 42, "inventory sources must be a list"),
])
def test_wrong_arguments(groups, sources, words):
    with pytest.raises(AnsibleFilterError, match=words):
        target(None, groups, sources)


@pytest.mark.parametrize("origin, expected", [
    ("default", ["/etc/ansible/hosts"]),
    ("env: ANSIBLE_INVENTORY", None),
    ("/srv/ansible/ansible.cfg", None),
])
def test_default_sources_from_ansible_configuration(monkeypatch, origin, expected):
    monkeypatch.setattr(plugin.C.config, "get_config_value_and_origin",
                        lambda name: (["/etc/ansible/hosts"], origin) if name == "DEFAULT_HOST_LIST" else (None, None))
    assert REAL_DEFAULT_SOURCES() == expected
