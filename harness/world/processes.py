"""Child processes the harness owns: started in their own process group, always stopped.

Three layers make sure nothing outlives a run: `stop()` in the normal and Ctrl-C paths, an atexit
hook for everything still registered, and PR_SET_PDEATHSIG so the kernel kills a child whose
parent was killed outright (SIGKILL leaves no chance for the other two).
"""
from __future__ import annotations

import atexit
import ctypes
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Optional

_live: set["Child"] = set()


class StartError(Exception):
    """Something the harness had to start did not come up: a FAIL of the run, not of a claim."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now. The gap until the child binds it is short; callers retry on clash."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class RefusingPort:
    """A port that refuses connections for as long as we hold it: bound, never listened on (Linux
    answers a connect with ECONNREFUSED), and not ours to lose. A port taken with free_port() and
    let go can be bound by any later server, and then it answers. No SO_REUSEADDR on purpose: with
    it, a server that sets it too (uvicorn, Go's net) could bind the same port beside us."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.bind((host, port))
        except OSError:
            self._sock.close()
            raise
        self.port: int = self._sock.getsockname()[1]

    def close(self) -> None:
        self._sock.close()


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None,
                 log_path: Optional[Path] = None, cwd: Optional[Path] = None, pipe_stdout: bool = False,
                 passthrough: bool = False) -> None:
        """`passthrough`: the child's output goes to our stderr (a live display), not to a log."""
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.unread = b""   # stdout read with the READY line, not yet in the log (spawn_ready)
        self._log: Optional[IO[bytes]] = open(log_path, "wb") if log_path else None
        try:
            self.proc = subprocess.Popen(
                argv, env={**os.environ, **(env or {})}, cwd=cwd,
                stdin=subprocess.PIPE,  # closed when we exit: children that watch stdin leave too
                stdout=subprocess.PIPE if pipe_stdout else (sys.stderr if passthrough else self._log or subprocess.DEVNULL),
                stderr=sys.stderr if passthrough else self._log or subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C at the terminal reaches us, and we stop them in order
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:   # a missing or non-executable binary: the world cannot start (exit 3)
            if self._log:
                self._log.close()
            raise StartError(f"cannot start {name}: {argv[0]}: {exc.strerror}") from None
        _live.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace_s: float = 10.0) -> Optional[int]:
        """SIGTERM to the whole group, SIGKILL after `grace_s`. Safe to call twice."""
        try:
            if self.alive():
                signal_group(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    pass
            # SIGKILL for a leader that ignored SIGTERM, and for grandchildren (uvicorn workers...) that
            # may remain in the group after the leader left.
            kill_group(self.proc)
        finally:
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream:
                    try:
                        stream.close()
                    except OSError:
                        pass
            if self._log:
                self._log.close()
                self._log = None
            _live.discard(self)
        return self.proc.returncode

    def drain_stdout(self) -> None:
        """Copies what the child prints on stdout from now on into its log, in a thread. Once its
        READY line is read nobody else reads the pipe, and a child that keeps printing would block
        for good on a full pipe (64 KiB) in the middle of serving. The thread ends with the pipe."""
        out = self.proc.stdout
        if out is None:
            return

        def copy() -> None:
            try:
                chunk = self.unread
                while True:
                    if chunk and self._log:
                        self._log.write(chunk)
                        self._log.flush()
                    chunk = out.read1(65536)   # type: ignore[union-attr]
                    if not chunk:   # the child closed its stdout or exited
                        return
            except (OSError, ValueError):   # the pipe or the log closed under us by stop()
                pass

        threading.Thread(target=copy, name=f"{self.name}-stdout", daemon=True).start()

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_members(pgid: int) -> list[int]:
    """The processes whose process group is `pgid` (from /proc/<pid>/stat, field 5)."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path("/proc", entry.name, "stat").read_bytes()
            if int(stat[stat.rindex(b")") + 2:].split()[2]) == pgid:
                members.append(int(entry.name))
        except (OSError, ValueError, IndexError):   # gone while we looked
            continue
    return members


def kill_group(proc: subprocess.Popen, timeout_s: float = 5.0) -> None:
    """SIGKILL the process group `proc` leads (started with start_new_session) and wait, bounded,
    until none of it is left.

    `killpg` only while the leader is not reaped: once it is, and its group is empty, the kernel may
    give its pid to a new process, and a new session leader (another test's gateway, say) has pgid ==
    that pid. While any of our leftovers lives the pgid stays reserved, so a member whose pid is the
    pgid itself is a newcomer, and then the group is not ours to kill."""
    pgid = proc.pid
    deadline = time.monotonic() + timeout_s
    if proc.poll() is None:   # not reaped (alive or a zombie): the pid, and so the group id, is still ours
        signal_group(pgid, signal.SIGKILL)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:   # stuck in the kernel (D state): nothing more a signal can do
            return
    while True:
        members = group_members(pgid)
        if not members or pgid in members:
            return
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if time.monotonic() >= deadline:
            return
        time.sleep(0.05)


def exited_unasked() -> list[Child]:
    """Children that ended although nobody stopped them (a gateway that crashed or was killed)."""
    return [c for c in list(_live) if not c.alive()]


def stop_all() -> None:
    for child in list(_live):
        child.stop(grace_s=3)


atexit.register(stop_all)


_interrupted: list[int] = []   # the signals received, so code unwinding can tell an interrupt from a bug


def interrupted() -> bool:
    return bool(_interrupted)


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` and context manager runs."""
    def _raise(signum: int, frame: object) -> None:
        _interrupted.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise)


def spawn_ready(name: str, argv: list[str], log_path: Path, timeout_s: float) -> tuple[Child, dict]:
    """Starts a child that prints `READY {json}` once it listens; returns it and that JSON."""
    child = Child(name, argv, log_path=log_path, pipe_stdout=True)
    try:
        info = _await_ready(child, timeout_s)
    except BaseException:   # Ctrl-C, or a READY line that is not JSON: the child must not outlive us
        child.stop(grace_s=2)
        raise
    if info is None:
        child.stop(grace_s=2)
        raise StartError(f"{name} did not start within {timeout_s:.0f}s: {child.log_tail(5) or 'no output'}")
    child.drain_stdout()
    return child, info


def _await_ready(child: Child, timeout_s: float) -> Optional[dict]:
    """The JSON of the child's READY line, or None if it does not come in time. Only whole lines
    count: a line can arrive in several reads, its newline last, and half a line is half a JSON.
    Once the child has exited, its last line counts without a newline too."""
    out = child.proc.stdout
    assert out is not None
    deadline = time.monotonic() + timeout_s
    tail = b""   # the line still waiting for its newline
    while time.monotonic() < deadline:
        # Looked at before select: whatever an exited child wrote is in the pipe by now.
        exited = not child.alive()
        ready, _, _ = select.select([out], [], [], 0 if exited else 0.2)
        if not ready:
            if exited:
                return _ready_json(child, tail)
            continue
        chunk = out.read1(4096)  # type: ignore[union-attr]
        if not chunk:   # end of output: the child closed it or exited
            return _ready_json(child, tail)
        *lines, tail = (tail + chunk).split(b"\n")
        for i, line in enumerate(lines):
            if line.startswith(b"READY "):
                # What came in the same read after the READY line belongs to the log (drain_stdout).
                child.unread = b"".join(rest + b"\n" for rest in lines[i + 1:]) + tail
                return _ready_json(child, line)
    return None


def _ready_json(child: Child, line: bytes) -> Optional[dict]:
    if not line.startswith(b"READY "):
        return None
    try:
        return json.loads(line[6:])
    except ValueError:
        raise StartError(f"{child.name} said READY with something that is not JSON: {line[:200]!r}") from None
