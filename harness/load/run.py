"""Runs one load profile with locust, in a process of its own (gevent's monkey-patching must not
meet pytest or the harness), bounded in time, and reads back the merged HDR figures."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness import paths
from harness.config import ConfigError, load_yaml_model
from harness.netguard import is_loopback_url
from harness.world.processes import Child, free_port

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
PROFILES = paths.MATRICES / "load"
GENERATOR_METRICS = ("gen_lag", "send_lag")


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate_rps: float = Field(gt=0)
    duration_s: float = Field(gt=0, le=3600)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    user: str = Field("StreamUser", pattern="^(ChatUser|StreamUser|OpenStreamUser|FanoutStreamUser|RealtimeUser)$")
    users: int = Field(ge=1, le=5000)            # closed model: concurrent users; open model: the sender pool
    rate_rps: Optional[float] = Field(None, gt=0)  # open model (OpenStreamUser): the arrival rate
    steps: list[Step] = []                         # open model: stepped arrival rates instead of one
    fanout: int = Field(4, ge=1, le=256)           # FanoutStreamUser: concurrent streams per request
    protocol: str = Field("openai_chat", pattern="^(openai_chat|anthropic_messages|openai_responses|openai_realtime)$")
    spawn_rate: float = Field(gt=0)
    duration_s: Optional[float] = Field(None, gt=0, le=3600)   # every run is bounded in time: no request starts after it
    max_requests: int = Field(1_000_000, ge=1)   # ... and in requests (a fan is one), shared among the processes
    drain_s: float = Field(10, ge=0, le=120)     # how long requests in flight at the end may take to finish
    # A request (a stream: the whole of it; a fan: all its streams) not done in this long is ended and
    # counted an error (timeout), its connection closed: a hung gateway costs a user this, not the run.
    timeout_s: float = Field(60, gt=0, le=3600)
    # Requests sent in the first warmup_s seconds run but leave no figure (counted as `warmup`): the
    # connections' opening and the burst of first requests are not the steady state measured.
    warmup_s: float = Field(0, ge=0, le=600)
    think_s: float = Field(0, ge=0)
    tokens: int = Field(12, ge=1, le=4096)       # answer length the mock provider streams
    token_delay_ms: float = Field(0, ge=0)       # the provider's pace between tokens
    # A time gate is judged only if the run's measured floor (generator lag, the direct run's
    # deviation from the script: harness.load.floor) is at most this share of its bound.
    floor_share: float = Field(0.1, gt=0, le=1)

    @model_validator(mode="after")
    def _shape(self) -> "Profile":
        if self.steps:
            if self.user != "OpenStreamUser":
                raise ValueError("steps: stepped arrival rates need user: OpenStreamUser")
            total = sum(st.duration_s for st in self.steps)
            if self.duration_s is not None and abs(self.duration_s - total) > 1e-9:
                raise ValueError(f"duration_s: {self.duration_s:g} differs from the steps' total {total:g}; leave it out")
            self.duration_s = total
        if self.duration_s is None:
            raise ValueError("duration_s: every run is bounded in time; give one (or steps)")
        if self.duration_s > 3600:
            raise ValueError("duration_s: at most 3600 s")
        if self.warmup_s and self.warmup_s >= self.duration_s:
            raise ValueError(f"warmup_s: {self.warmup_s:g} leaves nothing of duration_s {self.duration_s:g} to measure")
        if self.user == "OpenStreamUser" and not (self.rate_rps or self.steps):
            raise ValueError("rate_rps: an open-model profile needs an arrival rate (or steps)")
        if (self.user == "RealtimeUser") != (self.protocol == "openai_realtime"):
            raise ValueError("protocol: RealtimeUser and protocol openai_realtime go together")
        return self


def load_profile(name_or_path: str) -> Profile:
    path = Path(name_or_path)
    if not path.exists():
        path = PROFILES / f"{name_or_path}.yaml"
    return load_yaml_model(path, Profile, "load profile")


def run(profile: Profile, host: str, path: str, model: str, auth: Optional[str], workers: int = 0,
        auth_header: str = "Authorization", progress: bool = False,
        headers: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """`progress`: locust's own stats table every few seconds on our stderr, as the run goes."""
    if not is_loopback_url(host):
        # Load only ever targets this machine: a harness run must never load someone else's service.
        raise ConfigError(f"load target {host!r}: not a loopback address; the load lane only targets this machine")
    with tempfile.TemporaryDirectory(prefix="harness-load-") as tmp:   # removed afterwards, whatever happens
        return _run_locust(profile, host, path, model, auth, workers, auth_header, progress, Path(tmp) / "result.json",
                           headers or {})


def locust_spec(profile: Profile, path: str, model: str, auth: Optional[str], auth_header: str,
                headers: dict[str, str], processes: int, out: Path) -> dict[str, Any]:
    """What the locustfile reads from HARNESS_LOAD_SPEC, in every locust process of the run."""
    return {"path": path, "model": model, "auth": auth, "auth_header": auth_header, "headers": headers,
            "think_s": profile.think_s, "out": str(out), "users": profile.users, "rate_rps": profile.rate_rps,
            "fanout": profile.fanout, "protocol": profile.protocol,
            "steps": [st.model_dump() for st in profile.steps],
            "processes": max(1, processes),   # the open model splits its arrival rate among them, max_requests too
            "duration_s": profile.duration_s, "max_requests": profile.max_requests, "drain_s": profile.drain_s,
            "warmup_s": profile.warmup_s, "timeout_s": profile.timeout_s}


def backstop_s(profile: Profile) -> int:
    # The locustfile ends the run itself once the requests in flight have finished (see _WINDOW);
    # locust's own --run-time is only the backstop.
    return math.ceil((profile.duration_s or 0) + profile.drain_s + 5)


def locustfiles() -> str:
    # HARNESS_LOAD_LOCUSTFILES: more locustfiles beside ours (event listeners, users of your own),
    # separated by os.pathsep; the tests load one that starves the generator of CPU.
    files = [str(LOCUSTFILE)] + [f for f in os.environ.get("HARNESS_LOAD_LOCUSTFILES", "").split(os.pathsep) if f]
    return ",".join(files)


def locust_argv(profile: Profile, host: str, progress: bool = False) -> list[str]:
    """The locust command of a lone runner or a master (workers: see harness.load.hosts)."""
    return [sys.executable, "-m", "locust", "-f", locustfiles(), "--headless",
            *([] if progress else ["--only-summary"]),
            "-u", str(profile.users), "-r", str(profile.spawn_rate), "-t", f"{backstop_s(profile):g}s",
            "--stop-timeout", f"{math.ceil(profile.drain_s)}",   # the same drain if the backstop fires
            "--host", host, "--loglevel", "WARNING", profile.user]


def read_result(out: Path) -> dict[str, Any]:
    result = json.loads(out.read_text())
    # The generator's own figures (its lag: harness.load.floor) apart from the target's.
    result["generator"] = {k: result["table"].pop(k) for k in GENERATOR_METRICS if k in result["table"]}
    return result


def _run_locust(profile: Profile, host: str, path: str, model: str, auth: Optional[str], workers: int,
                auth_header: str, progress: bool, out: Path, headers: dict[str, str]) -> dict[str, Any]:
    spec = locust_spec(profile, path, model, auth, auth_header, headers, workers, out)
    backstop = backstop_s(profile)
    argv = locust_argv(profile, host, progress)
    if workers > 1:
        # A port of this run's own for master and workers: on locust's default (5557) two runs at once
        # (pytest -n 2) had one run's workers join the other's master, with the wrong user class.
        port = free_port()
        argv += ["--processes", str(workers), "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                 "--master-host", "127.0.0.1", "--master-port", str(port)]
    log = out.with_name("locust.log")
    # Its own process group (locust --processes forks workers): stopped as a whole on the way out,
    # Ctrl-C and timeouts included, so no generator outlives the run.
    child = Child("locust", argv, env={"HARNESS_LOAD_SPEC": json.dumps(spec)},
                  log_path=None if progress else log, passthrough=progress)
    try:
        child.proc.wait(timeout=backstop + 90)   # bounded, whatever locust does
    except subprocess.TimeoutExpired:
        pass
    finally:
        child.stop(grace_s=5)
    if not out.exists():
        tail = "" if progress else log.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"locust wrote no result (exit {child.proc.returncode}): {tail}")
    return read_result(out)
