# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ``target_hosts``: the hosts a memfrag.linux playbook plays on (documentation in target_hosts.yml).

Ansible turns an inventory it cannot read (``-i nope.ini``, a file it cannot parse) into two warnings and an
empty inventory, and a play on ``localhost`` then runs on the controller. The playbooks template their
``hosts:`` through this filter, so such a run fails before any task and only an absent inventory means localhost.
"""

from __future__ import annotations

import os
import typing as t

from ansible import constants as C
from ansible import context
from ansible.errors import AnsibleFilterError


def _default_sources() -> t.Optional[t.List[str]]:
    """The inventory Ansible uses when none is configured or given with -i; None when one is configured."""
    value, origin = C.config.get_config_value_and_origin("DEFAULT_HOST_LIST")
    if origin != "default":
        return None
    return [str(source) for source in (value or [])]


def _syntax_check() -> bool:
    return bool(context.CLIARGS.get("syntax"))


def _is_path(source: str) -> bool:
    # What ansible-playbook itself treats as a path: a source without a comma (``host1,host2`` lists hosts).
    return "," not in source


def _sources(value: t.Any) -> t.List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(source) for source in value]
    raise AnsibleFilterError("target_hosts: inventory sources must be a list (ansible_inventory_sources), got %s"
                             % type(value).__name__)


def target_hosts(requested: t.Any, groups: t.Any, inventory_sources: t.Any, implicit_localhost: bool = False,
                 playbook: str = "this playbook") -> t.Any:
    """``requested`` (memfrag_hosts) or every inventory host; localhost only when no inventory exists at all."""
    if not isinstance(groups, dict):
        raise AnsibleFilterError("target_hosts: groups must be the groups magic variable, got %s" % type(groups).__name__)
    sources = _sources(inventory_sources)
    if _syntax_check():
        # ansible-playbook --syntax-check (and ansible-lint) templates hosts too but runs nothing: no inventory needed.
        return requested if requested not in (None, "") else "all"
    default = _default_sources()
    given = not (default is not None and sources == default)
    inventory_hosts = list(groups.get("all") or [])
    if given:
        missing = [source for source in sources if _is_path(source) and not os.path.exists(source)]
        if missing:
            raise AnsibleFilterError(
                "%s: the inventory %s does not exist, so nothing was run (check the -i path, or ansible.cfg's "
                "inventory setting)." % (playbook, ", ".join(missing)))
        if not inventory_hosts:
            raise AnsibleFilterError(
                "%s: the inventory %s gave no hosts (Ansible could not parse it, or it lists none; its warnings say "
                "which), so nothing was run." % (playbook, ", ".join(sources)))
    if requested not in (None, ""):
        return requested
    if inventory_hosts:
        return "all"
    if implicit_localhost:
        return "localhost"
    raise AnsibleFilterError(
        "%s changes the hosts it runs on, so it runs only on hosts you name, and no inventory was given: use "
        "-i INVENTORY (-i localhost, -c local for this machine) or -e memfrag_hosts=localhost." % playbook)


class FilterModule(object):
    def filters(self):
        return {"target_hosts": target_hosts}
