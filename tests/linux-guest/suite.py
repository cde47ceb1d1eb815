#!/usr/bin/env python3
"""The Linux guest suite: Linux 6.1's unchanged Hyper-V drivers against hvkit.

Builds (or reuses) the suite's kernel, boots it on `hvkit run` with two
disks, two NICs and the integration components, drives the guest's agent
(agent.c, the /init) over the serial console and the machine over `hvkit
ctl`, and checks what both sides saw. Prints TAP; every check is a line.
Skips (TAP "1..0 # SKIP") where /dev/kvm is not usable.

    suite.py --hvkit build/cmd/hvkit --agent build/tests/linux-guest/hvkit-linux-agent
             --cache build/linux-guest --work DIR

HVKIT_SUITE_HVKIT names another hvkit binary to run (scripts/test gives it
the sanitizer build's). Every wait has a deadline; none of them is a timing assertion. The times
printed (kernel build, boot to the agent, the whole run) are figures for
docs/linux-guest.md, not checks.
"""
import argparse
import json
import os
import re
import shutil
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

# The guest's view of the machine suite.py builds.
MIB = 1 << 20
RW_DISK = {"size": 64 * MIB, "serial": "hvt-rw"}
RO_DISK = {"size": 16 * MIB, "serial": "hvt-ro", "seed": 7}
HOT_DISK = {"size": 8 * MIB, "serial": "hvkit-2", "seed": 9}  # the default serial of LUN 2
SWAP_DISK = {"size": 192 * MIB, "serial": "hvt-swap"}  # the hibernation image's (LUN 2)
HOT_MAC = "00:15:5d:48:56:03"
USER_MAC = "00:15:5d:48:56:01"
LOOP_MAC = "00:15:5d:48:56:02"
GUEST_IP = "10.0.2.15"  # libslirp's DHCP
HOST_IP = "10.0.2.2"  # the host, as the guest reaches it through libslirp
CPUS = 2
# --vm-id: the controller's and NICs' instance GUIDs follow from it
# (docs/lifecycle.md): RFC 9562 version 5 UUIDs of "hvkit/<kind>/<n>".
VM_ID = "6b1f3a52-9c1e-4d0e-8f61-5e0d7c2a9b44"
EXPECTED_INSTANCES = {
    "scsi": [str(uuid.uuid5(uuid.UUID(VM_ID), "hvkit/storvsp/0"))],
    "nic": sorted(str(uuid.uuid5(uuid.UUID(VM_ID), "hvkit/netvsp/%d" % i)) for i in (0, 1)),
}

# VMBus class GUIDs (include/linux/hyperv.h) and the driver of each.
CLASSES = {
    "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f": ("scsi", "hv_storvsc"),
    "f8615163-df3e-46c5-913f-f2d2f965ed0e": ("nic", "hv_netvsc"),
    "0e0b6031-5213-4934-818b-38d90ced39db": ("shutdown", "hv_utils"),
    "9527e630-d0ae-497b-adce-e80ab0175caf": ("timesync", "hv_utils"),
    "57164f39-9115-4e78-ab55-382f3bd5422d": ("heartbeat", "hv_utils"),
    "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6": ("kvp", "hv_utils"),
    "35fa2e29-ea23-4236-96ae-3a6ebacba440": ("vss", "hv_utils"),
    "34d14be3-dee4-41c8-9ae7-6b174977c192": ("fcopy", "hv_utils"),
}
EXPECTED_DEVICES = {"scsi": 1, "nic": 2, "shutdown": 1, "timesync": 1, "heartbeat": 1,
                    "kvp": 1, "vss": 1, "fcopy": 1}
# What Linux 6.1's hv_utils negotiates with a host offering every version
# (its newest: hv_util.c, hv_kvp.c, hv_snapshot.c, hv_fcopy.c).
IC_VERSIONS = {"Shutdown": "3.2", "TimeSync": "4.0", "Heartbeat": "3.0", "VSS": "5.0",
               "FCopy": "1.1", "KVP": "4.0"}

# Why each word of the command line is there: docs/linux-guest.md.
CMDLINE = ("console=ttyS0 earlyprintk=serial,ttyS0 ignore_loglevel "
           "clearcpuid=cx16,114,smap,fsgsbase,popcnt,rdrand,rdseed,erms,fsrm,movbe noxsave "
           "mitigations=off idle=halt tsc=reliable no_timer_check panic=-1 ip=dhcp "
           "no_console_suspend")


# ---- the suite's data: pattern and hash (agent.c has the twins) ----

def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def pattern(off, length, seed):
    """Bytes [off, off + length) of pattern stream `seed`."""
    first, last = off // 8, (off + length + 7) // 8
    base = seed << 32
    blocks = struct.pack("<%dQ" % (last - first),
                         *(splitmix64(base ^ i) for i in range(first, last)))
    return blocks[off - first * 8:off - first * 8 + length]


# ---- TAP ----

class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, ok, name, detail=""):
        self.n += 1
        self.failed += not ok
        line = "%s %d - %s" % ("ok" if ok else "not ok", self.n, name)
        print(line + (" # " + detail if detail and not ok else ""), flush=True)
        if detail and ok:
            self.note(detail)
        return ok

    @staticmethod
    def note(text):
        for line in str(text).splitlines():
            print("# " + line, flush=True)

    def end(self):
        print("1..%d" % self.n, flush=True)


# ---- the machine ----

class Console:
    """COM1 through hvkit's --serial unix: socket: a reader thread keeps
    every line (and a log file); waits match against them with deadlines."""

    def __init__(self, path, log_path, deadline):
        self.lines = []
        self.cond = threading.Condition()
        self.closed = False
        self.log = open(log_path, "w")
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # the socket appears once hvkit has started
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            *done, buf = buf.split(b"\n")
            with self.cond:
                for raw in done:
                    line = raw.decode("utf-8", "replace").rstrip("\r")
                    self.lines.append(line)
                    self.log.write(line + "\n")
                self.log.flush()
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait(self, pattern_re, timeout, start=0):
        """The match of the first line from index start matching pattern_re,
        or None once timeout seconds passed or the console closed."""
        rx = re.compile(pattern_re)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self.cond.wait(left)

    def matching(self, pattern_re, start=0, end=None):
        rx = re.compile(pattern_re)
        with self.cond:
            return [m for m in (rx.search(l) for l in self.lines[start:end]) if m]

    def command(self, text, timeout):
        """Types a command for the agent; returns (ok, detail) once its
        'hvt: end' line arrives."""
        with self.cond:
            start = len(self.lines)
        self.sock.sendall((text + "\n").encode())
        name = re.escape(text.split()[0])
        m = self.wait(r"^hvt: end %s (ok|fail) (.*)$" % name, timeout, start)
        if m is None:
            return False, "no answer within %d s" % timeout
        return m.group(1) == "ok", m.group(2)

    def tail(self, n):
        with self.cond:
            return self.lines[-n:]


class Listener:
    """The host end of the TCP check: takes one connection, reads the
    guest's pattern to EOF checking every byte, answers with as many bytes
    of the next pattern, closes."""

    def __init__(self, size, seed):
        self.size, self.seed = size, seed
        self.result = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(600)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(300)
            want = pattern(0, self.size, self.seed)
            got = bytearray()
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                got += data
            good = bytes(got) == want
            if good:
                conn.sendall(pattern(0, self.size, self.seed + 1))
            conn.close()
            bad_at = None if good else next(
                (i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            self.result = (good, "received %d of %d bytes%s" % (
                len(got), self.size, "" if good else ", first difference at byte %d" % bad_at))
        except OSError as e:
            self.result = (False, "listener: %s" % e)


def ctl(hvkit, sock, *args, timeout=120):
    """hvkit ctl --json SOCK ARGS...: (exit status, parsed stdout or text, stderr)."""
    try:
        p = subprocess.run([hvkit, "ctl", "--json", sock] + list(args), capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, None, "hvkit ctl did not return in %d s" % timeout
    try:
        out = json.loads(p.stdout) if p.stdout.strip() else None
    except ValueError:
        out = p.stdout
    return p.returncode, out, p.stderr.strip()


def kvm_usable():
    path = os.environ.get("HVKIT_KVM_DEVICE", "/dev/kvm")
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CLOEXEC))
        return True, path
    except OSError as e:
        return False, "%s: %s" % (path, e.strerror)


def write_initramfs(path, agent):
    """A newc cpio: /init (the agent), /sbin/poweroff -> /init, the
    directories it mounts on and /dev/console."""
    entries = [("dev", stat.S_IFDIR | 0o755, b"", 0), ("proc", stat.S_IFDIR | 0o755, b"", 0),
               ("sys", stat.S_IFDIR | 0o755, b"", 0), ("tmp", stat.S_IFDIR | 0o1777, b"", 0),
               ("sbin", stat.S_IFDIR | 0o755, b"", 0),
               ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
               ("init", stat.S_IFREG | 0o755, open(agent, "rb").read(), 0),
               ("sbin/poweroff", stat.S_IFLNK | 0o777, b"/init", 0)]
    out = bytearray()
    for ino, (name, mode, data, rdev) in enumerate(entries + [("TRAILER!!!", 0, b"", 0)], 1):
        major, minor = rdev if rdev else (0, 0)
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(name) + 1, 0)
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    with open(path, "wb") as f:
        f.write(out)


def crc32(data):
    return "%08x" % zlib.crc32(data)


# ---- the suite ----

class Suite:
    def __init__(self, args, tap):
        self.args, self.tap = args, tap
        self.work = args.work
        self.sock = os.path.join(self.work, "control.sock")
        self.serial = os.path.join(self.work, "serial.sock")
        self.proc = None
        self.console = None
        self.dev = {}  # agent's names: rw, ro (disks), user, loop (NICs)

    def check(self, ok, name, detail=""):
        return self.tap.check(ok, name, detail)

    def ctl(self, *args, timeout=120):
        return ctl(self.args.hvkit, self.sock, *args, timeout=timeout)

    # -- set-up --

    def build_kernel(self):
        start = time.monotonic()
        p = subprocess.run([os.path.join(HERE, "build-kernel.sh"), self.args.cache],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        took = time.monotonic() - start
        if p.returncode:
            self.check(False, "the kernel builds", p.stderr.strip()[-2000:])
            return None
        self.check(True, "the kernel builds (Debian linux-source-6.1, patches/, kernel.config)",
                   "kernel ready after %.0f s: %s" % (took, p.stdout.strip()))
        self.kernel_build_s = took
        return p.stdout.strip()

    def make_images(self):
        self.rw = os.path.join(self.work, "rw.img")
        self.ro = os.path.join(self.work, "ro.img")
        with open(self.rw, "wb") as f:
            f.truncate(RW_DISK["size"])
        with open(self.ro, "wb") as f:
            f.write(pattern(0, RO_DISK["size"], RO_DISK["seed"]))
        self.hot = os.path.join(self.work, "hot.img")
        with open(self.hot, "wb") as f:
            f.write(pattern(0, HOT_DISK["size"], HOT_DISK["seed"]))
        self.copy_src = os.path.join(self.work, "copy-me")
        with open(self.copy_src, "wb") as f:
            f.write(pattern(0, 200 * 1024 + 123, 31))

    def start(self, kernel, tag="", extra=()):
        """hvkit run of the suite's machine (with extra arguments); its
        log and console log carry tag in their names."""
        initrd = os.path.join(self.work, "initramfs.cpio")
        write_initramfs(initrd, self.args.agent)
        for path in (self.sock, self.serial):
            if os.path.exists(path):
                os.unlink(path)
        cmd = [self.args.hvkit, "run", "--partition", "kvm", "--cpus", str(CPUS),
               "--memory", "192M", "--kernel", kernel, "--initrd", initrd,
               "--cmdline", CMDLINE,
               "--disk", "path=%s,serial=%s" % (self.rw, RW_DISK["serial"]),
               "--disk", "path=%s,readonly=on,serial=%s" % (self.ro, RO_DISK["serial"]),
               *extra,
               "--net", "user,mac=" + USER_MAC, "--net", "loopback,mac=" + LOOP_MAC,
               "--vm-id", VM_ID, "--control", self.sock, "--serial", "unix:" + self.serial]
        self.tap.note("hvkit: " + " ".join(cmd))
        self.hvkit_log = open(os.path.join(self.work, "hvkit%s.log" % tag), "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self.hvkit_log, stderr=subprocess.STDOUT)
        self.console = Console(self.serial, os.path.join(self.work, "serial%s.log" % tag),
                               time.monotonic() + 60)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # -- checks --

    def boot(self):
        m = self.console.wait(r"^hvt: ready$", 600)
        took = time.monotonic() - self.started
        if not self.check(m is not None, "Linux boots to the agent",
                          "boot to /init's report: %.0f s" % took):
            return False
        self.boot_s = took
        c = self.console
        self.check(bool(c.matching(r"hv_vmbus: Vmbus version:5\.3")), "VMBus 5.3 negotiated")
        unknown = c.matching(r"hv_vmbus: Unknown GUID: (\S+)")
        self.check(not unknown, "no device Linux has no driver for is offered",
                   ", ".join(m.group(1) for m in unknown))
        for svc, want in IC_VERSIONS.items():
            if svc == "KVP":
                continue  # negotiated once the daemon runs (kvp())
            got = [m.group(1) for m in c.matching(r"hv_utils: %s IC version (\S+)" % svc)]
            self.check(got == [want], "hv_utils: %s IC version %s" % (svc, want),
                       "saw %s" % (got or "nothing"))
        return True

    def inventory(self):
        c = self.console
        found = {}
        instances = {}
        problems = []
        for m in c.matching(r"^hvt: vmbus class=\{?([0-9a-f-]+)\}? instance=\{?([0-9a-f-]+)\}? "
                            r"relid=(\d+) driver=(\S+) channels=(\d+)$"):
            cls, driver = CLASSES.get(m.group(1), (m.group(1), None))
            found[cls] = found.get(cls, 0) + 1
            instances.setdefault(cls, []).append(m.group(2))
            if driver != m.group(4):
                problems.append("%s bound to %s, not %s" % (cls, m.group(4), driver))
            if cls in ("scsi", "nic") and int(m.group(5)) != CPUS:
                problems.append("%s has %s channels, not one per CPU (%d)" %
                                (cls, m.group(5), CPUS))
        self.check(found == EXPECTED_DEVICES and not problems,
                   "VMBus devices: exactly the configured ones, each bound to its driver, "
                   "storage and network with a channel per CPU",
                   "found %s; %s" % (found, "; ".join(problems) or "no binding problems"))
        got = {cls: sorted(instances.get(cls, [])) for cls in EXPECTED_INSTANCES}
        self.check(got == EXPECTED_INSTANCES,
                   "--vm-id: the controller's and NICs' instance GUIDs are the VM's",
                   "found %s, want %s" % (got, EXPECTED_INSTANCES))

        disks = {m.group(1): m for m in c.matching(
            r"^hvt: disk name=(\S+) sectors=(\d+) ro=(\d) scsi=(\S+) model=\S+ serial=(\S+)$")}
        want = {RW_DISK["serial"]: ("0:0:0:0", RW_DISK["size"], "0"),
                RO_DISK["serial"]: ("0:0:0:1", RO_DISK["size"], "1")}
        got = {m.group(5): (m.group(4), int(m.group(2)) * 512, m.group(3))
               for m in disks.values()}
        self.check(got == want, "disks: exactly the two configured (SCSI address, size, "
                   "read-only, serial), no phantoms", "found %s" % got)
        for m in disks.values():
            self.dev["rw" if m.group(5) == RW_DISK["serial"] else "ro"] = "/dev/" + m.group(1)

        nics = {m.group(2): m for m in c.matching(
            r"^hvt: nic name=(\S+) mac=(\S+) mtu=(\d+) driver=(\S+) device=\S+ ipv4=(\S+)$")}
        got = {mac: (m.group(4), m.group(3)) for mac, m in nics.items()}
        self.check(got == {USER_MAC: ("hv_netvsc", "1500"), LOOP_MAC: ("hv_netvsc", "1500")},
                   "NICs: exactly the two configured (MAC, MTU 1500, hv_netvsc)",
                   "found %s" % got)
        user = nics.get(USER_MAC)
        self.check(user is not None and user.group(5) == GUEST_IP,
                   "DHCP through libslirp gave the user NIC %s" % GUEST_IP,
                   "ipv4=%s" % (user.group(5) if user else "no NIC"))
        if user:
            self.dev["user"] = user.group(1)
        if LOOP_MAC in nics:
            self.dev["loop"] = nics[LOOP_MAC].group(1)

    def agent(self, text, name, timeout=180):
        ok, detail = self.console.command(text, timeout)
        return self.check(ok, name, detail)

    def storage(self):
        rw, ro = self.dev.get("rw"), self.dev.get("ro")
        if not rw or not ro:
            self.check(False, "storage checks", "the disks were not found")
            return
        # One write per CPU: storvsc sends each on that CPU's channel.
        self.writes = [(4 * MIB, MIB, 11, 0), (8 * MIB, MIB, 12, 1)]
        for off, length, seed, cpu in self.writes:
            self.agent("disk-test %s %d %d %d %d" % (rw, off, length, seed, cpu),
                       "disk: 1 MiB written from CPU %d, flushed, read back intact" % cpu)
        want = crc32(pattern(0, MIB, RO_DISK["seed"]))
        ok, detail = self.console.command("crc %s 0 %d" % (ro, MIB), 120)
        self.check(ok and detail.endswith("crc32=" + want),
                   "read-only disk reads the image's bytes", "%s (want crc32=%s)" % (detail, want))
        self.agent("disk-refuses-write " + ro, "read-only disk refuses a write")

    def network(self):
        if "user" in self.dev:
            size = 2 * MIB
            listener = Listener(size, 21)
            ok, detail = self.console.command(
                "tcp %s %d %d 21" % (HOST_IP, listener.port, size), 600)
            listener.thread.join(60)
            host_ok, host_detail = listener.result or (False, "the listener saw nothing")
            self.check(ok and host_ok, "TCP through libslirp: 2 MiB each way, every byte "
                       "checked on both ends", "guest: %s; host: %s" % (detail, host_detail))
        else:
            self.check(False, "TCP through libslirp", "no user NIC")
        if "loop" in self.dev:
            self.agent("frames %s 64" % self.dev["loop"],
                       "loopback NIC: 64 frames of 60-1514 bytes come back whole")
        else:
            self.check(False, "loopback NIC frames", "no loopback NIC")

    def hotplug(self):
        """Devices added and taken away while Linux runs: storvsc's rescan on
        the host's ENUMERATE_BUS, the removal through INVALID_LUN, netvsc's
        hot-add, link state and rescind."""
        rc, out, err = self.ctl("disk-add", "path=" + self.hot)
        lun = out.get("lun") if isinstance(out, dict) else None
        self.check(rc == 0 and lun == 2, "hot-add disk: the host puts it at LUN 2",
                   "exit %d: %s %s" % (rc, out, err))
        scsi = "/sys/bus/scsi/devices/0:0:0:2/block"
        ok = self.agent("wait %s present 120" % scsi, "hot-add disk: Linux finds it (rescan)")
        if ok:
            mark = len(self.console.lines)
            self.console.command("report", 60)
            disks = self.console.matching(r"^hvt: disk name=(\S+) sectors=(\d+) ro=\d "
                                          r"scsi=0:0:0:2 model=\S+ serial=(\S+)$", mark)
            got = [(int(m.group(2)) * 512, m.group(3)) for m in disks]
            self.check(got == [(HOT_DISK["size"], HOT_DISK["serial"])],
                       "hot-added disk: its size and serial", "found %s" % got)
            if disks:
                want = crc32(pattern(0, MIB, HOT_DISK["seed"]))
                ok, detail = self.console.command(
                    "crc /dev/%s 0 %d" % (disks[0].group(1), MIB), 120)
                self.check(ok and detail.endswith("crc32=" + want),
                           "hot-added disk reads the image's bytes", detail)
        rc, out, err = self.ctl("disk-remove", "2")
        self.check(rc == 0, "hot-remove disk: the host takes it away", "exit %d %s" % (rc, err))
        self.agent("wait /sys/bus/scsi/devices/0:0:0:2 absent 120",
                   "hot-remove disk: Linux drops it, and only it")
        self.agent("wait /sys/bus/scsi/devices/0:0:0:0 present 1",
                   "hot-remove disk: LUN 0 is still there")

        loop = self.dev.get("loop")
        if loop:
            carrier = "/sys/class/net/%s/carrier" % loop
            for link, want in (("down", "0"), ("up", "1")):
                rc, out, err = self.ctl("net-link", "1", link)
                ok = False
                deadline = time.monotonic() + 60
                detail = ""
                while rc == 0 and not ok and time.monotonic() < deadline:
                    ok, detail = self.console.command("cat " + carrier, 30)
                    ok = ok and detail == want
                self.check(rc == 0 and ok, "NIC link %s: Linux sees carrier %s" % (link, want),
                           "ctl exit %d %s; carrier %s" % (rc, err, detail))
        rc, out, err = self.ctl("net-add", "loopback,mac=" + HOT_MAC)
        nic = out.get("nic") if isinstance(out, dict) else None
        self.check(rc == 0 and nic == 2, "hot-add NIC: the host adds NIC 2",
                   "exit %d: %s %s" % (rc, out, err))
        mark = len(self.console.lines)
        ok, detail = self.console.command("wait /sys/class/net/eth2 present 120", 130)
        self.console.command("report", 60)
        nics = self.console.matching(r"^hvt: nic name=eth2 mac=(\S+) mtu=\d+ driver=(\S+)", mark)
        self.check(ok and [(m.group(1), m.group(2)) for m in nics] == [(HOT_MAC, "hv_netvsc")],
                   "hot-add NIC: Linux binds it (hv_netvsc, its MAC)",
                   "%s; %s" % (detail, [m.group(0) for m in nics]))
        if ok:
            self.agent("frames eth2 16", "hot-added NIC: frames come back whole")
        rc, out, err = self.ctl("net-remove", "2")
        self.check(rc == 0, "hot-remove NIC: the host rescinds it", "exit %d %s" % (rc, err))
        self.agent("wait /sys/class/net/eth2 absent 120", "hot-remove NIC: Linux lets it go")

    def services(self):
        """The integration services hvkit ctl reaches, through Linux's hv_utils."""
        rc, st, err = self.ctl("status")
        services = (st or {}).get("services", {}) if isinstance(st, dict) else {}
        self.check(services.get("heartbeat") == "alive", "heartbeat: alive",
                   "services: %s %s" % (services, err))
        # KVP before its daemon runs: Linux leaves the negotiation for it.
        self.check(services.get("kvp") == "negotiating", "KVP waits for the guest's daemon",
                   "services: %s" % services)
        rc, out, err = self.ctl("kvp", "get", "suite-key")
        self.check(rc == 1 and "hv_kvp_daemon" in err,
                   "hvkit ctl kvp before the daemon: a clear error, not a hang",
                   "exit %d: %s" % (rc, err))

        mark = len(self.console.lines)
        self.agent("daemons", "the agent's KVP, VSS and file-copy daemons start")
        m = self.console.wait(r"hv_utils: KVP IC version (\S+)", 120, mark)
        self.check(m is not None and m.group(1) == IC_VERSIONS["KVP"],
                   "hv_utils: KVP IC version %s once its daemon runs" % IC_VERSIONS["KVP"],
                   "saw %s" % (m.group(1) if m else "nothing"))
        self.kvp()
        self.vss()
        self.fcopy()
        self.timesync()

    def kvp(self):
        value = "from the host, with spaces and ünïcödé"
        rc, out, err = self.ctl("kvp", "set", "suite-key", value)
        m = self.console.wait(r"^hvt: kvp set pool=0 key=suite-key value=(.*)$", 60)
        self.check(rc == 0 and m is not None and m.group(1) == value,
                   "KVP set reaches the guest's pool 0 intact",
                   "ctl exit %d %s; guest saw %r" % (rc, err, m.group(1) if m else None))
        rc, out, err = self.ctl("kvp", "get", "suite-key")
        self.check(rc == 0 and isinstance(out, dict) and out.get("value") == value,
                   "KVP get returns the guest's value", "exit %d: %s %s" % (rc, out, err))
        rc, out, err = self.ctl("kvp", "list", "--pool", "2")
        items = {i["key"]: i["value"] for i in out.get("items", [])} if isinstance(out, dict) else {}
        self.check(rc == 0 and items.get("OSName") == "Linux" and
                   items.get("OSVersion", "").startswith("6.1."),
                   "KVP list of the auto pool: the guest's intrinsic data",
                   "exit %d: %s %s" % (rc, items, err))
        rc, out, err = self.ctl("kvp", "delete", "suite-key")
        rc2, out2, err2 = self.ctl("kvp", "get", "suite-key")
        self.check(rc == 0 and rc2 == 1 and "not-found" in err2,
                   "KVP delete, then get: not found", "delete exit %d %s; get exit %d %s" %
                   (rc, err, rc2, err2))

    def vss(self):
        for op in ("freeze", "thaw"):
            mark = len(self.console.lines)
            rc, out, err = self.ctl("vss", op)
            m = self.console.wait(r"^hvt: vss %s$" % op, 60, mark)
            self.check(rc == 0 and m is not None, "VSS %s reaches the guest's daemon" % op,
                       "ctl exit %d %s" % (rc, err))

    def fcopy(self):
        data = open(self.copy_src, "rb").read()
        rc, out, err = self.ctl("copy", self.copy_src, "/tmp/in/copied", timeout=300)
        self.check(rc == 0 and isinstance(out, dict) and out.get("bytes") == len(data),
                   "file copy: the guest's daemon takes %d bytes" % len(data),
                   "exit %d: %s %s" % (rc, out, err))
        ok, detail = self.console.command("crc /tmp/in/copied", 60)
        want = "bytes=%d crc32=%s" % (len(data), crc32(data))
        self.check(ok and detail == want, "file copy: the file in the guest is the host's",
                   "%s (want %s)" % (detail, want))
        rc, out, err = self.ctl("copy", self.copy_src, "/tmp/in/copied", timeout=300)
        self.check(rc == 1 and "exists" in err, "file copy over an existing file: refused "
                   "without --overwrite", "exit %d: %s" % (rc, err))

    def timesync(self):
        self.agent("clock set 1000000000", "the guest's clock set back to 2001")
        rc, out, err = self.ctl("timesync")
        self.check(rc == 0, "hvkit ctl timesync: the guest took the sample",
                   "exit %d %s" % (rc, err))
        host = time.time()
        ok, detail = self.console.command("clock wait-past %d 60" % (host - 3600), 90)
        m = re.search(r"realtime=(\d+)\.(\d+)", detail)
        guest = float(m.group(1) + "." + m.group(2)) if m else 0
        # Seconds, not a timing: the clock is right or it is 25 years off.
        self.check(ok and abs(guest - time.time()) < 10,
                   "time sync (SYNC, reference-time corrected) set the guest's clock to "
                   "the host's", "%s; host %.3f" % (detail, time.time()))

    def shutdown(self):
        rc, out, err = self.ctl("shutdown")
        self.check(rc == 0, "hvkit ctl shutdown: the guest accepted", "exit %d %s" % (rc, err))
        try:
            status = self.proc.wait(180)
        except subprocess.TimeoutExpired:
            status = None
        m = self.console.wait(r"^hvt: poweroff", 5)
        self.check(status == 0 and m is not None,
                   "Linux powered off (ACPI S5) and hvkit exited 0",
                   "hvkit exit status %s" % status)
        self.total_s = time.monotonic() - self.started

    def images(self):
        with open(self.rw, "rb") as f:
            for off, length, seed, cpu in self.writes:
                f.seek(off)
                self.check(f.read(length) == pattern(off, length, seed),
                           "the image holds what Linux wrote from CPU %d" % cpu)
        with open(self.ro, "rb") as f:
            self.check(f.read() == pattern(0, RO_DISK["size"], RO_DISK["seed"]),
                       "the read-only image is unchanged")
        trouble = self.console.matching(r"WARNING:|BUG:|Oops|Call Trace|Kernel panic|"
                                        r"general protection")
        self.check(not trouble, "the kernel logged no warning, oops or panic",
                   "; ".join(m.string for m in trouble[:5]))
        log = open(self.hvkit_log.name).read()
        m = re.search(r"(\d+) bad guest messages", log)
        self.check(m is not None and m.group(1) == "0", "hvkit saw no bad guest message",
                   m.group(0) if m else "no host report")

    def hibernation(self, kernel):
        """hibernation.rst with Linux's own drivers: Linux hibernates to a
        swap disk (its VMBus suspended and resumed once on the way, to
        write the image), hvkit ends with the hibernated status; a new
        hvkit process with the same configuration and --vm-id boots a
        fresh kernel, which restores the image: the old kernel carries on,
        its devices matched to the re-offers by instance GUID and
        reopened, its sub-channels made again."""
        swap = os.path.join(self.work, "swap.img")
        with open(swap, "wb") as f:
            f.truncate(SWAP_DISK["size"])
        extra = ("--disk", "path=%s,serial=%s" % (swap, SWAP_DISK["serial"]))
        self.start(kernel, "-hibernate", extra)
        if not self.check(self.console.wait(r"^hvt: ready$", 600) is not None,
                          "hibernation: Linux boots with a swap disk"):
            return
        dev = [m.group(1) for m in self.console.matching(
            r"^hvt: disk name=(\S+) .* serial=%s$" % SWAP_DISK["serial"])]
        if not self.agent("swap /dev/%s" % (dev[0] if dev else "none"),
                          "hibernation: swap on the swap disk"):
            return
        rw = [m.group(1) for m in self.console.matching(
            r"^hvt: disk name=(\S+) .* serial=%s$" % RW_DISK["serial"])]
        self.dev["rw"] = "/dev/" + rw[0] if rw else "/dev/none"
        self.console.sock.sendall(b"hibernate\n")
        try:
            status = self.proc.wait(600)
        except subprocess.TimeoutExpired:
            status = None
        wrote = self.console.matching(r"PM: hibernation: Wrote (\d+) kbytes in ([\d.]+) seconds")
        self.check(status == 4 and wrote,
                   "hibernation: Linux wrote its image and entered S4; hvkit exited with "
                   "the hibernated status (4)",
                   "exit status %s; %s" % (status, wrote[0].group(0) if wrote else "no image"))
        if status != 4:
            return
        self.start(kernel, "-resume", extra)
        if not self.check(self.console.wait(r"^hvt: ready$", 600) is not None,
                          "hibernation: a fresh kernel boots in a new hvkit process"):
            return
        start = len(self.console.lines)
        self.console.sock.sendall(("resume /dev/%s\n" % dev[0]).encode())
        m = self.console.wait(r"^hvt: end (hibernate|resume) (ok|fail) (.*)$", 600, start)
        self.check(m is not None and m.group(1) == "hibernate" and m.group(2) == "ok",
                   "hibernation: the image restored; the hibernated kernel carries on",
                   m.group(0) if m else "nothing within 600 s")
        if not m or m.group(1) != "hibernate":
            return
        # The drivers ask for sub-channels as they resume; their opens
        # may still be on the way: up to a minute for all of them.
        deadline = time.monotonic() + 60
        while True:
            rc, st, err = self.ctl("status")
            chans = st["vmbus"]["channels"] if rc == 0 and isinstance(st, dict) else []
            opened = [c for c in chans if c["state"] == "open"]
            done = (rc == 0 and len(opened) == len(chans) and
                    sum(1 for c in chans if c["sub_index"]) == 3 * (CPUS - 1))
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # polling hvkit's status, with the deadline above
        self.check(done, "hibernation: every channel open again, sub-channels made anew "
                   "(storvsc and both NICs)", "%d of %d open" % (len(opened), len(chans)))
        self.agent("disk-test %s %d %d %d %d" % (self.dev["rw"], 40 * MIB, 1 * MIB, 77, 1),
                   "hibernation: storvsc moves data after the resume")
        ok, detail = self.console.command("report", 60)
        nic = self.console.matching(r"^hvt: nic name=\S+ mac=%s .* ipv4=(\S+)$" % USER_MAC,
                                    start)
        self.check(ok and nic and nic[-1].group(1) == GUEST_IP,
                   "hibernation: the NIC kept its address", nic[-1].group(0) if nic else detail)
        trouble = self.console.matching(r"WARNING:|BUG:|Oops|Call Trace|Kernel panic")
        self.check(not trouble, "hibernation: the kernel logged no warning, oops or panic",
                   "; ".join(m.string for m in trouble[:5]))
        self.snapshot(kernel, extra)
        rc, out, err = self.ctl("shutdown")
        try:
            status = self.proc.wait(180)
        except subprocess.TimeoutExpired:
            status = None
        self.check(status == 0, "the resumed, then restored Linux powers off; hvkit exits 0",
                   "exit status %s" % status)

    def snapshot(self, kernel, extra):
        """A VM snapshot of the running Linux (docs/lifecycle.md): saved
        with `hvkit ctl snapshot`, its hvkit ended, a new hvkit process
        restores it; the same kernel carries on with every device as it
        was (no new VMBus contact), and its own drivers move data through
        the restored storvsp and netvsp."""
        rc, st, err = self.ctl("status")
        connects = st["vmbus"]["connects"] if rc == 0 and isinstance(st, dict) else None
        snap = os.path.join(self.work, "linux.snap")
        rc, res, err = self.ctl("snapshot", snap, timeout=300)
        saved = rc == 0 and os.path.exists(snap)
        self.check(saved, "snapshot: hvkit ctl snapshot saves the running Linux",
                   "%s %s" % (res if rc == 0 else err, "(%.1f MiB)" % (
                       os.path.getsize(snap) / MIB) if saved else ""))
        if not saved:
            return
        rc, out, err = self.ctl("quit")
        try:
            status = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            status = None
        self.check(status == 0, "snapshot: the saved VM's hvkit ends on quit",
                   "exit status %s" % status)
        self.start(kernel, "-restored", (*extra, "--restore", snap))
        ok, detail = self.console.command("report", 120)
        nic = self.console.matching(r"^hvt: nic name=\S+ mac=%s .* ipv4=(\S+)$" % USER_MAC)
        self.check(ok and nic and nic[-1].group(1) == GUEST_IP,
                   "snapshot: restored in a new hvkit, Linux answers with its NICs as they were",
                   nic[-1].group(0) if nic else detail)
        rc, st, err = self.ctl("status")
        self.check(rc == 0 and isinstance(st, dict) and st["vmbus"]["connects"] == connects and
                   all(c["state"] == "open" for c in st["vmbus"]["channels"]),
                   "snapshot: still connected (no new VMBus contact), every channel open",
                   "connects %s (before %s)" % (
                       st["vmbus"]["connects"] if rc == 0 else err, connects))
        self.agent("disk-test %s %d %d %d %d" % (self.dev["rw"], 48 * MIB, 1 * MIB, 78, 0),
                   "snapshot: storvsc moves data through the restored controller")
        if "loop" in self.dev:
            self.agent("frames %s 64" % self.dev["loop"],
                       "snapshot: 64 frames through the restored loopback NIC")
        size = 1 * MIB
        listener = Listener(size, 23)
        ok, detail = self.console.command("tcp %s %d %d 23" % (HOST_IP, listener.port, size),
                                          600)
        listener.thread.join(60)
        host_ok, host_detail = listener.result or (False, "the listener saw nothing")
        self.check(ok and host_ok, "snapshot: a new TCP connection through libslirp, 1 MiB "
                   "each way", "guest: %s; host: %s" % (detail, host_detail))
        trouble = self.console.matching(r"WARNING:|BUG:|Oops|Call Trace|Kernel panic")
        self.check(not trouble, "snapshot: the restored kernel logged no warning, oops or panic",
                   "; ".join(m.string for m in trouble[:5]))

    def run(self):
        kernel = self.build_kernel()
        if not kernel:
            return
        self.make_images()
        self.start(kernel)
        try:
            if self.boot():
                self.inventory()
                self.storage()
                self.network()
                self.hotplug()
                self.services()
                self.shutdown()
                if self.proc.returncode == 0:
                    self.images()
                    self.hibernation(kernel)
        finally:
            self.stop()
            if self.tap.failed:
                self.tap.note("the serial console's last lines (all in %s/serial.log):" %
                              self.work)
                self.tap.note("\n".join(self.console.tail(60) if self.console else []))
        self.tap.note("figures: kernel build %.0f s, boot to the agent %.0f s, whole run "
                      "%.0f s" % (getattr(self, "kernel_build_s", 0),
                                  getattr(self, "boot_s", 0), getattr(self, "total_s", 0)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hvkit", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--cache", required=True, help="where the kernel is built and kept")
    ap.add_argument("--work", required=True, help="images, sockets and logs of this run")
    args = ap.parse_args()
    # scripts/test runs the suite on the ASan+UBSan build of hvkit.
    args.hvkit = os.environ.get("HVKIT_SUITE_HVKIT") or args.hvkit
    usable, why = kvm_usable()
    if not usable:
        print("1..0 # SKIP no usable KVM (%s)" % why, flush=True)
        return 0
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    tap = Tap()
    Suite(args, tap).run()
    tap.end()
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
