# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module shell: arguments, exit_json facts, fail_json messages, warnings."""

from __future__ import annotations

import contextlib
import json
import os

import pytest

from ansible.module_utils import basic
from ansible_collections.memfrag.linux.plugins.modules import buddyinfo_facts

try:  # ansible-core 2.19+
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # pragma: no cover - older ansible-core
    patch_module_args = None


@contextlib.contextmanager
def module_args(args):
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    saved = basic._ANSIBLE_ARGS  # pragma: no cover
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()  # pragma: no cover
    try:  # pragma: no cover
        yield
    finally:  # pragma: no cover
        basic._ANSIBLE_ARGS = saved


class Exit(Exception):
    def __init__(self, kind, result):
        super().__init__(kind)
        self.kind = kind
        self.result = result


@pytest.fixture
def run(monkeypatch):
    def exit_json(self, **kwargs):
        kwargs["warnings"] = list(getattr(self, "_warnings", []))
        raise Exit("exit", kwargs)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        raise Exit("fail", kwargs)

    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: warnings.append(text))

    def _run(args):
        del warnings[:]
        with module_args(args):
            with pytest.raises(Exit) as info:
                buddyinfo_facts.main()
        result = dict(info.value.result)
        result["warnings"] = list(warnings)
        return info.value.kind, result

    return _run


def test_fixture_tree(run, fixtures_dir):
    kind, result = run({"proc_root": os.path.join(fixtures_dir, "proc", "buddyinfo-x86-3zone-el8")})
    assert kind == "exit"
    assert result["changed"] is False
    facts = result["ansible_facts"]["memfrag_buddyinfo"]
    assert facts["zones"][2]["zone"] == "Normal"
    assert facts["zones"][2]["migrate_types_capped"] == {"Movable": [0]}
    assert result["warnings"] == []


def test_missing_optional_files_warn(run, fixtures_dir):
    kind, result = run({"proc_root": os.path.join(fixtures_dir, "proc", "buddyinfo-only")})
    assert kind == "exit"
    assert len(result["warnings"]) == 4
    assert result["ansible_facts"]["memfrag_buddyinfo"]["sources"]["zoneinfo"] == "missing"


def test_truncated_buddyinfo_fails(run, fixtures_dir):
    root = os.path.join(fixtures_dir, "proc", "buddyinfo-truncated")
    kind, result = run({"proc_root": root})
    assert kind == "fail"
    assert result["msg"].startswith(os.path.join(root, "buddyinfo") + " line 3: ")
    assert result["line"] == 3
    assert result["path"] == os.path.join(root, "buddyinfo")


def test_missing_root_fails(run, tmp_path):
    kind, result = run({"proc_root": str(tmp_path / "nope")})
    assert kind == "fail"
    assert "buddyinfo: does not exist" in result["msg"]


@pytest.mark.parametrize("page_size", [0, 1000, 3, -4096])
def test_bad_page_size(run, fixtures_dir, page_size):
    kind, result = run({"proc_root": os.path.join(fixtures_dir, "proc", "buddyinfo-only"), "page_size": page_size})
    assert kind == "fail"
    assert "power of two" in result["msg"]


def test_bad_subset(run, fixtures_dir):
    kind, result = run({"proc_root": os.path.join(fixtures_dir, "proc", "buddyinfo-only"), "gather_subset": ["nope"]})
    assert kind == "fail"
    assert "unknown gather_subset" in result["msg"]


def test_page_size_and_subset(run, fixtures_dir):
    kind, result = run({"proc_root": os.path.join(fixtures_dir, "proc", "buddyinfo-arm64-64k-14orders"),
                        "page_size": 16384, "gather_subset": ["!all"]})
    assert kind == "exit"
    facts = result["ansible_facts"]["memfrag_buddyinfo"]
    assert facts["page_size"] == 16384
    assert facts["sources"]["zoneinfo"] == "skipped"
    assert result["warnings"] == []


def test_live(run):
    kind, result = run({})
    assert kind == "exit"
    assert result["ansible_facts"]["memfrag_buddyinfo"]["sources"]["buddyinfo"] == "ok"
