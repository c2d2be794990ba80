# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every role README's variable table is generated from its meta/argument_specs.yml (scripts/role_docs.py);
this fails when a table drifts from the spec, names the README, and says how to regenerate it."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os

import pytest
import yaml

from ansible_collections.memfrag.linux.tests.collection_tree import REPO_ROOT


def _generator():
    path = os.path.join(REPO_ROOT, "scripts", "role_docs.py")
    loader = importlib.machinery.SourceFileLoader("memfrag_role_docs", path)
    spec = importlib.util.spec_from_loader("memfrag_role_docs", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


ROLE_DOCS = _generator()


@pytest.mark.parametrize("role", ROLE_DOCS.roles(REPO_ROOT))
def test_readme_table_is_generated_from_argument_specs(role):
    with open(os.path.join(REPO_ROOT, "roles", role, "meta", "argument_specs.yml")) as handle:
        spec = yaml.safe_load(handle)
    with open(os.path.join(REPO_ROOT, "roles", role, "README.md")) as handle:
        readme = handle.read()
    assert ROLE_DOCS.render(readme, spec) == readme, "roles/%s/README.md drifted from argument_specs: run scripts/role_docs.py" % role
    for name in spec["argument_specs"]["main"]["options"]:
        assert "| `%s` |" % name in readme


def test_a_changed_spec_changes_the_table():
    spec = {"argument_specs": {"main": {"options": {"x_order": {"type": "int", "default": 4, "description": "C(order)"}}}}}
    readme = "# x\n%s\nold\n%s\n" % (ROLE_DOCS.BEGIN, ROLE_DOCS.END)
    rendered = ROLE_DOCS.render(readme, spec)
    assert "| `x_order` | int | `4` | `order` |" in rendered and "old" not in rendered
    spec["argument_specs"]["main"]["options"]["x_order"]["default"] = 3
    assert ROLE_DOCS.render(rendered, spec) != rendered
    with pytest.raises(ValueError):
        ROLE_DOCS.render("# no markers\n", spec)
