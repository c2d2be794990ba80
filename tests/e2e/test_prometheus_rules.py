# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Prometheus rules the collection ships, checked and unit-tested by the real promtool (Debian's prometheus)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml

from collection_tree import REPO_ROOT
from helpers.debian import ensure_command

RULES_DIR = os.path.join(REPO_ROOT, "extensions", "prometheus")
RULES = os.path.join(RULES_DIR, "memfrag-rules.yml")


@pytest.fixture(scope="module")
def promtool():
    try:
        return ensure_command("promtool", "prometheus")
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _run(promtool, *args, cwd):
    return subprocess.run([promtool] + list(args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
                          universal_newlines=True, timeout=120)


def test_promtool_checks_the_rules(promtool, tmp_path):
    shutil.copy(RULES, str(tmp_path))
    proc = _run(promtool, "check", "rules", "memfrag-rules.yml", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout
    assert "SUCCESS: 13 rules found" in proc.stdout


def test_promtool_unit_tests_pass(promtool, tmp_path):
    for path in glob.glob(os.path.join(RULES_DIR, "*.yml")):
        shutil.copy(path, str(tmp_path))
    proc = _run(promtool, "test", "rules", "memfrag-rules.test.yml", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout


def test_promtool_unit_tests_can_fail(promtool, tmp_path):
    # The same tests against rules with one threshold moved must fail: the unit tests assert something.
    for path in glob.glob(os.path.join(RULES_DIR, "*.yml")):
        shutil.copy(path, str(tmp_path))
    rules = (tmp_path / "memfrag-rules.yml").read_text()
    (tmp_path / "memfrag-rules.yml").write_text(rules.replace("memfrag:unusable_index:max_zone >= 0.95", "memfrag:unusable_index:max_zone >= 0.99"))
    proc = _run(promtool, "test", "rules", "memfrag-rules.test.yml", cwd=str(tmp_path))
    assert proc.returncode != 0 and "MemfragHighOrderUnusable" in proc.stdout


def test_rules_use_only_metrics_the_collection_writes():
    with open(RULES) as handle:
        groups = yaml.safe_load(handle)["groups"]
    written = set()
    for path in glob.glob(os.path.join(REPO_ROOT, "plugins", "plugin_utils", "**", "*.py"), recursive=True):
        with open(path) as handle:
            written.update(re.findall(r"[\"'](memfrag_[a-z_]+)[\"']", handle.read()))
    used = set()
    for group in groups:
        for rule in group["rules"]:
            used.update(name for name in re.findall(r"\bmemfrag_[a-z_]+\b", rule["expr"]))
    assert used and used <= written, "rules use metrics the report does not write: %s" % sorted(used - written)
