# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The judging thresholds have one home, _findings/judge.DEFAULT_THRESHOLDS; every place that documents or
defaults them (the diagnose role's defaults and argument_specs, memory_facts' and the findings filter's docs)
must say the same values. This test fails when one of them drifts."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible_collections.memfrag.linux.plugins.module_utils._findings.judge import DEFAULT_THRESHOLDS, THRESHOLD_OPTIONS
from ansible_collections.memfrag.linux.plugins.modules import memory_facts
from ansible_collections.memfrag.linux.tests.collection_tree import REPO_ROOT

ROLE = os.path.join(REPO_ROOT, "roles", "diagnose")


def _yaml(*parts):
    with open(os.path.join(REPO_ROOT, *parts)) as handle:
        return yaml.safe_load(handle)


def _same(documented, value):
    """A documented default ("0.10", "DMA32, Normal, Movable, HighMem") read back equals the Python value."""
    if isinstance(value, list):
        return [item.strip() for item in documented.split(",")] == value
    return float(documented) == value


@pytest.mark.parametrize("name", sorted(DEFAULT_THRESHOLDS))
def test_role_defaults_and_argument_specs(name):
    defaults = _yaml("roles", "diagnose", "defaults", "main.yml")
    spec = _yaml("roles", "diagnose", "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert defaults["diagnose_" + name] == DEFAULT_THRESHOLDS[name]
    assert spec["diagnose_" + name]["default"] == DEFAULT_THRESHOLDS[name]
    kind = "list" if isinstance(DEFAULT_THRESHOLDS[name], list) else type(DEFAULT_THRESHOLDS[name]).__name__
    assert spec["diagnose_" + name]["type"] == kind


@pytest.mark.parametrize("name", sorted(DEFAULT_THRESHOLDS))
def test_memory_facts_documents_the_default(name):
    doc = yaml.safe_load(memory_facts.DOCUMENTATION)["options"]["thresholds"]["suboptions"][name]
    assert doc["type"] == THRESHOLD_OPTIONS[name]["type"]
    described = " ".join(doc["description"]) if isinstance(doc["description"], list) else doc["description"]
    match = re.search(r"\(default ([^)]*)\)", described)
    assert match and _same(match.group(1).split(",")[0] if not isinstance(DEFAULT_THRESHOLDS[name], list)
                           else match.group(1), DEFAULT_THRESHOLDS[name]), described


@pytest.mark.parametrize("name", sorted(DEFAULT_THRESHOLDS))
def test_findings_filter_documents_the_default(name):
    doc = _yaml("plugins", "filter", "findings.yml")["DOCUMENTATION"]["options"]["thresholds"]["description"]
    text = " ".join(doc)
    match = re.search(r"C\(%s\) \((?:default )?([^)]*)\)" % name, text)
    assert match and _same(match.group(1), DEFAULT_THRESHOLDS[name]), text
