"""kill_group: what is left of a child's process group dies, and nobody else's group does, even when
the kernel has handed the reaped leader's pid to a new session leader (pid_max is 32768 on CI boxes,
and a long test run wraps it). Also: spawn_ready reads only whole READY lines, and a RefusingPort
refuses connections and cannot be taken while it is held."""
from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.world.processes import Child, RefusingPort, StartError, _live, kill_group, spawn_ready
from timing import bound


def _state(pid: int) -> str | None:
    """The process's state letter, None once it is gone (a zombie 'Z' is dead but not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def _dead(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if _state(pid) in (None, "Z", "X"):
            return True
        time.sleep(0.02)
    return False


def test_the_leftovers_of_a_group_whose_leader_already_left_are_killed():
    # The leader starts a grandchild in its own group, prints its pid and exits (a uvicorn worker left behind).
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!"], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    grandchild = int(proc.stdout.readline())
    proc.wait(timeout=5)
    proc.stdout.close()
    assert _state(grandchild) not in (None, "Z")
    kill_group(proc)
    assert _dead(grandchild)


def test_a_leader_that_ignores_sigterm_is_killed_with_its_group(tmp_path):
    child = Child("stubborn", ["sh", "-c", "trap '' TERM; sleep 60 & wait"], log_path=tmp_path / "c.log")
    time.sleep(0.2)
    assert child.stop(grace_s=0.3) is not None
    assert _dead(child.pid)


class _Reaped:
    """A Popen whose leader we already reaped, and whose pid the kernel has since given to someone else."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def poll(self) -> int:
        return 0


def test_a_new_session_leader_that_got_the_reaped_leaders_pid_is_spared():
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)   # another test's gateway, say
    try:
        kill_group(_Reaped(other.pid), timeout_s=0.5)
        time.sleep(0.1)
        assert other.poll() is None, "kill_group killed a process group that was not the child's"
    finally:
        other.kill()
        other.wait(timeout=5)


def test_a_failed_test_names_the_child_that_died_under_it(tmp_path):
    """The conftest hook: the failure report carries the dead child's exit and its log's end."""
    (tmp_path / "test_dies.py").write_text(
        "import time\n"
        "from harness.world.processes import Child\n"
        "def test_gateway_vanishes(tmp_path):\n"
        "    c = Child('gateway', ['sh', '-c', 'echo last words; exit 3'], log_path=tmp_path / 'g.log')\n"
        "    c.proc.wait(timeout=5)\n"
        "    assert False, 'connection refused'\n"
        "def test_gateway_alive_passes(tmp_path):\n"
        "    pass\n")
    tests_dir = Path(__file__).resolve().parent
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                        "--rootdir", str(tmp_path), str(tmp_path / "test_dies.py")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(tests_dir)})
    assert "1 failed, 1 passed" in r.stdout, r.stdout + r.stderr
    assert "gateway (pid " in r.stdout and "had exited: exit code 3" in r.stdout, r.stdout
    assert "last words" in r.stdout


# A READY line in two writes, 0.3 s apart, its newline last: the first read sees half of it.
_SPLIT_READY = """
import sys, time
out = sys.stdout.buffer
out.write(b'READY {"ports": {"oa": 4'); out.flush()
time.sleep(0.3)
out.write(b'1001, "an": 41002}}'); out.flush()
time.sleep(0.3)
out.write(b'\\n'); out.flush()
time.sleep(60)
"""


def test_a_ready_line_split_across_reads_is_read_whole(tmp_path):
    child, info = spawn_ready("split", [sys.executable, "-c", _SPLIT_READY], tmp_path / "split.log", timeout_s=20)
    try:
        assert info == {"ports": {"oa": 41001, "an": 41002}}
    finally:
        child.stop(grace_s=2)


def test_a_last_ready_line_without_newline_counts_once_the_child_exits(tmp_path):
    script = "import sys; sys.stdout.write('READY {\"ports\": {\"oa\": 41001}}')"
    child, info = spawn_ready("unterminated", [sys.executable, "-c", script], tmp_path / "u.log", timeout_s=20)
    child.stop(grace_s=2)
    assert info == {"ports": {"oa": 41001}}


def test_a_ready_line_that_is_not_json_is_a_start_error_and_the_child_is_stopped(tmp_path):
    script = "import time; print('READY {oops', flush=True); time.sleep(60)"
    with pytest.raises(StartError, match="said READY with something that is not JSON") as e:
        spawn_ready("garbled", [sys.executable, "-c", script], tmp_path / "g.log", timeout_s=20)
    assert not [c for c in _live if c.name == "garbled"], e.value   # stopped, not left to the atexit hook


def test_a_child_that_keeps_printing_after_ready_is_not_blocked_and_its_output_is_logged(tmp_path):
    # 1 MiB after READY: sixteen times a pipe's buffer. Unread, the child would block on its first
    # full pipe and never reach its exit.
    script = ("import sys; print('READY {}', flush=True)\n"
              "for i in range(1024): sys.stdout.write('x' * 1023 + '\\n')\n"
              "sys.stdout.write('the end\\n')")
    child, info = spawn_ready("chatty", [sys.executable, "-c", script], tmp_path / "chatty.log", timeout_s=20)
    try:
        child.proc.wait(timeout=bound(10))
        deadline = time.monotonic() + bound(5)   # the copying thread may still be flushing the last chunk
        while "the end" not in child.log_tail(1) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.log_tail(1) == "the end"
        assert (tmp_path / "chatty.log").read_bytes().count(b"x" * 1023 + b"\n") == 1024   # every line, none lost
    finally:
        child.stop(grace_s=2)


def _bind(port: int) -> None:
    """Binds the port the way a server does (SO_REUSEADDR set), then lets it go."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_a_refusing_port_refuses_and_stays_ours_until_closed():
    held = RefusingPort()
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", held.port), timeout=2).close()
        with pytest.raises(OSError) as taken:   # no later server can take it and start answering
            _bind(held.port)
        assert taken.value.errno == errno.EADDRINUSE
    finally:
        held.close()
    _bind(held.port)   # let go once closed
