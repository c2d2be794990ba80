# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real programs the suite tests against, installed from Debian's packages when missing (a fresh CI machine has only
Python, pip and apt). Services a package would start are not started: policy-rc.d refuses them during the install."""

from __future__ import annotations

import os
import shutil
import subprocess

POLICY = "/usr/sbin/policy-rc.d"


def ensure_command(command: str, package: str, timeout: int = 900) -> str:
    """The path of ``command``, installing ``package`` with apt-get when it is absent. Raises RuntimeError."""
    found = shutil.which(command)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError("%s is missing and cannot be installed here (needs root and apt-get): install %s" % (command, package))
    own_policy = not os.path.exists(POLICY)
    if own_policy:
        with open(POLICY, "w") as handle:
            handle.write("#!/bin/sh\nexit 101\n")
        os.chmod(POLICY, 0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        proc = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", package], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    finally:
        if own_policy:
            os.unlink(POLICY)
    found = shutil.which(command)
    if not found:
        raise RuntimeError("apt-get install %s did not provide %s:\n%s" % (package, command, proc.stdout.decode("utf-8", "replace")[-2000:]))
    return found
