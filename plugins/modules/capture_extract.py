#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
module: capture_extract
short_description: Safely take the /proc files, kernel logs and sysctl tree a diagnosis needs out of sosreports and supportconfigs
version_added: 0.1.0
author: memfrag.linux contributors (@memfrag)
description:
  - Runs on the controller (localhost). For each archive in O(archive_paths) (C(.tar.xz), C(.tar.gz), C(.tar.bz2),
    C(.tar), found by content, or an already-extracted directory), copies only the members a diagnosis needs into a
    new directory of its own under O(work_dir), and describes the capture, so that M(memfrag.linux.memory_facts)
    (through the C(memfrag.linux.archive) playbook and the diagnose role) judges it as it judges a live host.
  - "sosreport layout: C(proc/{buddyinfo,zoneinfo,pagetypeinfo,meminfo,slabinfo,vmstat,version}), C(proc/sys/vm/*),
    C(var/log/{messages,kern.log,syslog}*), C(sos_commands/kernel/dmesg), C(sos_commands/logs/journalctl_*),
    C(sos_commands/kernel/sysctl_-a), C(sos_commands/kernel/uname_-a), C(sos_commands/host/hostname),
    C(sos_commands/date/date), C(installed-rpms), and the sysctl configuration (C(etc/sysctl.conf),
    C(etc/sysctl.d), C(run/sysctl.d), C(usr/lib/sysctl.d), C(usr/local/lib/sysctl.d), C(lib/sysctl.d))."
  - "supportconfig layout (as supportutils' C(supportconfig) writes it): C(basic-environment.txt) (C(date),
    C(uname -a)), C(memory.txt) (C(/proc/meminfo), C(pagetypeinfo), C(vmstat), C(buddyinfo), C(slabinfo), C(zoneinfo),
    C(sysctl -a | grep ^vm)), C(proc.txt) (C(/proc/sys/vm/*), C(/proc/sys/kernel/osrelease)), C(env.txt) (the
    sysctl.d tree and C(sysctl -a)), C(messages.txt) (C(/var/log/messages), or C(journalctl --output=short-iso) on
    hosts without it), C(boot.txt) (the boot's journal, used only when C(messages.txt) holds no log, and
    C(dmesg -T)), and the rotated C(messages-<date>.txt) of C(supportconfig -l). Their C(#==[ Command ]==#),
    C(#==[ Configuration File ]==#) and C(#==[ Log File ]==#) sections are written out at the host paths they came
    from (C(/proc/meminfo) to C(proc/meminfo), C(sysctl -a) to C(sos_commands/kernel/sysctl_-a)); each file may
    supply only what supportconfig puts in it (a C(/proc/buddyinfo) section inside C(messages.txt) is ignored with a
    note). A sysctl.d name supportconfig lists as C(File not found) (a mask, a link to C(/dev/null)) is written
    empty, which masks it as the link did."
  - "When the capture has no C(proc/sys/kernel/osrelease) (sos seldom copies it), the kernel release found in
    C(uname -a), C(proc/version) or C(installed-rpms) is written there; and each vm key of the capture's C(sysctl -a)
    that C(proc/sys/vm) lacks is written as C(proc/sys/vm/<name>) (sos seldom copies C(proc/sys/vm)). So
    M(memfrag.linux.memory_facts) reads the release and the vm tunables under the capture's C(proc) as on a live
    host."
  - "Archives are untrusted. Nothing is extracted with C(extractall); members are read one by one and only regular
    file content is written, by this module, under the run's directory. Members with absolute names or C(..)
    components are refused; symlinks and hard links are resolved inside the archive and refused when they point
    out of it; device and FIFO members are skipped; a member over O(max_member_bytes) is skipped; an archive whose
    needed members exceed O(max_total_bytes), or whose expanded stream runs past O(max_ratio) times the archive's
    size (a compression bomb), is refused as a whole before that much is read. Each skip or refusal is a message in
    RV(captures[].notes) or RV(refused)."
  - "The capture's host name (untrusted) becomes a safe inventory name (letters, digits, C(.), C(_), C(-)); names
    that repeat get C(-2), C(-3). The capture time comes from C(sos_commands/date/date) (C(date --utc)), else the
    newest member time; the log window RV(captures[].since) is the 7 days before it. Extracted files keep their
    member times: syslog lines carry no year, and the log scan takes it from the file's time."
  - The sysctl.d precedence model of M(memfrag.linux.vm_sysctl) runs read only over the capture's own tree, with
    the capture's root as C(/) (RV(captures[].sysctl)).
  - With O(state=absent), removes a run directory made by this module (and only such a directory).
options:
  archive_paths:
    description: Archives or extracted directories on the controller. Required with O(state=present).
    type: list
    elements: path
  work_dir:
    description:
      - Directory under which the run's own directory (C(memfrag-archive-*)) is made. Default is the system's
        temporary directory.
    type: path
  state:
    description: V(present) extracts; V(absent) removes O(run_dir).
    type: str
    choices: [present, absent]
    default: present
  run_dir:
    description: With O(state=absent), the RV(run_dir) a previous run returned.
    type: path
  max_member_bytes:
    description: A needed member larger than this is skipped with a note.
    type: int
    default: 268435456
  max_total_bytes:
    description: An archive whose needed members hold more than this is refused.
    type: int
    default: 1073741824
  max_ratio:
    description:
      - An archive is refused when reading it would expand past this many times its own size (at least 16 MiB is
        always allowed).
    type: int
    default: 100
notes:
  - Runs where the archives are; the C(memfrag.linux.archive) playbook runs it on localhost.
  - "Check mode writes nothing: each archive's headers are read (a compressed archive is decompressed to read
    them) and every refusal applies, but no run directory is made and no member content is read; the captures
    list what would be extracted (RV(captures[].would_extract)) and are named from the archive's name. With
    O(state=absent) check mode removes nothing."
"""

EXAMPLES = r"""
- name: Take what a diagnosis needs out of two sosreports
  memfrag.linux.capture_extract:
    archive_paths:
      - /srv/cases/sosreport-web1-2024-03-05-abcdef.tar.xz
      - /srv/cases/scc_db2_240305_1011.txz
    work_dir: /var/tmp
  register: captures

- name: Remove what it extracted
  memfrag.linux.capture_extract:
    state: absent
    run_dir: "{{ captures.run_dir }}"
"""

RETURN = r"""
run_dir:
  description: The directory this run made and extracted into; remove it with O(state=absent). Null in check mode.
  returned: always
  type: str
captures:
  description: One entry per archive that was not refused, in the order given.
  returned: with O(state=present)
  type: list
  elements: dict
  contains:
    source:
      description: The archive path given.
      type: str
    host:
      description: "Safe inventory name from the captured host name."
      type: str
      sample: web1.example.com
    host_source:
      description: Where the host name came from (C(sos_commands/host/hostname), C(uname -a), C(archive name)).
      type: str
    layout:
      description: C(sos) or C(supportconfig).
      type: str
    format:
      description: C(tar) or C(directory).
      type: str
    root:
      description: Where the capture was extracted (the capture's C(/)).
      type: str
    proc_root:
      description: "The capture's C(proc) directory, for O(memfrag.linux.memory_facts#module:proc_root)."
      type: str
    has_buddyinfo:
      description: Whether the capture holds C(proc/buddyinfo) (without it there is nothing to judge).
      type: bool
    kernel_release:
      description: "Kernel release of the capture, or null."
      type: str
      sample: 4.18.0-513.el8.x86_64
    kernel_release_source:
      description: Where it came from.
      type: str
    capture_time:
      description: "When the capture was taken (UTC ISO time), or null."
      type: str
      sample: "2024-03-05T10:11:12Z"
    capture_time_source:
      description: Where it came from.
      type: str
    since:
      description: "Start of the log window, 7 days before RV(captures[].capture_time)."
      type: str
    log_paths:
      description: "Kernel log files of the capture, glob-escaped for O(memfrag.linux.kernel_log_scan#module:paths)."
      type: list
      elements: str
    log_files:
      description: "The same files relative to RV(captures[].root)."
      type: list
      elements: str
    members:
      description: Members the archive declares.
      type: int
    extracted_files:
      description: Files written.
      type: int
    extracted_bytes:
      description: Bytes written.
      type: int
    summary:
      description: Lines an operator reads first (layout, host, kernel, time, logs, sysctl keys, notes).
      type: list
      elements: str
    notes:
      description: Members skipped or refused and other remarks, one message each.
      type: list
      elements: str
    would_extract:
      description: In check mode, the members (relative to the capture's top directory) that would be extracted.
      type: list
      elements: str
      returned: in check mode
    would_extract_bytes:
      description: In check mode, their declared size.
      type: int
      returned: in check mode
    sysctl:
      description:
        - The precedence model over the capture's sysctl tree. C(keys) maps each vm key set by a file to its winner
          under systemd-sysctl (C(systemd)) and C(sysctl --system) (C(procps)), the captured running value
          (C(running)) and whether it equals what boot applies (C(running_matches_boot)); C(running_differs) says it
          in words; C(files), C(shadowed), C(masked), C(warnings) as M(memfrag.linux.vm_sysctl) reports them.
        - "C(running_source) says where the running values came from (C(sysctl -a), then C(proc/sys/vm) for keys
          it lacks: sos seldom copies C(proc/sys/vm))."
        - "Not modelled: SUSE's C(/boot/sysctl.conf-<release>), which C(env.txt) lists and SUSE's procps applies."
      type: dict
refused:
  description: Archives refused as a whole, each with the reason.
  returned: with O(state=present)
  type: list
  elements: dict
  sample:
    - source: /srv/cases/bomb.tar.xz
      msg: "the archive expands past 100 times its size (245786 bytes) at member ...: refused as a possible compression bomb"
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memfrag.linux.plugins.module_utils._archive.capture import open_capture, plan_capture
from ansible_collections.memfrag.linux.plugins.module_utils._archive.extract import ArchiveError

PREFIX = "memfrag-archive-"
MARKER = ".memfrag-archive-run"


def _remove(module, run_dir):
    if run_dir is None:
        module.fail_json(msg="run_dir is required with state=absent")
    if not os.path.lexists(run_dir):
        module.exit_json(changed=False, run_dir=run_dir)
    if (os.path.islink(run_dir) or not os.path.basename(run_dir.rstrip("/")).startswith(PREFIX)
            or not os.path.isfile(os.path.join(run_dir, MARKER))):
        module.fail_json(msg="%s was not made by capture_extract (no %s marker): not removed" % (run_dir, MARKER))
    shutil.rmtree(run_dir)
    module.exit_json(changed=True, run_dir=run_dir)


def _unique_hosts(captures):
    """Names that repeat get -2, -3 (the inventory has one host per name)."""
    hosts = {}
    for capture in captures:
        host = capture["host"]
        hosts[host] = hosts.get(host, 0) + 1
        if hosts[host] > 1:
            capture["notes"].append("another archive has the host name %s: this one is %s-%d" % (host, host, hosts[host]))
            capture["host"] = "%s-%d" % (host, hosts[host])
            if "summary" in capture:
                capture["summary"].append(capture["notes"][-1])


def _plan(module, sources, limits):
    """Check mode: read each archive's headers, apply every refusal, and say what would be extracted; write
    nothing (no run directory)."""
    captures = []
    refused = []
    for source in sources:
        try:
            captures.append(plan_capture(source, limits))
        except ArchiveError as exc:
            refused.append({"source": source, "msg": str(exc)})
        except (IOError, OSError, ValueError) as exc:
            module.fail_json(msg="reading %s failed: %s" % (source, exc))
    _unique_hosts(captures)
    for entry in refused:
        module.warn("%s refused: %s" % (entry["source"], entry["msg"]))
    module.exit_json(changed=bool(captures), run_dir=None, captures=captures, refused=refused)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            archive_paths=dict(type="list", elements="path"),
            work_dir=dict(type="path"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            run_dir=dict(type="path"),
            max_member_bytes=dict(type="int", default=256 * 1024 * 1024),
            max_total_bytes=dict(type="int", default=1024 * 1024 * 1024),
            max_ratio=dict(type="int", default=100),
        ),
        required_if=[("state", "present", ["archive_paths"]), ("state", "absent", ["run_dir"])],
        supports_check_mode=True,
    )
    params = module.params
    if params["state"] == "absent":
        if module.check_mode:
            # Nothing was extracted in check mode, so there is nothing to remove; never delete in check mode.
            module.exit_json(changed=bool(params["run_dir"]) and os.path.isdir(params["run_dir"]), run_dir=params["run_dir"])
        _remove(module, params["run_dir"])
    for name in ("max_member_bytes", "max_total_bytes", "max_ratio"):
        if params[name] < 1:
            module.fail_json(msg="%s must be a positive integer, got %d" % (name, params[name]))
    work_dir = params["work_dir"] or tempfile.gettempdir()
    if not os.path.isdir(work_dir):
        module.fail_json(msg="work_dir %s is not a directory" % work_dir)
    limits = dict((name, params[name]) for name in ("max_member_bytes", "max_total_bytes", "max_ratio"))
    if module.check_mode:
        _plan(module, params["archive_paths"], limits)
    run_dir = tempfile.mkdtemp(prefix=PREFIX, dir=work_dir)
    done = False
    try:
        with open(os.path.join(run_dir, MARKER), "w") as handle:
            handle.write("made by memfrag.linux.capture_extract; removed at the end of the run\n")
        captures = []
        refused = []
        for number, source in enumerate(params["archive_paths"], 1):
            dest = os.path.join(run_dir, "%03d" % number)
            os.mkdir(dest, 0o700)
            try:
                capture = open_capture(source, dest, limits)
            except ArchiveError as exc:
                shutil.rmtree(dest, ignore_errors=True)
                refused.append({"source": source, "msg": str(exc)})
                continue
            captures.append(capture)
        _unique_hosts(captures)
        done = True
    except (IOError, OSError, ValueError) as exc:
        module.fail_json(msg="extracting the archives failed: %s" % exc)
    finally:
        if not done:  # whatever went wrong (fail_json exits through here too), nothing extracted stays behind
            shutil.rmtree(run_dir, ignore_errors=True)
    for entry in refused:
        module.warn("%s refused: %s" % (entry["source"], entry["msg"]))
    module.exit_json(changed=True, run_dir=run_dir, captures=captures, refused=refused)


if __name__ == "__main__":
    main()
