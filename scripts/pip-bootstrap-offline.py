# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for ansible-test's downloaded get-pip script, for machines without that download host.

ansible-test --venv runs ~/.ansible/test/cache/get_pip_<version>.py in a fresh virtual environment
with pip's arguments. This does the same job offline: pip from the interpreter's own ensurepip, then
``pip install`` of the requested packages through the machine's normal pip configuration.
"""

import ensurepip
import os
import subprocess
import sys


def main():
    ensurepip.bootstrap()
    env = dict(os.environ)
    # ensurepip points PIP_CONFIG_FILE at /dev/null, which would hide the machine's index settings.
    env.pop("PIP_CONFIG_FILE", None)
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    return subprocess.call([sys.executable, "-m", "pip", "install"] + args, env=env)


if __name__ == "__main__":
    sys.exit(main())
