#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# The documentation of the write_fleet_report action (plugins/action/write_fleet_report.py): it runs on the
# controller only, so there is no module code here.

DOCUMENTATION = r"""
module: write_fleet_report
short_description: Write the fleet report (HTML, JSON, a Prometheus file per host) on the controller in one task
version_added: 0.1.0
author: memfrag.linux contributors (@memfrag)
description:
  - Reads, for every host in O(hosts), the variables the C(memfrag.linux.diagnose) and C(memfrag.linux.reclaim) roles
    leave behind (C(ansible_facts['memfrag_buddyinfo']), C(memfrag_verdict), C(memfrag_findings),
    C(memfrag_log_counts), C(memfrag_reclaim)) from C(hostvars), shapes them into the fleet report
    (as P(memfrag.linux.fleet_report#filter) does) and writes it under O(dest).
  - Writes C(index.html) (self-contained, no script, nothing fetched; the fleet overview first, then every host,
    worst first), C(report.json) (the same data) and C(metrics/<host>.prom) (Prometheus text exposition per host),
    as O(formats) asks, in one task execution whatever the number of hosts.
  - The files go into a new directory beside O(dest) that is then swapped in for the old one (Linux
    C(renameat2(RENAME_EXCHANGE)), else two renames), after one C(syncfs); readers never see a half-written report
    and the previous report stays in place until the swap. So the parent of O(dest) must be writable, and O(dest)
    must be absent, empty or an earlier report (it holds a C(.memfrag-report) file); any other directory is
    refused, never replaced.
  - Host names are untrusted (inventories are generated from cloud tags). Each Prometheus file name is the host name
    with every byte other than letters, digits, C(_), C(-) and C(.) written as C(%XX) (and a leading dot as
    C(%2E)), so C(../../x) becomes C(metrics/%2E.%2F..%2Fx.prom) and C(a/b) C(metrics/a%2Fb.prom); names over 200
    bytes are cut and end in C(~) and a hash. Two different hosts never share a file (where the file system folds
    case, the second of C(Web1) and C(web1) gets a hash suffix); C(prometheus_files) in C(report.json) says which
    file is whose.
  - Runs on the controller only, once; use it with C(run_once) in a play over the hosts (the
    C(memfrag.linux.report) role does).
options:
  dest:
    description: The report directory on the controller.
    type: path
    required: true
  hosts:
    description: Hosts in the report. A host without a diagnosis (unreachable, failed, not in the inventory) is
      listed with severity C(no_data).
    type: list
    elements: str
    required: true
  order:
    description: The allocation order that matters; a host whose findings name a higher logged failure order uses
      that one.
    type: int
    default: 4
  baseline:
    description:
      - vm sysctl baseline the running tunables are compared against (C(vm.name) or C(name) keys).
      - When empty, each host's own C(memfrag_baseline) variable, else its C(sysctl_tuning_baseline) fact.
    type: dict
    default: {}
  formats:
    description:
      - Which files to write. C(prometheus) is written anyway when a host gets a textfile (see O(textfile_dir)), as each
        host's textfile is a copy of its C(metrics/) file.
    type: list
    elements: str
    choices: [html, json, prometheus]
    default: [html, json, prometheus]
  title:
    description: Title of the HTML page.
    type: str
    default: memfrag fleet report
  textfile_dir:
    description:
      - node_exporter textfile-collector directory on the hosts (an absolute path), or empty for none. This action
        writes nothing on the hosts; it returns, in RV(textfiles), which diagnosed host gets its file in which
        directory, for a following per-host copy task.
      - A host's own variable named by O(textfile_dir_var) overrides it for that host (an empty value turns it off).
    type: str
    default: ""
  textfile_dir_var:
    description: Name of the host variable that overrides O(textfile_dir) per host.
    type: str
    default: report_textfile_dir
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.conn
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  become:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Nothing is written; RV(dest) is checked (it must be absent, empty or an earlier report).
  connection:
    support: none
  delegation:
    support: none
    details: It always runs on the controller and reads every host's variables from C(hostvars).
  diff_mode:
    support: none
  platform:
    platforms: posix
    support: full
    details: Runs on the controller.
notes:
  - The page is for 10,000 hosts too; see the collection README for its size and load time at that scale.
seealso:
  - module: memfrag.linux.memory_facts
  - plugin: memfrag.linux.fleet_report
    plugin_type: filter
  - plugin: memfrag.linux.fleet_report_prometheus
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Diagnose
  ansible.builtin.import_playbook: memfrag.linux.diagnose

- name: Report
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the fleet report on the controller
      memfrag.linux.write_fleet_report:
        dest: /srv/www/memfrag
        hosts: "{{ ansible_play_hosts_all }}"
        baseline: {vm.min_free_kbytes: 131072}
        textfile_dir: /var/lib/node_exporter/textfile_collector
      run_once: true
      register: report

    - name: Each host's node_exporter textfile, in parallel
      ansible.builtin.copy:
        src: "{{ report.textfiles[inventory_hostname].src }}"
        dest: "{{ report.textfiles[inventory_hostname].dir }}/memfrag.prom"
        mode: "0644"
      when: inventory_hostname in report.textfiles
"""

RETURN = r"""
dest:
  description: The report directory (symbolic links resolved).
  returned: always
  type: str
  sample: /srv/www/memfrag
generated:
  description: When the report was made (UTC, ISO 8601).
  returned: always
  type: str
  sample: "2026-11-21T08:00:00Z"
hosts:
  description: Number of hosts in the report.
  returned: always
  type: int
counts:
  description: Hosts per severity (C(critical), C(warning), C(no_data), C(ok)).
  returned: always
  type: dict
  sample: {critical: 2, warning: 5, no_data: 1, ok: 992}
worst:
  description: The worst hosts (at most 10, critical and warning only), as the page's overview lists them.
  returned: always
  type: list
  elements: dict
files:
  description: The file of each format written (relative to RV(dest)); C(metrics/) files are listed in C(report.json)
    under C(prometheus_files).
  returned: when written
  type: dict
  sample: {html: index.html, json: report.json}
textfiles:
  description: Diagnosed hosts that get a textfile, each with C(src) (its Prometheus file in the report) and C(dir)
    (the textfile directory on the host). Empty in check mode.
  returned: always
  type: dict
  sample: {web1: {src: /srv/www/memfrag/metrics/web1.prom, dir: /var/lib/node_exporter/textfile_collector}}
bytes:
  description: Bytes written per format (C(prometheus) is the sum of all hosts' files).
  returned: when written
  type: dict
  sample: {html: 18493982, json: 30042660, prometheus: 72371964}
seconds:
  description: Time spent reading the hosts' variables, shaping the report and writing the files.
  returned: when written
  type: dict
  sample: {read: 31.0, shape: 3.1, write: 20.2}
"""
