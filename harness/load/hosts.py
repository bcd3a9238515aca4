"""Two hosts on this machine: network namespaces joined by a veth pair, so that locust's master and
its workers talk over a network, as they do across machines (tests/test_load_hosts.py).

Host "a" and host "b" each have their own loopback and one end of the pair, 10.213.0.1/30 on a and
10.213.0.2/30 on b (the same in every pair: a pair's addresses exist only in its own namespaces).
Nothing is added to this machine's own namespace. Names carry our pid and a sequence number
(`harness-<pid>-<n>-a`), so runs at once never meet; everything is removed on the way out,
Ctrl-C included, and a pair whose owner was killed outright is removed by the next pair made here.

The load target stays on loopback (the house rule: load only targets this machine): it runs on
host b beside the workers, on b's own 127.0.0.1; only master <-> worker traffic crosses the veth.

    sudo .venv/bin/python -m harness.load.hosts [--profile smoke] [--workers 2]
"""
from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from harness.config import ConfigError
from harness.load.run import Profile, backstop_s, locust_argv, locust_spec, locustfiles, read_result
from harness.netguard import is_loopback_url
from harness.world.processes import Child, spawn_ready

NETNS_DIR = Path("/run/netns")
ADDRS = {"a": "10.213.0.1", "b": "10.213.0.2"}
MASTER_PORT = 5557   # locust's default: nobody else listens in a namespace of our own
_OURS = re.compile(r"^harness-(\d+)-\d+-[ab]$")
_seq = itertools.count()


class HostsError(Exception):
    """The namespaces could not be made (an `ip` command failed)."""


def unavailable() -> Optional[str]:
    """Why network namespaces cannot be made here, or None. `ip netns add` needs CAP_SYS_ADMIN
    (it mounts the namespace) beside CAP_NET_ADMIN; `ip netns exec` needs both too."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2): network namespaces cannot be made here"
    caps = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            caps = int(line.split()[1], 16)
    missing = [name for bit, name in ((12, "CAP_NET_ADMIN"), (21, "CAP_SYS_ADMIN")) if not caps >> bit & 1]
    if missing:
        return f"no {' and '.join(missing)}: network namespaces cannot be made here (run as root)"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and proc.returncode != 0:
        raise HostsError(f"ip {' '.join(args)}: {proc.stderr.strip() or f'exit {proc.returncode}'}")
    return proc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def leftovers() -> list[str]:
    """Our namespaces on this machine, whoever made them (tests look for them after a run)."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if _OURS.match(n))
    except FileNotFoundError:
        return []


def _sweep() -> None:
    """Removes the namespaces of owners that are gone (killed outright: no chance to clean up)."""
    for name in leftovers():
        m = _OURS.match(name)
        if m and not _alive(int(m.group(1))):
            _ip("netns", "del", name, check=False)


class TwoHosts:
    """`with TwoHosts() as hosts:` two namespaces joined by a veth pair; `hosts.spawn("b", ...)`
    starts a process on host b. On the way out every process started here is stopped, then the
    pair and the namespaces are removed."""

    def __init__(self) -> None:
        tag = f"{os.getpid()}-{next(_seq)}"
        self.ns = {h: f"harness-{tag}-{h}" for h in "ab"}
        # Interface names: at most 15 characters (a pid has at most 7 digits).
        self.dev = {h: f"hv{tag.replace('-', 'x')}{h}"[:15] for h in "ab"}
        self.addr = dict(ADDRS)
        self._children: list[Child] = []

    def __enter__(self) -> "TwoHosts":
        try:
            self._make()
        except BaseException:   # Ctrl-C or a failed command half way: remove what was made
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _make(self) -> None:
        why = unavailable()
        if why:
            raise HostsError(why)
        _sweep()
        a, b = self.ns["a"], self.ns["b"]
        _ip("netns", "add", a)
        _ip("netns", "add", b)
        # Both ends made inside their namespaces: this machine's own never sees them.
        _ip("link", "add", "name", self.dev["a"], "netns", a, "type", "veth", "peer", "name", self.dev["b"], "netns", b)
        for h in "ab":
            _ip("-n", self.ns[h], "addr", "add", f"{self.addr[h]}/30", "dev", self.dev[h])
            _ip("-n", self.ns[h], "link", "set", self.dev[h], "up")
            _ip("-n", self.ns[h], "link", "set", "lo", "up")

    def argv(self, host: str, argv: list[str]) -> list[str]:
        # `ip netns exec` enters the namespace and execs the command in its own process: the pid
        # (and so the process group, and PR_SET_PDEATHSIG) is the command's.
        return ["ip", "netns", "exec", self.ns[host], *argv]

    def spawn(self, host: str, name: str, argv: list[str], env: Optional[dict[str, str]] = None,
              log_path: Optional[Path] = None) -> Child:
        child = Child(name, self.argv(host, argv), env=env, log_path=log_path)
        self._children.append(child)
        return child

    def spawn_ready(self, host: str, name: str, argv: list[str], log_path: Path,
                    timeout_s: float = 20) -> tuple[Child, dict]:
        """A child that prints `READY {json}` (harness.world.processes.spawn_ready), on `host`."""
        child, info = spawn_ready(name, self.argv(host, argv), log_path, timeout_s)
        self._children.append(child)
        return child, info

    def run(self, host: str, argv: list[str], timeout_s: float = 10) -> str:
        """A short command on `host`; its output."""
        return subprocess.run(self.argv(host, argv), capture_output=True, text=True, timeout=timeout_s,
                              check=True).stdout

    def netns_inode(self, host: str) -> int:
        return os.stat(NETNS_DIR / self.ns[host]).st_ino

    def close(self) -> None:
        """Every step is tried even if one before it failed; safe to call twice."""
        errors: list[BaseException] = []
        for child in reversed(self._children):
            try:
                child.stop(grace_s=5)
            except BaseException as exc:  # noqa: BLE001 - the namespaces must go all the same
                errors.append(exc)
        self._children.clear()
        # Deleting one end removes the pair; a namespace goes when its last process has left.
        for args in (("-n", self.ns["a"], "link", "del", self.dev["a"]),
                     ("netns", "del", self.ns["a"]), ("netns", "del", self.ns["b"])):
            try:   # a step with nothing to remove (never made) fails, and that is fine
                _ip(*args, check=False)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
        if errors:
            raise errors[0]


def run_split(hosts: TwoHosts, profile: Profile, target: str, path: str, model: str, work_dir: Path,
              auth: Optional[str] = None, workers: int = 2, env: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Locust's master on host a, bound to a's veth address; `workers` worker processes on host b
    that connect to it over the veth and load `target` (a loopback URL: on host b, beside them).
    Returns the master's merged result, as harness.load.run.run does. Logs go to `work_dir`; `env`:
    more environment for every locust process (HARNESS_LOAD_DUMP_DIR, say)."""
    if not is_loopback_url(target):
        raise ConfigError(f"load target {target!r}: not a loopback address; the load lane only targets this machine")
    out = work_dir / "result.json"
    env = {**(env or {}),
           "HARNESS_LOAD_SPEC": json.dumps(locust_spec(profile, path, model, auth, "Authorization", {}, workers, out))}
    master = hosts.spawn("a", "locust-master", locust_argv(profile, target) + [
        "--master", "--expect-workers", str(workers), "--expect-workers-max-wait", "30",
        "--master-bind-host", hosts.addr["a"], "--master-bind-port", str(MASTER_PORT)],
        env=env, log_path=work_dir / "master.log")
    # A process per worker, each started by us: locust --processes forks its workers, and a fork
    # does not inherit PR_SET_PDEATHSIG, so a killed harness would leave them running.
    crew = [hosts.spawn("b", f"locust-worker-{i}", [
        sys.executable, "-m", "locust", "-f", locustfiles(), "--worker",
        "--master-host", hosts.addr["a"], "--master-port", str(MASTER_PORT), "--loglevel", "WARNING"],
        env=env, log_path=work_dir / f"worker-{i}.log") for i in range(workers)]
    try:
        deadline = time.monotonic() + 30 + backstop_s(profile) + 30   # workers' arrival, the run, its backstop
        master.proc.wait(timeout=deadline - time.monotonic())
        for w in crew:   # they leave when the master tells them to, after a last report
            w.proc.wait(timeout=max(0.1, min(15, deadline + 15 - time.monotonic())))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for w in crew:
            w.stop(grace_s=5)
        master.stop(grace_s=5)
    if not out.exists():
        tail = (work_dir / "master.log").read_text(errors="replace")[-1500:]
        raise RuntimeError(f"the locust master wrote no result (exit {master.proc.returncode}): {tail}")
    return read_result(out)


# The mock's pace set through its control API, from host b (whose loopback it listens on).
_SCRIPT_PACE = ("import sys\nfrom harness.client.control import ProviderControl\n"
                "with ProviderControl('oa', sys.argv[1]) as p:\n"
                "    p.script(tokens=int(sys.argv[2]), token_delay_ms=float(sys.argv[3]))\n")


def mock_target(hosts: TwoHosts, log_path: Path, profile: Optional[Profile] = None) -> str:
    """A mock OpenAI provider on host b's loopback (harness.mocks); its URL. With a profile, the
    mock streams at the profile's pace (tokens, token_delay_ms), as the load lane scripts it."""
    spec = {"providers": [{"name": "oa", "kind": "openai"}]}
    _, info = hosts.spawn_ready("b", "mock-provider", [sys.executable, "-m", "harness.mocks", json.dumps(spec)],
                                log_path)
    url = f"http://127.0.0.1:{info['ports']['oa']}"
    if profile is not None:
        hosts.run("b", [sys.executable, "-c", _SCRIPT_PACE, url, str(profile.tokens), str(profile.token_delay_ms)])
    return url


def main(argv: Optional[list[str]] = None) -> int:
    import argparse

    from harness.load.run import load_profile
    ap = argparse.ArgumentParser(prog="python -m harness.load.hosts",
                                 description="A load profile with locust's master and workers on two hosts "
                                             "(network namespaces) against a mock provider; prints the merged table.")
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    why = unavailable()
    if why:
        print(f"harness.load.hosts: {why}", file=sys.stderr)
        return 2
    profile = load_profile(args.profile)
    with tempfile.TemporaryDirectory(prefix="harness-hosts-") as tmp, TwoHosts() as hosts:
        target = mock_target(hosts, Path(tmp) / "mock.log", profile)
        result = run_split(hosts, profile, target, "/v1/chat/completions", "gpt-mock", Path(tmp), workers=args.workers)
    print(json.dumps({"counts": result["counts"], "table": result["table"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
