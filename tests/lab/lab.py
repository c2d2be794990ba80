# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A lab of real hosts for the fleet tests, built from Debian packages by the test suite itself.

Two kinds of host:

* ``VmLab``: small QEMU guests under software emulation (TCG; KVM is not usable on the CI machines),
  one per kernel (bookworm's 6.1, bullseye's 5.10), each with sshd, python3, sudo and a generated key,
  reached over real SSH. The root image is built once with debootstrap and cached outside the
  checkout (``/var/cache/memfrag-lab/<hash of this recipe>``); each VM boots from a thin qcow2 overlay.
* ``NetnsLab``: network namespaces (veth, own address) each running its own sshd on this machine's
  kernel. Cheap; used for rollout/fault tests where each host gets its own fixture proc_root.

Everything started here is stopped by ``stop()`` (called from pytest finalizers), and QEMU/sshd
processes are killed by pid even when a test failed half way.

Run ``python tests/lab/lab.py build`` to build the image without the test suite.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import inspect
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import typing as t

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE_ROOT = os.environ.get("MEMFRAG_LAB_CACHE", "/var/cache/memfrag-lab")

# What the image is made of. Any change here (or in this file) gives a new cache key.
SUITE = "bookworm"
EXTRA_KERNEL_SUITE = "bullseye"  # its linux-image-5.10 is installed next to bookworm's 6.1
INCLUDE = ["openssh-server", "python3", "systemd-sysv", "udev", "iproute2", "xfsprogs", "dbus",
           "linux-image-amd64", "initramfs-tools", "zstd", "sudo", "procps", "kmod"]
INITRAMFS_MODULES = ["virtio_pci", "virtio_blk", "virtio_net", "ext4"]
IMAGE_SIZE = "3G"
LAB_USER = "lab"

HOST_DEBS = {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils", "debootstrap": "debootstrap"}


def log(msg: str) -> None:
    sys.stderr.write("[memfrag-lab %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def run(cmd: t.List[str], **kwargs: t.Any) -> subprocess.CompletedProcess:
    kwargs.setdefault("check", True)
    return subprocess.run(cmd, **kwargs)  # pylint: disable=subprocess-run-check  # check is set just above


def ensure_debs(binaries: t.Dict[str, str]) -> None:
    """apt-get install the Debian packages providing ``binaries`` (name -> package) when missing."""
    missing = sorted({pkg for binary, pkg in binaries.items() if shutil.which(binary) is None
                      and not os.path.exists(os.path.join("/usr/sbin", binary))})
    if not missing:
        return
    if os.geteuid() != 0:
        raise LabUnavailable("need root to apt-get install %s" % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends"] + missing
    log("installing %s" % " ".join(missing))
    if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode != 0:
        run(["apt-get", "update"], env=env, capture_output=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise LabUnavailable("apt-get install %s failed: %s" % (" ".join(missing), proc.stderr[-2000:]))


class LabUnavailable(Exception):
    """The lab cannot run on this machine (a reason for a skip, not a failure)."""


def recipe_key() -> str:
    """Cache key: the recipe constants and the build function's source (not the rest of this file)."""
    recipe = repr((SUITE, EXTRA_KERNEL_SUITE, INCLUDE, INITRAMFS_MODULES, IMAGE_SIZE, LAB_USER))
    h = hashlib.sha256(recipe.encode())
    h.update(inspect.getsource(_build).encode())
    return h.hexdigest()[:16]


def apt_mirror() -> str:
    """The Debian mirror apt is configured with (so debootstrap uses what this network reaches)."""
    candidates = ["/etc/apt/sources.list"]
    sdir = "/etc/apt/sources.list.d"
    if os.path.isdir(sdir):
        candidates += [os.path.join(sdir, n) for n in sorted(os.listdir(sdir))]
    for path in candidates:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            for w in words:
                if w.startswith("http") and w.rstrip("/").endswith("/debian"):
                    return w
    return "http://deb.debian.org/debian"


@contextlib.contextmanager
def _locked(path: str) -> t.Iterator[None]:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def build_image(cache: t.Optional[str] = None) -> str:
    """Build (or reuse) the cached image; returns its directory with base.raw, kernels and the key."""
    ensure_debs(HOST_DEBS)
    cache = cache or os.path.join(CACHE_ROOT, recipe_key())
    done = os.path.join(cache, "READY")
    with _locked(cache + ".lock"):
        if os.path.exists(done):
            return cache
        if os.path.isdir(cache):
            shutil.rmtree(cache)
        os.makedirs(cache)
        work = tempfile.mkdtemp(prefix="rootfs-", dir=cache)
        rootfs = os.path.join(work, "rootfs")
        try:
            _build(cache, rootfs)
        finally:
            _safe_rmtree(work)
        _write(done, time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    return cache


def _mounts_under(path: str) -> t.List[str]:
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    return [p for p in points if p == path or p.startswith(path.rstrip("/") + "/")]


def _safe_rmtree(path: str) -> None:
    """Remove a build tree, but never through a mount point (a bound /dev or /proc would be wiped)."""
    for point in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    left = _mounts_under(path)
    if left:
        raise RuntimeError("not removing %s: still mounted: %s" % (path, left))
    shutil.rmtree(path, ignore_errors=True)


def _chroot(rootfs: str, cmd: t.List[str]) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LANG": "C"}
    return run(["chroot", rootfs] + cmd, env=env, capture_output=True, text=True)


def _build(cache: str, rootfs: str) -> None:
    mirror = apt_mirror()
    key = os.path.join(cache, "id_ed25519")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "memfrag-lab", "-f", key])
    t0 = time.time()
    log("debootstrap %s from %s (about a minute)" % (SUITE, mirror))
    proc = subprocess.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(INCLUDE), SUITE, rootfs, mirror],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabUnavailable("debootstrap failed: %s" % (proc.stdout[-1500:] + proc.stderr[-1500:]))
    log("debootstrap done in %.0fs" % (time.time() - t0))

    # A small initramfs with just what a virtio guest needs, for every kernel installed below.
    conf = os.path.join(rootfs, "etc/initramfs-tools/initramfs.conf")
    with open(conf) as f:
        text = f.read()
    _write(conf, "\n".join("MODULES=list" if line.startswith("MODULES=") else line for line in text.splitlines()) + "\n")
    _write(os.path.join(rootfs, "etc/initramfs-tools/modules"), "\n".join(INITRAMFS_MODULES) + "\n")

    # bullseye's 5.10 kernel from the same mirror, through a list used only for this step.
    for d in ("proc", "sys", "dev"):
        run(["mount", "--bind", "/" + d, os.path.join(rootfs, d)])
    try:
        extra_list = os.path.join(rootfs, "etc/apt/sources.list.d/memfrag-lab-extra.list")
        _write(extra_list, "deb %s %s main\n" % (mirror, EXTRA_KERNEL_SUITE))
        _chroot(rootfs, ["apt-get", "update", "-q"])
        names = _chroot(rootfs, ["apt-cache", "search", "--names-only", r"^linux-image-5\.10\.0-[0-9]+-amd64$"]).stdout.split("\n")
        versions = sorted((n.split()[0] for n in names if n.strip()), key=lambda n: int(n.split("-")[3]))
        if not versions:
            raise LabUnavailable("no bullseye linux-image-5.10 on %s" % mirror)
        log("installing %s" % versions[-1])
        _chroot(rootfs, ["apt-get", "install", "-y", "-q", "--no-install-recommends", versions[-1]])
        os.unlink(extra_list)
        _chroot(rootfs, ["apt-get", "update", "-q"])
        _chroot(rootfs, ["update-initramfs", "-u", "-k", "all"])
    finally:
        for d in ("dev", "sys", "proc"):
            subprocess.run(["umount", "-l", os.path.join(rootfs, d)], check=False)

    boot = os.path.join(rootfs, "boot")
    for name in os.listdir(boot):
        if name.startswith(("vmlinuz-", "initrd.img-")):
            shutil.copy(os.path.join(boot, name), os.path.join(cache, name))

    # Access: a sudo user with the generated key (ansible uses become), and root too for debugging.
    with open(key + ".pub") as f:
        pub = f.read()
    _chroot(rootfs, ["useradd", "-m", "-s", "/bin/bash", LAB_USER])
    _write(os.path.join(rootfs, "etc/sudoers.d/lab"), "%s ALL=(ALL) NOPASSWD:ALL\n" % LAB_USER, 0o440)
    for home, owner in (("root", "root"), ("home/" + LAB_USER, LAB_USER)):
        _write(os.path.join(rootfs, home, ".ssh/authorized_keys"), pub, 0o600)
        _chroot(rootfs, ["chown", "-R", "%s:%s" % (owner, owner), "/" + home + "/.ssh"])
        os.chmod(os.path.join(rootfs, home, ".ssh"), 0o700)
    _write(os.path.join(rootfs, "etc/fstab"), "/dev/vda / ext4 defaults 0 1\n")
    _write(os.path.join(rootfs, "etc/systemd/network/20-dhcp.network"), "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n")
    _write(os.path.join(rootfs, "etc/ssh/sshd_config.d/memfrag-lab.conf"), "UseDNS no\nPasswordAuthentication no\n")
    _write(os.path.join(rootfs, "etc/hostname"), "lab\n")
    _chroot(rootfs, ["systemctl", "enable", "systemd-networkd", "ssh"])
    _chroot(rootfs, ["systemctl", "mask", "systemd-networkd-wait-online.service", "apt-daily.timer",
                     "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer"])
    _write(os.path.join(rootfs, "etc/machine-id"), "")
    _chroot(rootfs, ["apt-get", "clean"])
    for d in ("var/lib/apt/lists",):
        shutil.rmtree(os.path.join(rootfs, d), ignore_errors=True)
        os.makedirs(os.path.join(rootfs, d, "partial"))

    raw = os.path.join(cache, "base.raw")
    run(["truncate", "-s", IMAGE_SIZE, raw])
    run(["mkfs.ext4", "-q", "-F", "-L", "memfrag-lab", "-d", rootfs, raw])
    log("image ready in %.0fs: %s" % (time.time() - t0, cache))


def kernels(cache: str) -> t.Dict[str, t.Tuple[str, str]]:
    """kernel release -> (vmlinuz, initrd) available in the cached image."""
    found = {}
    for name in os.listdir(cache):
        if name.startswith("vmlinuz-"):
            release = name[len("vmlinuz-"):]
            initrd = os.path.join(cache, "initrd.img-" + release)
            if os.path.exists(initrd):
                found[release] = (os.path.join(cache, name), initrd)
    return found


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: ask the kernel for SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def _kill_pidfile(pidfile: str, sig: int = signal.SIGTERM) -> None:
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, sig)
    except OSError:
        return
    for _attempt in range(50):
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


class Vm(object):
    def __init__(self, name: str, kernel_release: str, port: int, workdir: str) -> None:
        self.name = name
        self.kernel_release = kernel_release
        self.port = port
        self.workdir = workdir
        self.pidfile = os.path.join(workdir, name + ".pid")
        self.serial = os.path.join(workdir, name + ".serial")
        self.disk = os.path.join(workdir, name + ".qcow2")


class VmLab(object):
    """Boot one VM per kernel from the cached image; ``inventory()`` gives ansible host vars."""

    def __init__(self, workdir: str, specs: t.Optional[t.List[t.Tuple[str, str]]] = None, memory_mb: int = 512) -> None:
        # specs: (vm name, kernel release prefix)
        self.specs = specs or [("vm61", "6.1."), ("vm510", "5.10.")]
        self.workdir = workdir
        self.memory_mb = memory_mb
        self.vms = []  # type: t.List[Vm]
        self.procs = []  # type: t.List[subprocess.Popen]
        self.cache = ""

    @property
    def key(self) -> str:
        return os.path.join(self.cache, "id_ed25519")

    def start(self, timeout: float = 300) -> None:
        self.cache = build_image()
        os.makedirs(self.workdir, exist_ok=True)
        available = kernels(self.cache)
        try:
            for name, prefix in self.specs:
                match = sorted(r for r in available if r.startswith(prefix))
                if not match:
                    raise LabUnavailable("no kernel %s* in %s (have %s)" % (prefix, self.cache, sorted(available)))
                vm = Vm(name, match[-1], free_port(), self.workdir)
                self._boot(vm)
                self.vms.append(vm)
            deadline = time.time() + timeout
            for vm in self.vms:
                self.wait_ssh(vm, deadline)
        except BaseException:
            self.stop()
            raise

    def _boot(self, vm: Vm) -> None:
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", os.path.join(self.cache, "base.raw"), "-F", "raw", vm.disk])
        vmlinuz, initrd = kernels(self.cache)[vm.kernel_release]
        cmd = ["qemu-system-x86_64", "-accel", "tcg,thread=multi,tb-size=64", "-smp", "1", "-m", str(self.memory_mb),
               "-drive", "file=%s,if=virtio,format=qcow2,cache=unsafe" % vm.disk,
               "-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22" % vm.port, "-device", "virtio-net-pci,netdev=n0",
               "-kernel", vmlinuz, "-initrd", initrd,
               "-append", "root=/dev/vda rw console=ttyS0 systemd.hostname=%s" % vm.name,
               "-display", "none", "-serial", "file:" + vm.serial]
        # Not -daemonize: a child that the kernel kills when the test process dies, however it dies,
        # so no guest outlives a killed test run.
        errlog = os.path.join(self.workdir, vm.name + ".qemu.log")
        with open(errlog, "w") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, preexec_fn=_die_with_parent)
        _write(vm.pidfile, "%d\n" % proc.pid)
        self.procs.append(proc)
        time.sleep(1)
        if proc.poll() is not None:
            with open(errlog) as f:
                raise LabUnavailable("qemu cannot start here: %s" % f.read().strip()[-500:])
        log("booting %s (kernel %s) ssh on 127.0.0.1:%d" % (vm.name, vm.kernel_release, vm.port))

    def ssh_cmd(self, vm: Vm, command: str, user: str = "root") -> t.List[str]:
        return ["ssh", "-i", self.key, "-p", str(vm.port), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
                "-o", "BatchMode=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
                "%s@127.0.0.1" % user, command]

    def ssh(self, vm: Vm, command: str, check: bool = True, timeout: float = 120) -> str:
        proc = subprocess.run(self.ssh_cmd(vm, command), capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("ssh %s %r failed (%d): %s" % (vm.name, command, proc.returncode, proc.stderr))
        return proc.stdout

    def wait_ssh(self, vm: Vm, deadline: float) -> None:
        while time.time() < deadline:
            proc = subprocess.run(self.ssh_cmd(vm, "true"), capture_output=True, timeout=60, check=False)
            if proc.returncode == 0:
                log("%s ssh-ready" % vm.name)
                return
            if not self._alive(vm):
                raise LabUnavailable("qemu for %s exited; serial log tail: %s" % (vm.name, self._serial_tail(vm)))
            time.sleep(2)
        raise AssertionError("%s not ssh-ready in time; serial log tail: %s" % (vm.name, self._serial_tail(vm)))

    def _alive(self, vm: Vm) -> bool:
        try:
            with open(vm.pidfile) as f:
                os.kill(int(f.read().strip()), 0)
            return True
        except (OSError, ValueError):
            return False

    def _serial_tail(self, vm: Vm) -> str:
        try:
            with open(vm.serial, errors="replace") as f:
                return f.read()[-1500:]
        except OSError:
            return "(no serial log)"

    def inventory(self) -> t.Dict[str, t.Dict[str, t.Any]]:
        return {vm.name: {
            "ansible_host": "127.0.0.1", "ansible_port": vm.port, "ansible_user": LAB_USER,
            "ansible_become": True, "ansible_ssh_private_key_file": self.key,
            # ServerAlive: when a guest reboots, QEMU's user network never resets the host side of the
            # TCP connection, so without it ssh (and the reboot module) waits forever.
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
                                       "-o ServerAliveInterval=5 -o ServerAliveCountMax=3",
            "ansible_python_interpreter": "/usr/bin/python3",
            "lab_kernel_release": vm.kernel_release,
        } for vm in self.vms}

    def stop(self) -> None:
        # Our own children first (waited for, so no zombie keeps a pidfile's pid alive), then any pidfile left.
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
        for vm in self.vms:
            _kill_pidfile(vm.pidfile)
        # A VM that failed before it was recorded still has its pidfile in workdir.
        if os.path.isdir(self.workdir):
            for name in os.listdir(self.workdir):
                if name.endswith(".pid"):
                    _kill_pidfile(os.path.join(self.workdir, name))
        self.vms = []


class NetnsHost(object):
    def __init__(self, name: str, index: int, workdir: str) -> None:
        self.name = name
        self.index = index
        self.netns = "mf%d-%d" % (os.getpid() % 100000, index)
        self.veth = "mfv%d-%d" % (os.getpid() % 10000, index)
        self.address = "10.%d.%d.2" % (200 + (os.getpid() % 50), index)
        self.host_address = "10.%d.%d.1" % (200 + (os.getpid() % 50), index)
        self.workdir = os.path.join(workdir, name)
        self.pidfile = os.path.join(self.workdir, "sshd.pid")
        self.started = False
        self.proc = None  # type: t.Optional[subprocess.Popen]


class NetnsLab(object):
    """Hosts made of a network namespace + veth + their own sshd, sharing this kernel and filesystem.

    ``readonly`` paths are bind-mounted read-only inside that host's mount namespace only (so the
    host sees, e.g., its fixture sys/vm and the real /proc/sys as read-only while others do not).
    """

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.hosts = []  # type: t.List[NetnsHost]
        self.key = os.path.join(workdir, "id_ed25519")
        self.host_key = os.path.join(workdir, "ssh_host_ed25519_key")

    def prepare(self) -> None:
        ensure_debs({"sshd": "openssh-server", "ip": "iproute2", "unshare": "util-linux"})
        os.makedirs(self.workdir, exist_ok=True)
        if not os.path.exists(self.key):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "memfrag-netns", "-f", self.key])
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.host_key])
        probe = "mfprobe%d" % (os.getpid() % 100000)
        proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise LabUnavailable("ip netns add does not work here: %s" % proc.stderr.strip())
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory

    _counter = 0  # addresses stay unique across the labs of one process

    def add(self, name: str, readonly: t.Sequence[str] = (), start_sshd: bool = True) -> NetnsHost:
        NetnsLab._counter += 1
        host = NetnsHost(name, NetnsLab._counter, self.workdir)
        os.makedirs(host.workdir, exist_ok=True)
        self.hosts.append(host)
        run(["ip", "netns", "add", host.netns])
        run(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns])
        run(["ip", "addr", "add", host.host_address + "/24", "dev", host.veth])
        run(["ip", "link", "set", host.veth, "up"])
        for cmd in (["ip", "addr", "add", host.address + "/24", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                    ["ip", "link", "set", "lo", "up"]):
            run(["ip", "netns", "exec", host.netns] + cmd)
        host.started = True
        if start_sshd:
            self.start_sshd(host, readonly)
        return host

    def start_sshd(self, host: NetnsHost, readonly: t.Sequence[str] = ()) -> None:
        config = os.path.join(host.workdir, "sshd_config")
        with open(self.key + ".pub") as f:
            pub = f.read()
        _write(os.path.join(host.workdir, "authorized_keys"), pub, 0o600)
        _write(config, "\n".join([
            "ListenAddress %s" % host.address, "Port 22", "HostKey %s" % self.host_key,
            "PidFile %s" % host.pidfile, "AuthorizedKeysFile %s" % os.path.join(host.workdir, "authorized_keys"),
            "PermitRootLogin prohibit-password", "PasswordAuthentication no", "UseDNS no", "StrictModes no",
            "Subsystem sftp internal-sftp", "MaxStartups 100", "MaxSessions 100", "LogLevel ERROR", ""]))
        script = "set -e\nhostname %s\n" % host.name
        for path in readonly:
            script += 'mount --bind "%s" "%s"\nmount -o remount,bind,ro "%s"\n' % (path, path, path)
        script += 'exec "$0" -D -f "$1" -E "$2"\n'
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        # ip netns exec, unshare and sh all exec the next program, so this child becomes sshd -D and
        # keeps the parent-death signal: no sshd outlives a killed test run.
        proc = subprocess.Popen(["ip", "netns", "exec", host.netns, "unshare", "--mount", "--uts", "--propagation", "private",
                                 "sh", "-c", script, sshd, config, os.path.join(host.workdir, "sshd.log")],
                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        host.proc = proc
        deadline = time.time() + 20
        while time.time() < deadline:
            if proc.poll() is not None:
                raise AssertionError("sshd in %s exited (%s); see %s" % (host.netns, proc.returncode, host.workdir))
            with contextlib.closing(socket.socket()) as s:
                s.settimeout(1)
                if s.connect_ex((host.address, 22)) == 0:
                    return
            time.sleep(0.2)
        raise AssertionError("sshd in %s did not listen" % host.netns)

    def inventory(self) -> t.Dict[str, t.Dict[str, t.Any]]:
        return {h.name: {
            "ansible_host": h.address, "ansible_user": "root", "ansible_ssh_private_key_file": self.key,
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5",
            "ansible_python_interpreter": sys.executable,
        } for h in self.hosts}

    def stop(self) -> None:
        for host in self.hosts:
            # Everything in the host's namespace: the listening sshd, its per-connection children (sshd: root@notty,
            # which outlive a killed listener) and whatever they run.
            if host.started:
                kill_netns_processes(host.netns)
            if host.proc is not None:
                if host.proc.poll() is None:
                    host.proc.kill()
                host.proc.wait()
            else:
                _kill_pidfile(host.pidfile)
            subprocess.run(["ip", "link", "del", host.veth], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True, check=False)
        self.hosts = []


def kill_netns_processes(netns: str, timeout: float = 10) -> t.List[int]:
    """SIGKILL every process in network namespace ``netns`` until none is left; returns the pids killed."""
    killed = []  # type: t.List[int]
    deadline = time.time() + timeout
    while True:
        proc = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False)
        pids = [int(word) for word in proc.stdout.split() if word.isdigit()]
        if not pids:
            return killed
        if time.time() > deadline:
            raise RuntimeError("processes in netns %s survive SIGKILL: %s" % (netns, pids))
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.1)


def main(argv: t.List[str]) -> int:
    if argv[1:2] == ["build"]:
        print(build_image())
        return 0
    if argv[1:2] == ["boot"]:
        workdir = tempfile.mkdtemp(prefix="memfrag-lab-")
        lab = VmLab(workdir)
        try:
            t0 = time.time()
            lab.start()
            print("ssh-ready in %.1fs" % (time.time() - t0))
            for vm in lab.vms:
                print(vm.name, lab.ssh(vm, "uname -r; python3 --version").split())
        finally:
            lab.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        return 0
    sys.stderr.write("usage: lab.py build|boot\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
