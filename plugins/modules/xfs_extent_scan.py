#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
module: xfs_extent_scan
short_description: Find the XFS files whose extent maps need large kernel allocations, and who holds them
version_added: 0.1.0
author: memfrag.linux contributors (@memfrag)
description:
  - Lists the files on XFS with at least O(min_extents) extents, worst first, with the largest contiguous
    kernel allocation their extent map needs on this kernel (RV(files[].alloc_bytes), RV(files[].alloc_order))
    and the processes holding them open (RV(files[].open_by)).
  - "Why: the allocation behind C(XFS: possible memory allocation deadlock in kmem_alloc) is often sized by a
    file. Up to 4.14 XFS keeps a file's in-core extent list in 4 KiB buffers indexed by one array of 16 bytes
    per 256 extents; that array is reallocated with KM_NOFS, which loops forever when no free block of its order
    exists. A file with 1.05 million extents needs 65,552 bytes there: an order-5 allocation, the C(size 65552)
    of many such messages. From 4.15 the in-core map is a b+tree of 256-byte nodes: no file needs more than
    order 0 for it. The per-era sizes, and the getbmap and FIEMAP buffers, are worked out from the XFS source in
    plugins/module_utils/_xfs/extent_map.py."
  - Where to look. O(paths) (directories or files); or the files held open by O(pids); or those of the processes
    named by XFS deadlock messages in O(events) (the C(events) of M(memfrag.linux.kernel_log_scan)). With none
    of these, every mounted XFS file system, each once (bind mounts are skipped, saying where the file system is
    scanned). Paths on other file systems are skipped with the reason.
  - It does not cause what it looks for. The extent count comes from C(FS_IOC_FSGETXATTR) (C(fsx_nextents), what
    C(xfs_io -c stat) prints), which reads the count from the inode and never maps or loads the extents. A file
    is opened only when it has allocated enough blocks to hold O(min_extents) extents (an extent covers at least
    one block). As root the sizes come from XFS bulkstat in batches, so the walk reads directories only, like
    C(find -type f); otherwise each regular file costs one C(fstatat).
  - It is safe on production hosts. Files are opened read-only and non-blocking, never through a symbolic link
    (every path component is opened with O_NOFOLLOW relative to its parent), and mount points of other file
    systems are reported, not crossed. O(max_files) and O(time_limit) bound the work; RV(stopped_early) says
    when and why the scan stopped before the end, and the files found until then are returned.
  - Entries under O(proc_root) (C(/proc/PID/fd) links, C(fdinfo), C(maps)) are read as text and never followed;
    a path a process holds is looked up again on this host and accepted only when C(fdinfo) names the same
    mount and (5.14+) the same inode.
  - Sets RV(ansible_facts.memfrag_xfs_files), the worst 10 files, which the fleet report shows.
options:
  paths:
    description:
      - Directories (walked) or files on XFS. A symbolic link anywhere in a path is refused, not followed.
      - Empty with no O(pids) and no O(events) means every mounted XFS file system.
    type: list
    elements: path
    default: []
  pids:
    description:
      - Also examine the files these processes (or threads) hold open.
    type: list
    elements: int
    default: []
  events:
    description:
      - Kernel log events as M(memfrag.linux.kernel_log_scan) returns them (RV(memfrag.linux.kernel_log_scan#module:events)).
        Each C(xfs_alloc_deadlock) event naming a process (C(comm) and C(pid), 4.4+) adds that process when it still
        runs under that name, else the processes now running under that name (RV(log_processes) says which).
    type: list
    elements: dict
    default: []
  min_extents:
    description:
      - Report files with at least this many extents.
    type: int
    default: 10000
  max_files:
    description:
      - Stop after examining this many directory entries (RV(stopped_early) with C(reason=max_files)).
    type: int
    default: 1000000
  time_limit:
    description:
      - Stop after this many seconds (RV(stopped_early) with C(reason=time_limit)); at most 86400.
    type: float
    default: 60
  max_results:
    description:
      - Keep only this many files, those with the most extents (memory stays bounded); RV(found) counts them all.
    type: int
    default: 50
  open_by:
    description:
      - Look up the processes holding each returned file open or mapped (one pass over C(/proc/*/fd) and
        C(/proc/*/maps)).
    type: bool
    default: true
  method:
    description:
      - V(auto) uses XFS bulkstat to skip small files without touching them when allowed (root), else V(stat).
      - V(stat) calls C(fstatat) for each regular file.
    type: str
    choices: [auto, stat]
    default: auto
  kernel_release:
    description:
      - Kernel release whose extent-map layout sizes RV(files[].alloc_bytes); default is the running kernel.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - memfrag.linux.proc_root
attributes:
  check_mode:
    support: full
    details: Read-only; check mode runs the same scan.
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
    details: Linux; files on XFS.
notes:
  - O(proc_root) is where processes are read (C(fd), C(fdinfo), C(comm), C(maps)) and the mount table
    (C(self/mountinfo)); the files themselves are always those of this host.
  - A file deleted while a process holds it is reported in RV(skipped_paths), since it cannot be opened by path.
seealso:
  - module: memfrag.linux.kernel_log_scan
  - module: memfrag.linux.xfs_defrag
"""

EXAMPLES = r"""
- name: Fragmented files on every XFS file system, and who holds them
  memfrag.linux.xfs_extent_scan:
  register: xfs

- name: From the kernel log to the files
  block:
    - name: Scan the kernel logs
      memfrag.linux.kernel_log_scan:
        since: 7d
      register: klog

    - name: Files held by the processes the XFS deadlock messages name
      memfrag.linux.xfs_extent_scan:
        events: "{{ klog.events }}"
        min_extents: 1000
      register: culprits

- name: One directory of VM images, at most 10 seconds
  memfrag.linux.xfs_extent_scan:
    paths: [/var/lib/libvirt/images]
    time_limit: 10
"""

RETURN = r"""
files:
  description: Files with at least O(min_extents) extents, most extents first (at most O(max_results)).
  returned: always
  type: list
  elements: dict
  contains:
    path: {description: Path of the file on this host., type: str}
    mount: {description: Mount point of its file system., type: str}
    size: {description: File size in bytes., type: int}
    extents: {description: "C(fsx_nextents): records in the data fork's extent map.", type: int}
    alloc_bytes:
      description:
        - Largest single allocation (KM_NOFS, retried forever when it fails before 6.9) the file's in-core extent map
          needs in this kernel's era; for 2.6.19-4.14 the map as read from disk (a map changed since can need up to
          twice as much). Null for kernels before 2.6.19.
      type: int
    alloc_order: {description: "Buddy order of that allocation (get_order: 0 up to one page).", type: int}
    getbmap_bytes:
      description: Contiguous buffer a whole-file C(XFS_IOC_GETBMAPX) (C(xfs_bmap)) makes the kernel try first; it falls back to vmalloc.
      type: int
    getbmap_order: {description: Buddy order of that buffer., type: int}
    open_by:
      description: Processes holding the file open or mapped (C(write) is a descriptor opened for writing or a shared writable mapping).
      type: list
      elements: dict
      sample: [{pid: 6902, comm: qemu-kvm, write: true, mapped: false}]
  sample:
    - path: /var/lib/libvirt/images/db01.qcow2
      mount: /var/lib/libvirt/images
      size: 107374182400
      extents: 1048612
      alloc_bytes: 65552
      alloc_order: 5
      getbmap_bytes: 100685952
      getbmap_order: 15
      open_by: [{pid: 6902, comm: qemu-kvm, write: true, mapped: false}]
found:
  description: How many files had at least O(min_extents) extents (RV(files) keeps the worst O(max_results)).
  returned: always
  type: int
min_extents:
  description: The O(min_extents) used.
  returned: always
  type: int
extent_map:
  description: The extent-map era the sizes are for.
  returned: always
  type: dict
  sample: {kernel_release: 3.10.0-1160.el7.x86_64, era: extent_list, page_size: 4096,
           description: "in-core extent list with an indirection array (2.6.19-4.14): ..."}
scanned:
  description:
    - One entry per directory tree or file examined, with its mount, device, C(method) (V(bulkstat); V(stat) with
      why bulkstat was not used; V(file) for a file given in O(paths)), counts (C(directories), C(too_small) for the
      other entries, never opened, C(opened), C(errors)) and C(walked) - V(all); V(until all found) when the walk
      ended once it had met every file bulkstat listed as large enough (nothing else could qualify); V(no) when
      bulkstat listed none, so the tree was not walked at all; V(stopped) by a bound.
  returned: always
  type: list
  elements: dict
processes:
  description:
    - Per process examined (O(pids), and those matched from O(events)) its C(pid), C(comm), the number of XFS files it
      holds (C(xfs_files)), the most extents among them (C(max_extents)) and the paths of those with at least
      O(min_extents) (C(files)); C(reason) when its files could not be listed.
  returned: always
  type: list
  elements: dict
log_processes:
  description:
    - Per (comm, pid) named by O(events), how it was matched to a running process (C(matched_by) V(pid), V(comm) or
      null), the matched C(pids), the number of C(events) and the largest allocation C(size) the messages printed.
  returned: always
  type: list
  elements: dict
  sample: [{comm: qemu-kvm, pid: 6902, events: 12, size: 65552, matched_by: pid, pids: [6902]}]
skipped_paths:
  description: Paths not examined and why (other file systems, symbolic links, mount points not crossed, errors); at most 100.
  returned: always
  type: list
  elements: dict
  sample: [{path: /, reason: "ext4 file system, not XFS"}]
skipped_paths_total:
  description: Number of skipped paths, including those beyond the 100 listed.
  returned: always
  type: int
stopped_early:
  description:
    - Null when everything asked was examined; else why the scan stopped (C(reason) V(max_files) or V(time_limit)),
      the C(limit), the C(entries) examined and C(seconds). The files found until then are in RV(files).
  returned: always
  type: dict
  sample: {reason: time_limit, limit: 60, entries: 2840211, seconds: 60.0}
entries:
  description: Directory entries examined.
  returned: always
  type: int
seconds:
  description: Time the scan took.
  returned: always
  type: float
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: complex
  contains:
    memfrag_xfs_files:
      description:
        - The worst 10 RV(files) (path, mount, size, extents, alloc_bytes, alloc_order, open_by), RV(found),
          RV(min_extents), the era and kernel release, RV(log_processes) and RV(stopped_early); C(scanned) is true.
      returned: always
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._xfs.scan import METHODS, fact, scan


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", default=[]),
            pids=dict(type="list", elements="int", default=[]),
            events=dict(type="list", elements="dict", default=[]),
            min_extents=dict(type="int", default=10000),
            max_files=dict(type="int", default=1000000),
            time_limit=dict(type="float", default=60),
            max_results=dict(type="int", default=50),
            open_by=dict(type="bool", default=True),
            method=dict(type="str", default="auto", choices=list(METHODS)),
            kernel_release=dict(type="str"),
            proc_root=dict(type="path", default="/proc"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        result, warnings = scan(params, params["proc_root"], params["kernel_release"])
    except ProcFileError as exc:
        module.fail_json(msg="cannot read the mount table: %s" % exc, path=exc.path)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, ansible_facts={"memfrag_xfs_files": fact(result)}, **result)


if __name__ == "__main__":
    main()
