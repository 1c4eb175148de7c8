"""The sandbox's in-child program (standard library only; run as ``python -s -P -B -c <this source> CONFIG``).

It is never imported by the package: :mod:`.sandbox` reads this file and passes its text to a fresh interpreter.
CONFIG is a JSON object (see ``sandbox._config``).  It stays one module of some 800 lines on purpose: the child gets
this one source text and may import nothing from the package, so its steps cannot live in sibling modules.  The program:

1. optionally builds the isolated file-system view (new root made of read-only binds of the system and the Python
   installation, private tmpfs for the shared writable directories, the scratch directory) and drops privileges;
2. marks itself non-dumpable, so a process of the same user cannot read or write its memory or open its fds;
3. forks the **candidate** process, which runs the model's code under rlimits and an audit hook and then answers calls
   over a pipe pair; the parent, the **judge**, runs the benchmark's tests against proxies of the candidate's names.

Only plain data crosses the pipes (JSON with tags for tuples, sets, bytes, ...; never pickle); anything else stays in
the candidate as an opaque handle.  The judge alone writes the verdict, to a file descriptor the candidate closed
before running anything, so the candidate has nothing to forge.
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


def set_non_dumpable():
    _, libc = _libc()
    _check(libc.prctl(4, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")  # PR_SET_DUMPABLE = 4


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18,
)  # fmt: skip


def build_root(cfg):
    """Inside fresh mount (and PID, network, maybe user) namespaces: make ``root`` a tmpfs holding read-only binds of
    the system directories and the Python installation, private tmpfs mounts for /tmp and /dev/shm, a few device
    nodes, a fresh /proc where allowed, and the scratch directory; then chroot into it."""
    ctypes, libc = _libc()
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

    def mount(src, tgt, fstype, flags, data=None):
        enc = [s.encode() if s is not None else None for s in (src, tgt, fstype, data)]
        _check(libc.mount(enc[0], enc[1], enc[2], flags, enc[3]), f"mount {src} on {tgt}")

    root, scratch, tmpfs_mb = cfg["root"], cfg["scratch"], int(cfg["tmpfs_mb"])
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
    for d in ("/tmp", "/dev/shm", "/var/tmp"):
        os.makedirs(root + d, exist_ok=True)
        mount("tmpfs", root + d, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmpfs_mb}m,mode=1777")
    os.makedirs(root + scratch, exist_ok=True)
    mount(scratch, root + scratch, None, MS_BIND)
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


def no_new_privs():
    _, libc = _libc()
    _check(libc.prctl(38, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


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
    if issubclass(t, OSError) and getattr(exc, "errno", None) == 27:
        return "file-size"  # EFBIG: RLIMIT_FSIZE
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
    except BaseException:  # noqa: BLE001
        return False, "tests-syntax", ""
    wanted = sorted(_code_names(tests_obj))  # only the names the tests can refer to cross the channel
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
    g = {"__name__": "__main__", "__builtins__": builtins}
    if type(first.get("names")) is not dict:
        return False, "sandbox-error", "malformed namespace"
    for name, value in first["names"].items():
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


def _code_names(code):
    """Every global/attribute name a code object (and the functions and classes inside it) can look up."""
    out = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out |= _code_names(const)
    return out


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

    cfg = json.loads(sys.argv[1])
    status_fd = cfg["status_fd"]
    try:
        if cfg["isolation"] in ("namespaces", "userns"):
            build_root(cfg)
        if cfg["isolation"] in ("namespaces", "drop"):
            drop_to_nobody(cfg["uid"])
        elif cfg["isolation"] == "userns":
            drop_capabilities()
        if cfg["isolation"] != "plain":
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
    pid = os.fork()
    if pid == 0:
        try:
            os.close(status_fd)
            os.close(j2c_w)
            os.close(c2j_r)
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
    os.write(status_fd, json.dumps(status).encode())
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except OSError:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
