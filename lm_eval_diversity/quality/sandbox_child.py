"""The sandbox's in-child program (standard library only; run as ``python -S -s -P -B -c <this source> CONFIG``).

It is never imported by the package: :mod:`.sandbox` reads this file and passes its text to a fresh interpreter.
CONFIG is a JSON object (built in ``sandbox._run_one``).  It stays one module on purpose: the child gets this one
source text and may import nothing from the package, so its steps cannot live in sibling modules.  The program:

1. dies with its parent (``PR_SET_PDEATHSIG``); in the namespace modes makes new namespaces and forks into the new
   PID namespace (the forking process reports the judge's PID to the grader and waits), builds the isolated
   file-system view (read-only binds of the system and the Python installation, one size-limited tmpfs for every
   writable place) and drops privileges;
2. marks itself non-dumpable, so a process of the same user cannot read or write its memory or open its fds;
3. forks the **candidate** process, which installs a system-call filter (no other process reachable, no process
   created, no IPC, no network), runs the model's code under rlimits and an audit hook and then answers calls over a
   pipe pair; the parent, the **judge**, runs the trusted prelude and the benchmark's tests in its own namespace, with
   proxies for the entry points only.

Only plain data crosses the pipes (JSON with tags for tuples, sets, bytes, ...; never pickle); anything else stays in
the candidate as an opaque handle.  The judge alone writes the verdict, on a socket the candidate closed before
running anything, and the grader accepts it only from the judge's PID, so the candidate has nothing to forge.
"""

import builtins
import json
import os
import sys
import types

MAX_MESSAGE = 64 * 2**20
MAX_DEPTH = 200
MAX_NAME_BYTES = 2**20  # a solution's global larger than this (encoded) is passed to the tests as a handle


class ChannelClosed(BaseException):  # not an Exception: tests' ``except Exception`` must not swallow it
    pass


class ChannelError(Exception):
    pass


class Unencodable(Exception):
    pass


def send(fd, obj):
    data = json.dumps(obj, ensure_ascii=True, allow_nan=True, separators=(",", ":")).encode("ascii")
    if len(data) > MAX_MESSAGE:
        raise Unencodable(f"message of {len(data)} bytes exceeds the channel limit of {MAX_MESSAGE}")
    data = len(data).to_bytes(8, "big") + data
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd, n):
    chunks = []
    while n:
        b = os.read(fd, min(n, 1 << 20))
        if not b:
            raise ChannelClosed()
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def recv(fd):
    n = int.from_bytes(_read_exact(fd, 8), "big")
    if n > MAX_MESSAGE:
        raise ChannelError(f"message of {n} bytes exceeds the channel limit")
    try:
        return json.loads(_read_exact(fd, n))
    except (ValueError, RecursionError) as exc:
        raise ChannelError(f"malformed message: {exc}") from None


# ------------------------------------------------------------------------------------------------ plain-data codec
def encode(x, handle=None, depth=0):
    """Plain data -> JSON-able value.  ``handle(obj)`` (candidate side) turns anything else into a handle id."""
    if depth > MAX_DEPTH:
        raise Unencodable(f"nesting deeper than {MAX_DEPTH}")
    t = type(x)
    if x is None or t is bool or t is int or t is str or t is float:
        if t is int and abs(x).bit_length() > 14000:  # below Python's 4300-digit str limit
            raise Unencodable("integer too large")
        return x
    d = depth + 1
    if t is list:
        return [encode(v, handle, d) for v in x]
    if t is tuple:
        return {"t": [encode(v, handle, d) for v in x]}
    if t is dict:
        return {"d": [[encode(k, handle, d), encode(v, handle, d)] for k, v in x.items()]}
    if t is set:
        return {"s": [encode(v, handle, d) for v in x]}
    if t is frozenset:
        return {"f": [encode(v, handle, d) for v in x]}
    if t is bytes:
        return {"b": x.hex()}
    if t is bytearray:
        return {"y": x.hex()}
    if t is complex:
        return {"c": [x.real, x.imag]}
    if handle is None:
        hid = getattr(x, "_lmeds_id", None) if t.__name__ == "Remote" else None
        if type(hid) is int:
            return {"h": [hid, ""]}
        raise Unencodable(f"{t.__name__} is not plain data")
    # Candidate side: values of subclasses / numpy scalars and arrays are converted (the result is plain data,
    # whatever the conversion does); modules travel by name; anything else stays here behind a handle.
    if isinstance(x, types.ModuleType):
        name = getattr(x, "__name__", None)
        if type(name) is str:
            return {"m": name}
    for base in (bool, int, float, str, bytes, tuple, list, dict, set, frozenset, complex):
        if isinstance(x, base):
            return encode(base(x), handle, d)
    if (getattr(t, "__module__", "") or "").startswith("numpy") and hasattr(x, "tolist"):
        return encode(x.tolist(), handle, d)
    return {"h": [handle(x), t.__name__ if type(t.__name__) is str else "?"]}


def decode(v, remote, depth=0):
    """The inverse of :func:`encode`; ``remote(hid, type_name)`` maps a handle; ``{"m": name}`` goes to ``remote``
    too (with type name ``"module"``)."""
    if depth > MAX_DEPTH + 2:
        raise ChannelError("nesting too deep")
    t = type(v)
    if v is None or t is bool or t is int or t is str or t is float:
        return v
    d = depth + 1
    if t is list:
        return [decode(x, remote, d) for x in v]
    if t is dict and len(v) == 1:
        ((tag, a),) = v.items()
        if tag == "t" and type(a) is list:
            return tuple(decode(x, remote, d) for x in a)
        if tag == "d" and type(a) is list:
            out = {}
            for pair in a:
                if type(pair) is not list or len(pair) != 2:
                    raise ChannelError("malformed dict")
                out[decode(pair[0], remote, d)] = decode(pair[1], remote, d)
            return out
        if tag == "s" and type(a) is list:
            return {decode(x, remote, d) for x in a}
        if tag == "f" and type(a) is list:
            return frozenset(decode(x, remote, d) for x in a)
        if tag in ("b", "y") and type(a) is str:
            return bytes.fromhex(a) if tag == "b" else bytearray.fromhex(a)
        if tag == "c" and type(a) is list and len(a) == 2 and all(type(p) in (int, float) for p in a):
            return complex(a[0], a[1])
        if tag == "h" and type(a) is list and len(a) == 2 and type(a[0]) is int and type(a[1]) is str:
            return remote(a[0], a[1])
        if tag == "m" and type(a) is str:
            return remote(a, "module")
    raise ChannelError("malformed value")


# ------------------------------------------------------------------------------------------------ OS set-up
def _libc():
    import ctypes

    return ctypes, ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS = 1, 4, 22, 38


def _prctl(option, arg, what):
    _, libc = _libc()
    _check(libc.prctl(option, arg, 0, 0, 0), what)


def set_non_dumpable():
    _prctl(PR_SET_DUMPABLE, 0, "prctl(PR_SET_DUMPABLE)")


def no_new_privs():
    _prctl(PR_SET_NO_NEW_PRIVS, 1, "prctl(PR_SET_NO_NEW_PRIVS)")


def die_with_parent(parent_alive):
    """SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``); exit now if the parent is already gone
    (``parent_alive()`` false after the flag is set), so that nothing of a sandbox outlives the process that runs it."""
    import signal

    _prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), "prctl(PR_SET_PDEATHSIG)")
    if not parent_alive():
        os._exit(1)


CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = (
    0x20000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000,
)  # fmt: skip


def enter_namespaces(cfg, status_fd):
    """New mount, network, PID, IPC and UTS namespaces (and, in ``userns`` mode, a user namespace in which this
    process is root, mapped to its own uid).  A PID namespace holds only the children created after it, so this
    process forks: the child, PID 1 of the new namespace, returns and becomes the judge; this process tells the
    grader the judge's PID (the grader accepts a verdict only from that process), waits, and exits with its status.
    The child dies with this process (``PR_SET_PDEATHSIG``), and every process of the namespace dies with the child.
    Returns, in the child, a test of whether this process is still alive."""
    import select

    ctypes, libc = _libc()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    uid, gid = os.getuid(), os.getgid()
    if cfg["isolation"] == "userns":
        flags |= CLONE_NEWUSER
    _check(libc.unshare(flags), "unshare")
    if cfg["isolation"] == "userns":
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    go_r, go_w = os.pipe()  # one byte once the grader knows the judge's PID; then EOF once this process is gone
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        die_with_parent(lambda: os.read(go_r, 1) == b"1")
        libc.sethostname(b"sandbox", 7)
        return lambda: not select.select([go_r], [], [], 0)[0]
    os.close(go_r)
    os.write(status_fd, json.dumps({"judge_pid": pid}).encode())
    os.close(status_fd)
    os.write(go_w, b"1")
    fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(fd, 0)  # the judge alone reads the job
    os.close(fd)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18,
)  # fmt: skip
MNT_DETACH = 2
WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def build_root(cfg):
    """Inside the new namespaces: make ``root`` a tmpfs holding read-only binds of the system directories and the
    Python installation, a few device nodes, a fresh /proc where allowed, and the writable places (the scratch
    directory, /tmp, /var/tmp, /dev/shm), which are all one size-limited tmpfs, so that what a program writes is
    capped in total and vanishes with the namespace; then chroot into it."""
    ctypes, libc = _libc()
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

    def mount(src, tgt, fstype, flags, data=None):
        enc = [s.encode() if s is not None else None for s in (src, tgt, fstype, data)]
        _check(libc.mount(enc[0], enc[1], enc[2], flags, enc[3]), f"mount {src} on {tgt}")

    root, scratch = cfg["root"], cfg["scratch"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")
    for path in cfg["binds"]:
        target = root + path
        if os.path.islink(path):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.lexists(target):
                os.symlink(os.readlink(path), target)
            continue
        if not os.path.isdir(path):
            continue
        os.makedirs(target, exist_ok=True)
        mount(path, target, None, MS_BIND | MS_REC)
        keep = os.statvfs(path).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048 | (1 << 21))
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep)
    os.makedirs(root + "/dev", exist_ok=True)
    for name in ("null", "zero", "full", "random", "urandom"):
        node = root + "/dev/" + name
        open(node, "w").close()
        mount("/dev/" + name, node, None, MS_BIND)
    os.symlink("/proc/self/fd", root + "/dev/fd")
    writable = root + "/.writable"
    os.mkdir(writable)
    mount("tmpfs", writable, "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(cfg['scratch_mb'])}m,mode=0755")
    for i, d in enumerate((*WRITABLE_DIRS, scratch)):
        part = f"{writable}/{i}"
        os.mkdir(part)
        if d == scratch:
            os.chmod(part, 0o700)
            if cfg["isolation"] == "namespaces":
                os.chown(part, cfg["uid"], cfg["uid"])
        else:
            os.chmod(part, 0o1777)
        os.makedirs(root + d, exist_ok=True)
        mount(part, root + d, None, MS_BIND)
    _check(libc.umount2(writable.encode(), MNT_DETACH), "umount " + writable)
    os.rmdir(writable)
    os.makedirs(root + "/proc", exist_ok=True)
    try:  # a fresh /proc shows only this PID namespace; refused in some unprivileged set-ups: then no /proc at all
        mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError:
        pass
    mount(None, root, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(root)
    os.chroot(".")
    os.chdir(scratch)


def drop_to_nobody(uid):
    """Root: become ``uid`` (no groups) for good."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def drop_capabilities():
    """In a user namespace where we are uid 0: lock root out of capabilities and drop them all."""
    ctypes, libc = _libc()
    # SECBIT_NOROOT | _LOCKED | SECBIT_NO_SETUID_FIXUP | _LOCKED | SECBIT_KEEP_CAPS_LOCKED
    _check(libc.prctl(28, 0x2F, 0, 0, 0), "prctl(PR_SET_SECUREBITS)")
    cap = 0
    while libc.prctl(24, cap, 0, 0, 0) == 0:  # PR_CAPBSET_DROP until EINVAL (past the last capability)
        cap += 1
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(libc.capset(header, data), "capset")


# --- the candidate's system-call filter (seccomp), installed in every mode ---------------------------------------
# The candidate may not act on any other process: no signals but to itself, no tracing or memory access of another
# process, no prlimit / renice / scheduling / I/O-priority changes but its own, no pidfds; it may not create or
# execute processes (threads only), use System V IPC or POSIX message queues, open network sockets, make new
# namespaces, or allocate disk space without writing it (fallocate: gigabytes between two checks of its scratch size).
# Numbers per architecture (the kernel's syscall tables); a system call of another ABI (x32, i386) is refused.
_SYSCALLS = {
    # name: (x86_64, aarch64); None where the architecture has no such call
    "kill": (62, 129), "tkill": (200, 130), "tgkill": (234, 131), "rt_sigqueueinfo": (129, 138),
    "rt_tgsigqueueinfo": (297, 240), "pidfd_send_signal": (424, 424), "pidfd_open": (434, 434),
    "pidfd_getfd": (438, 438), "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "prlimit64": (302, 261), "setpriority": (141, 140), "sched_setaffinity": (203, 122),
    "sched_setparam": (142, 118), "sched_setscheduler": (144, 119), "sched_setattr": (314, 274),
    "ioprio_set": (251, 30), "kcmp": (312, 272), "process_madvise": (440, 440), "process_mrelease": (448, 448),
    "migrate_pages": (256, 238), "move_pages": (279, 239), "perf_event_open": (298, 241),
    "shmget": (29, 194), "shmat": (30, 196), "shmctl": (31, 195), "shmdt": (67, 197), "semget": (64, 190),
    "semop": (65, 193), "semctl": (66, 191), "semtimedop": (220, 192), "msgget": (68, 186), "msgsnd": (69, 189),
    "msgrcv": (70, 188), "msgctl": (71, 187), "mq_open": (240, 180), "mq_unlink": (241, 181),
    "mq_timedsend": (242, 182), "mq_timedreceive": (243, 183), "mq_notify": (244, 184),
    "mq_getsetattr": (245, 185), "fork": (57, None), "vfork": (58, None), "clone": (56, 220), "clone3": (435, 435),
    "unshare": (272, 97), "setns": (308, 268), "io_uring_setup": (425, 425), "socket": (41, 198),
    "connect": (42, 203), "bind": (49, 200), "listen": (50, 201), "sendto": (44, 206), "sendmsg": (46, 211),
    "sendmmsg": (307, 269), "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "bpf": (321, 280), "userfaultfd": (323, 282), "execve": (59, 221), "execveat": (322, 281),
    "fallocate": (285, 47),
}  # fmt: skip
_ARCHES = {"x86_64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7)}  # machine -> (column above, AUDIT_ARCH_*)
# calls allowed only on the candidate itself: name -> (argument, allowed values; "pid" is the candidate's PID),
# checked on the low 32 bits. A signal to PID 0 would reach the candidate's process group, so only its own PID.
_SELF_ONLY = {
    **{name: ((0, ("pid",)),) for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")},
    **{name: ((0, (0, "pid")),) for name in ("prlimit64", "sched_setaffinity", "sched_setparam",
                                               "sched_setscheduler", "sched_setattr")},
    "setpriority": ((0, (0,)), (1, (0, "pid"))),  # PRIO_PROCESS, self (never a process group or a user)
    "ioprio_set": ((0, (1,)), (1, (0, "pid"))),  # IOPRIO_WHO_PROCESS, self
}  # fmt: skip
EPERM, ENOSYS, AF_UNIX, CLONE_THREAD = 1, 38, 1, 0x10000


def seccomp_filter(machine, pid):
    """The candidate's filter as classic BPF: a list of (code, jt, jf, k); None on an unknown architecture."""
    if machine not in _ARCHES:
        return None
    column, audit_arch = _ARCHES[machine]
    nr = {name: nums[column] for name, nums in _SYSCALLS.items() if nums[column] is not None}
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, JMP|JEQ|K, JMP|JGE|K, JMP|JSET|K, RET|K
    ALLOW, ERRNO = 0x7FFF0000, 0x00050000
    prog, fixups, labels = [], [], {}  # fixups: (index, label) of jumps to a labelled block

    def op(code, k=0, jt=0, jf=0):
        prog.append([code, jt, jf, k])

    def arg(i, high=False):  # struct seccomp_data: nr, arch, ip, then args[6] as u64 (little-endian)
        op(LD, 16 + 8 * i + (4 if high else 0))

    def require(values):  # the loaded argument must be one of values, else EPERM
        for j, v in enumerate(values):
            op(JEQ, pid if v == "pid" else v, len(values) - j, 0)
        op(RET, ERRNO | EPERM)

    op(LD, 4)
    op(JEQ, audit_arch, 1, 0)
    op(RET, ERRNO | EPERM)  # another ABI (i386 through int 0x80)
    op(LD, 0)
    if machine == "x86_64":
        op(JGE, 0x40000000, 0, 1)  # the x32 ABI
        op(RET, ERRNO | EPERM)
    special = {*_SELF_ONLY, "clone", "clone3", "socket", "sendto"}
    for name in special:
        if name in nr:
            fixups.append((len(prog), name))
            op(JEQ, nr[name])
    for name in nr:
        if name not in special:
            fixups.append((len(prog), "deny"))
            op(JEQ, nr[name])
    op(RET, ALLOW)
    labels["deny"] = len(prog)
    op(RET, ERRNO | EPERM)
    labels["clone3"] = len(prog)  # glibc then falls back to clone(2), whose flags the filter can read
    op(RET, ERRNO | ENOSYS)
    for name, checks in _SELF_ONLY.items():
        labels[name] = len(prog)
        for i, values in checks:
            arg(i)
            require(values)
        op(RET, ALLOW)
    labels["clone"] = len(prog)  # threads only
    arg(0)
    op(JSET, CLONE_THREAD, 1, 0)
    op(RET, ERRNO | EPERM)
    op(RET, ALLOW)
    labels["socket"] = len(prog)  # local (AF_UNIX) sockets only: no network
    arg(0)
    require((AF_UNIX,))
    op(RET, ALLOW)
    labels["sendto"] = len(prog)  # no destination address (send() on a connected socket)
    arg(4)
    require((0,))
    arg(4, high=True)
    require((0,))
    op(RET, ALLOW)
    for index, label in fixups:
        offset = labels[label] - index - 1
        if not 0 <= offset < 256:
            raise ValueError("seccomp filter: jump out of range")
        prog[index][1] = offset
    return [tuple(i) for i in prog]


def install_seccomp(pid):
    """Load :func:`seccomp_filter` for this process (needs ``no_new_privs``, set before)."""
    filt = seccomp_filter(os.uname().machine, pid)
    if filt is None:
        raise OSError(f"no system-call filter for the architecture {os.uname().machine}")
    ctypes, libc = _libc()

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]  # fmt: skip

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]

    array = (SockFilter * len(filt))(*[SockFilter(*i) for i in filt])
    prog = SockFprog(len(filt), array)
    _check(libc.prctl(PR_SET_SECCOMP, 2, ctypes.byref(prog), 0, 0), "prctl(PR_SET_SECCOMP)")  # MODE_FILTER


# ------------------------------------------------------------------------------------------------ candidate
def _classify(exc, stage):
    t = type(exc)
    if issubclass(t, SystemExit):
        return "exit-before-tests"
    if issubclass(t, AssertionError):
        return "assertion" if stage == "tests" else "runtime-error"
    if issubclass(t, MemoryError):
        return "memory"
    if issubclass(t, RecursionError):
        return "recursion"
    if issubclass(t, PermissionError):
        return "forbidden"
    if issubclass(t, OSError) and getattr(exc, "errno", None) in (27, 28):
        return "file-size"  # EFBIG (RLIMIT_FSIZE) or ENOSPC (the scratch space is full)
    return "runtime-error"


def _describe(exc):
    try:
        name = type(exc).__name__
        msg = str(exc)
    except BaseException:  # noqa: BLE001 - the candidate's exception may misbehave
        return "exception"
    return (name + ": " + msg)[:200].replace("\n", " ") if type(name) is str and type(msg) is str else "exception"


def candidate(cfg, rfd, wfd):
    import resource

    fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(fd, 0)
    os.close(fd)
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (cfg["max_procs"], cfg["max_procs"]))
    except (ValueError, OSError):
        pass
    job = recv(rfd)
    scratch = cfg["scratch"]
    os.chdir(scratch)
    try:
        code_obj = compile(job["code"], "<solution>", "exec")
    except BaseException:  # noqa: BLE001
        send(wfd, {"fail": "syntax", "detail": ""})
        os._exit(1)
    tests_obj = None
    if job["exit_status"]:
        try:
            tests_obj = compile(job["tests"], "<tests>", "exec")
        except BaseException:  # noqa: BLE001
            send(wfd, {"fail": "tests-syntax", "detail": ""})
            os._exit(1)
    registry = {}

    def handle(obj):
        registry[len(registry) + 1] = obj
        return len(registry)

    def resolve(hid, type_name):
        if type_name == "module":
            raise ChannelError("modules cannot be sent to the candidate")
        return registry[hid]

    if cfg.get("audit_hook", True):
        install_guard(scratch)
    g = {"__name__": "__main__", "__builtins__": builtins, "__file__": "solution.py"}
    _send, _recv, _exit, _encode, _decode = send, recv, os._exit, encode, decode
    try:
        exec(code_obj, g)
        if tests_obj is not None:
            exec(tests_obj, g)
    except BaseException as exc:  # noqa: BLE001
        if job["exit_status"] and isinstance(exc, SystemExit) and exc.code in (None, 0):
            _exit(0)  # exit-status grading: ``exit(0)`` is a pass, as for ``python program.py``
        try:
            _send(wfd, {"fail": _classify(exc, "tests" if tests_obj is not None else "solution"),
                        "detail": _describe(exc)})  # fmt: skip
        except BaseException:  # noqa: BLE001
            pass
        _exit(1)
    if job["exit_status"]:
        _exit(0)
    names = {}
    wanted = set(job.get("names") or ())
    for name, value in list(g.items()):
        if type(name) is str and name in wanted:
            try:
                names[name] = _encode(value, handle)
                if type(names[name]) in (list, dict) and len(json.dumps(names[name])) > MAX_NAME_BYTES:
                    raise Unencodable("large")  # a big table stays in the candidate, behind a handle
            except BaseException:  # noqa: BLE001
                names[name] = {"h": [handle(value), "?"]}
    _send(wfd, {"names": names})
    while True:
        try:
            req = _recv(rfd)
        except BaseException:  # noqa: BLE001 - the judge is gone or the channel is broken: stop
            _exit(0)
        try:
            op, target = req["op"], registry[req["h"]]
            if op == "call":
                args, kwargs = _decode(req["a"], resolve), _decode(req["k"], resolve)
                value = target(*args, **kwargs)
                reply = {"ok": _encode(value, handle), "opaque": not isinstance(target, type)}
            elif op == "get":
                reply = {"ok": _encode(getattr(target, req["n"]), handle), "opaque": False}
            elif op == "set":
                setattr(target, req["n"], _decode(req["v"], resolve))
                reply = {"ok": None, "opaque": False}
            else:
                reply = {"err": ["ValueError"], "msg": "unknown operation"}
        except BaseException as exc:  # noqa: BLE001
            try:
                mro = [c.__name__ for c in type(exc).__mro__ if type(c.__name__) is str]
            except BaseException:  # noqa: BLE001
                mro = []
            reply = {"err": mro, "msg": _describe(exc)}
        try:
            _send(wfd, reply)
        except BaseException as exc:  # noqa: BLE001 - too large to send, or no memory left to encode it
            reply = None
            kind = "Unencodable" if isinstance(exc, Unencodable) else "MemoryError"
            _send(wfd, {"err": [kind], "msg": _describe(exc)})


def install_guard(scratch):
    """Defence in depth inside the candidate: an audit hook refusing process creation, sockets, raw memory access,
    tracing, object walking and writes outside the scratch directory.  The OS isolation does not rely on it."""
    _isinstance, _str, _bytes, _int, _float, _tuple, _len = isinstance, str, bytes, int, float, tuple, len
    _PermissionError = PermissionError
    sep_scratch = os.path.realpath(scratch).rstrip("/") + "/"
    deny_prefixes = ("os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork", "os.forkpty",
                     "subprocess.", "pty.", "socket.", "ctypes.dl", "ctypes.call_function", "ctypes.cdata",
                     "ctypes.addressof", "ctypes.string_at", "ctypes.wstring_at", "sys.settrace",
                     "sys.setprofile", "sys._current_frames", "sys._current_exceptions", "sys.addaudithook",
                     "gc.get_", "os.killpg", "os.setns", "os.unshare", "os.chroot", "mmap.")  # fmt: skip
    deny_imports = frozenset(("_posixsubprocess", "_testcapi", "_testinternalcapi", "_xxsubinterpreters",
                              "_xxinterpchannels", "_testmultiphase", "_testbuffer"))  # fmt: skip
    path_events = frozenset(("os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate",
                             "os.utime", "os.chdir", "os.symlink", "os.link", "os.rename", "os.chflags",
                             "os.lchflags", "os.setxattr", "os.removexattr", "shutil.rmtree", "shutil.chown",
                             "os.mkfifo", "os.mknod"))  # fmt: skip
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    my_pid = os.getpid()

    def inside(path):
        if _isinstance(path, _int):
            return True
        if _isinstance(path, _bytes):
            path = path.decode("utf-8", "surrogateescape")
        elif not _isinstance(path, _str):
            return False
        if not path.startswith("/"):
            path = sep_scratch + path
        parts = []
        for p in path.split("/"):
            if p in ("", "."):
                continue
            if p == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(p)
        return ("/" + "/".join(parts) + "/").startswith(sep_scratch)

    def deny(event):
        raise _PermissionError("sandbox: operation not permitted: " + event)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = _isinstance(flags, _int) and flags & write_flags
            if _isinstance(mode, _str) and any(c in mode for c in "wax+"):
                writing = True
            if writing and not inside(path):
                deny(event)
            return
        if event == "import":
            if args[0] in deny_imports:
                deny(event + " " + args[0])
            return
        if event.startswith(deny_prefixes):
            deny(event)
        if event == "os.kill":
            if args[0] != my_pid:
                deny(event)
        elif event in path_events:
            for a in args[:2]:
                if a is None or _isinstance(a, (_int, _float, _tuple)):
                    continue
                if not inside(a):
                    deny(event)
        elif event == "object.__setattr__" and _len(args) > 1 and args[1] in ("__code__", "__globals__"):
            deny(event)

    sys.addaudithook(hook)


# ------------------------------------------------------------------------------------------------ judge
FLOAT_DIGITS = 12  # floats in a behaviour signature are compared to 12 significant digits


class Behaviour:
    """The judge's record of what it observed through the channel, folded into a sha256 as it goes.

    Events, in order: every request the tests made (call with its arguments, attribute get or set) and its reply
    (the returned value, or the exception's type name), in a canonical form: handles renumbered by first
    appearance (the candidate numbers them in its own order), dict items and set elements sorted, floats to
    FLOAT_DIGITS significant digits. :meth:`digest` adds the verdict (passed, reason). A value the record cannot
    canonicalise marks it broken (no signature); it never disturbs the tests.
    """

    def __init__(self):
        import hashlib

        self.sha = hashlib.sha256()
        self.handles = {}
        self.broken = False
        self.loaded = False  # set by the judge once the solution ran and its names arrived

    def canon(self, v, depth=0):
        t = type(v)
        if v is None or t is bool or t is int or t is str:
            return v
        if t is float:
            return {"F": format(v, "." + str(FLOAT_DIGITS) + "g")}
        if depth > MAX_DEPTH + 2:
            raise ChannelError("nesting too deep")
        d = depth + 1
        if t is list:
            return [self.canon(x, d) for x in v]
        ((tag, a),) = v.items()
        if tag == "h":
            hid = self.handles.setdefault(a[0], len(self.handles) + 1)
            return {"h": [hid, a[1]]}
        if tag == "d":
            items = [[self.canon(k, d), self.canon(x, d)] for k, x in a]
            return {"d": sorted(items, key=_sort_key)}
        if tag in ("s", "f"):
            return {tag: sorted((self.canon(x, d) for x in a), key=_sort_key)}
        if tag in ("t", "c"):
            return {tag: [self.canon(x, d) for x in a]}
        return {tag: a}  # bytes, bytearray, module name: already canonical

    def add(self, event):
        if self.broken:
            return
        try:
            self.sha.update(json.dumps(event, separators=(",", ":")).encode() + b"\n")
        except BaseException:  # noqa: BLE001 - never let the record change the tests' outcome
            self.broken = True

    def request(self, msg):
        try:
            op = msg["op"]
            event = [op, self.canon({"h": [msg["h"], ""]})["h"][0]]
            if op == "call":
                event += [self.canon(msg["a"]), self.canon(msg["k"])]
            else:
                event.append(msg["n"])
                if op == "set":
                    event.append(self.canon(msg["v"]))
        except BaseException:  # noqa: BLE001
            self.broken = True
            return
        self.add(event)

    def reply(self, reply):
        try:
            if "ok" in reply:
                event = ["ok", self.canon(reply["ok"])]
            else:
                names = reply.get("err")
                event = ["err", names[0] if type(names) is list and names and type(names[0]) is str else "?"]
        except BaseException:  # noqa: BLE001
            self.broken = True
            return
        self.add(event)

    def digest(self, passed, reason):
        if self.broken:
            return None
        self.add(["verdict", passed, reason])
        return None if self.broken else self.sha.hexdigest()


def _sort_key(v):
    return json.dumps(v, separators=(",", ":"))


class CandidateExit(Exception):
    """The candidate raised SystemExit / KeyboardInterrupt / GeneratorExit inside a call."""


def judge(cfg, job, pid, wfd, rfd, record=None):
    """Run the tests here, against proxies of the candidate's names; return (passed, reason, detail).

    ``record`` (a :class:`Behaviour`) receives every request and reply of the tests, once the solution loaded."""
    import importlib

    opaque = []
    raised = []

    dead = []

    def request(msg):
        if dead:
            raise ChannelClosed()
        try:
            send(wfd, msg)
            reply = recv(rfd)
        except (ChannelClosed, OSError):
            dead.append(True)  # sticky: tests that swallow the error still fail below
            raise ChannelClosed() from None
        if type(reply) is not dict:
            raise ChannelError("malformed reply")
        if record is not None:
            record.request(msg)
            record.reply(reply)
        if "ok" in reply:
            value = decode(reply["ok"], remote)
            if reply.get("opaque") is True and type(value) is Remote:
                opaque.append(value._lmeds_type)
            return value
        names = reply.get("err")
        msg_text = reply.get("msg") if type(reply.get("msg")) is str else ""
        if type(names) is not list:
            raise ChannelError("malformed reply")
        exc = None
        for n in names:
            if n in ("SystemExit", "KeyboardInterrupt", "GeneratorExit"):
                exc = CandidateExit(msg_text)
                break
            if n == "Unencodable":
                opaque.append("oversized")
                exc = ChannelError(msg_text)
                break
            cls = getattr(builtins, n, None) if type(n) is str else None
            if isinstance(cls, type) and issubclass(cls, BaseException):
                exc = cls(msg_text)
                break
        if exc is None:
            exc = RuntimeError(msg_text)
        raised.append(exc)
        raise exc

    class Remote:
        """An object that lives in the candidate: callable, attribute get/set; equal only to itself."""

        __slots__ = ("_lmeds_id", "_lmeds_type")

        def __init__(self, hid, type_name):
            object.__setattr__(self, "_lmeds_id", hid)
            object.__setattr__(self, "_lmeds_type", type_name)

        def __call__(self, *args, **kwargs):
            return request({"op": "call", "h": self._lmeds_id, "a": encode(list(args)), "k": encode(kwargs)})

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return request({"op": "get", "h": self._lmeds_id, "n": name})

        def __setattr__(self, name, value):
            request({"op": "set", "h": self._lmeds_id, "n": name, "v": encode(value)})

        def __eq__(self, other):
            return type(other) is Remote and other._lmeds_id == self._lmeds_id

        def __hash__(self):
            return hash(("remote", self._lmeds_id))

        def __repr__(self):
            return f"<sandboxed {self._lmeds_type} object>"

    # modules the tests may take from the solution's namespace, imported here by name (never ones with side effects)
    allowed_modules = (set(getattr(sys, "stdlib_module_names", ())) | {"numpy"}) - {
        "antigravity", "this", "webbrowser", "turtle", "turtledemo", "tkinter", "idlelib", "pydoc", "ensurepip",
    }  # fmt: skip

    def remote(hid, type_name):
        if type_name == "module":
            if hid.split(".")[0] not in allowed_modules:
                raise ChannelError(f"module {hid!r} is not available to the tests")
            return importlib.import_module(hid)
        return Remote(hid, type_name)

    try:
        tests_obj = compile(job["tests"], "<tests>", "exec")
        wanted = free_names(job["tests"])
    except BaseException:  # noqa: BLE001
        return False, "tests-syntax", ""
    # The judge owns every name it can: builtins, modules, and what the trusted prelude (HumanEval's prompt: its
    # imports and helpers) defines.  Only the entry points and the names nothing but the solution can define cross.
    g = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(job.get("prelude") or "", "<prelude>", "exec"), g)
    except BaseException as exc:  # noqa: BLE001 - the benchmark's own text: not the solution's failure
        return False, "sandbox-error", f"prelude: {_describe(exc)}"
    entry_points = set(job.get("entry_points") or ())
    for name in entry_points:
        g.pop(name, None)  # the prelude's stub of the entry point (a docstring only) is never used
    wanted = wanted - set(dir(builtins)) - set(g) - entry_points
    for name in sorted(wanted & allowed_modules):  # a module the tests use without importing it: the judge's own
        try:
            g[name] = importlib.import_module(name)
            wanted.discard(name)
        except BaseException:  # noqa: BLE001 - not installed here: the name stays the solution's to define
            pass
    wanted = sorted(entry_points | wanted)
    send(wfd, {"code": job["code"], "tests": "", "exit_status": False, "names": wanted})
    try:
        first = recv(rfd)
    except ChannelClosed:
        return (False, *_child_end(pid))
    except ChannelError as exc:
        return False, "runtime-error", f"channel: {exc}"
    if type(first) is not dict:
        return False, "runtime-error", "channel: malformed reply"
    if "fail" in first:
        return False, str(first.get("fail"))[:40], str(first.get("detail", ""))[:200]
    if type(first.get("names")) is not dict:
        return False, "sandbox-error", "malformed namespace"
    for name in wanted:
        value = first["names"].get(name)
        if value is None:
            continue  # not defined by the solution: the tests fail with NameError if they need it
        if type(value) is dict and type(value.get("m")) is str and value["m"].rpartition(".")[2] != name:
            continue  # a module crosses only under its own name (no ``math = random``): the judge imports it
        try:
            g[name] = decode(value, remote)
        except (ChannelError, ImportError):
            continue  # a name the tests cannot use: they fail with NameError if they need it
    if record is not None:
        import random

        random.seed(0)  # tests that draw random inputs draw the same ones for every program
        record.loaded = True
    try:
        exec(tests_obj, g)
    except ChannelClosed:
        return (False, *_child_end(pid))
    except ChannelError as exc:
        if not opaque:
            return False, "runtime-error", f"channel: {exc}"
        return False, "unencodable-result", f"channel: {exc}"
    except BaseException as exc:  # noqa: BLE001
        from_candidate = any(exc is r for r in raised)
        if isinstance(exc, AssertionError) and opaque and not from_candidate:
            kinds = ", ".join(sorted(set(opaque))) or "a value"
            detail = f"{_describe(exc)}; results of type {kinds} cannot cross the channel as plain data"
            return False, "unencodable-result", detail[:300]
        if isinstance(exc, CandidateExit):
            return False, "exit-before-tests", _describe(exc)
        reason = _classify(exc, "tests")
        return False, reason, _describe(exc)
    if dead:
        return (False, *_child_end(pid))
    return True, "", ""


def free_names(source):
    """The global names the tests read but never bind at module level (in any function or class of theirs too)."""
    import symtable

    top = symtable.symtable(source, "<tests>", "exec")
    bound, out = set(), set()
    for sym in top.get_symbols():
        (bound if sym.is_assigned() or sym.is_imported() or sym.is_namespace() else out).add(sym.get_name())
    stack = list(top.get_children())
    while stack:
        table = stack.pop()
        stack.extend(table.get_children())
        for sym in table.get_symbols():
            if sym.is_global() and sym.is_referenced():
                out.add(sym.get_name())
    return out - bound


def _child_end(pid):
    """Why the candidate went away: (reason, detail)."""
    import signal

    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return "exit-before-tests", "candidate gone"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"SIG{sig}"
        if sig == signal.SIGXCPU:
            return "timeout", name
        if sig == signal.SIGXFSZ:
            return "file-size", name
        return "crash", name
    return "exit-before-tests", f"exit status {os.WEXITSTATUS(status)}"


def exit_status_verdict(job, pid, wfd, rfd):
    """Exit-status grading (the reference's rule): the candidate runs the solution and the tests itself; a pass is
    exit status 0."""
    send(wfd, {"code": job["code"], "tests": job["tests"], "exit_status": True})
    info = {}
    try:
        info = recv(rfd)
    except (ChannelClosed, ChannelError):
        pass
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return True, "", ""
    if type(info) is dict and "fail" in info:
        return False, str(info["fail"])[:40], str(info.get("detail", ""))[:200]
    return (False, *_child_end_status(status))


def _child_end_status(status):
    import signal

    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return "timeout", "SIGXCPU"
        return "crash", f"signal {sig}"
    return "runtime-error", f"exit status {os.WEXITSTATUS(status)}"


# ------------------------------------------------------------------------------------------------ main
def main():
    import ctypes  # noqa: F401 - before any privilege drop (the candidate's numpy also needs it; its use is audited)
    import importlib  # noqa: F401
    import resource
    import signal  # noqa: F401
    import site
    import symtable  # noqa: F401

    # Started with -S: no .pth file of the installation runs here (a program in plain mode could have written one);
    # the grader's import path is given instead, and exit()/quit() are the usual ones.
    cfg = json.loads(sys.argv[1])
    sys.path[:] = [p for p in cfg["sys_path"] if type(p) is str]
    site.setquit()
    status_fd = cfg["status_fd"]
    try:
        parent_alive = lambda: os.getppid() == cfg["grader_pid"]  # noqa: E731
        die_with_parent(parent_alive)
        if cfg["isolation"] in ("namespaces", "userns"):
            parent_alive = enter_namespaces(cfg, status_fd)  # returns in the new PID namespace's first process
            build_root(cfg)
        if cfg["isolation"] in ("namespaces", "drop"):
            drop_to_nobody(cfg["uid"])
        elif cfg["isolation"] == "userns":
            drop_capabilities()
        die_with_parent(parent_alive)  # again: a change of credentials clears the parent-death signal
        no_new_privs()
        set_non_dumpable()
    except BaseException as exc:  # noqa: BLE001
        os.write(status_fd, json.dumps({"passed": False, "reason": "sandbox-error",
                                        "detail": f"set-up failed: {exc}"[:300]}).encode())  # fmt: skip
        os._exit(3)
    for res, value in ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_CPU, cfg["cpu_s"]),
                       (resource.RLIMIT_FSIZE, cfg["fsize_mb"] * 2**20), (resource.RLIMIT_NOFILE, cfg["nofile"]),
                       (resource.RLIMIT_AS, cfg["mem_mb"] * 2**20)):  # fmt: skip
        try:
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            pass
    j2c_r, j2c_w = os.pipe()
    c2j_r, c2j_w = os.pipe()
    judge_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(status_fd)
            os.close(j2c_w)
            os.close(c2j_r)
            die_with_parent(lambda: os.getppid() == judge_pid)
            try:
                install_seccomp(os.getpid())
            except BaseException as exc:  # noqa: BLE001
                send(c2j_w, {"fail": "sandbox-error", "detail": f"system-call filter: {exc}"[:200]})
                os._exit(1)
            candidate(cfg, j2c_r, c2j_w)
        finally:
            os._exit(1)
    os.close(j2c_r)
    os.close(c2j_w)
    chunks = []
    while True:
        b = os.read(0, 1 << 16)
        if not b:
            break
        chunks.append(b)
    job = json.loads(b"".join(chunks))
    record = Behaviour() if cfg.get("behaviour") and not cfg["exit_status"] else None
    try:
        if cfg["exit_status"]:
            passed, reason, detail = exit_status_verdict(job, pid, j2c_w, c2j_r)
        else:
            passed, reason, detail = judge(cfg, job, pid, j2c_w, c2j_r, record)
    except BaseException as exc:  # noqa: BLE001
        passed, reason, detail = False, "sandbox-error", _describe(exc)
        record = None
    sys.stdout.flush()
    sys.stderr.flush()
    status = {"passed": passed, "reason": reason, "detail": detail}
    if cfg.get("behaviour"):
        status["behaviour"] = record.digest(passed, reason) if record is not None and record.loaded else None
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except OSError:
        pass
    os.write(status_fd, json.dumps(status).encode())  # one record on the judge's own socket
    os._exit(0)


if __name__ == "__main__":
    main()
