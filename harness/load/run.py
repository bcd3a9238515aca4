"""Runs one load profile with locust, in a process of its own (gevent's monkey-patching must not
meet pytest or the harness), bounded in time, and reads back the merged HDR figures."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.config import ConfigError, _loc
from harness.netguard import is_loopback_url

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
PROFILES = Path(__file__).resolve().parent.parent.parent / "matrices" / "load"


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    user: str = Field("StreamUser", pattern="^(ChatUser|StreamUser|OpenStreamUser|FanoutStreamUser)$")
    users: int = Field(ge=1, le=5000)            # closed model: concurrent users; open model: the sender pool
    rate_rps: Optional[float] = Field(None, gt=0)  # open model (OpenStreamUser): the arrival rate
    fanout: int = Field(4, ge=1, le=256)           # FanoutStreamUser: concurrent streams per request
    protocol: str = Field("openai_chat", pattern="^(openai_chat|anthropic_messages|openai_responses)$")
    spawn_rate: float = Field(gt=0)
    duration_s: float = Field(gt=0, le=3600)     # every run is bounded in time
    think_s: float = Field(0, ge=0)
    tokens: int = Field(12, ge=1, le=4096)       # answer length the mock provider streams
    token_delay_ms: float = Field(0, ge=0)       # the provider's pace between tokens


def load_profile(name_or_path: str) -> Profile:
    path = Path(name_or_path)
    if not path.exists():
        path = PROFILES / f"{name_or_path}.yaml"
    try:
        return Profile.model_validate(yaml.safe_load(path.read_text()))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the load profile: {exc.strerror}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"{path}: {_loc(tuple(err['loc']))}: {err['msg']}") from None


def run(profile: Profile, host: str, path: str, model: str, auth: Optional[str], workers: int = 0,
        auth_header: str = "Authorization", progress: bool = False) -> dict[str, Any]:
    """`progress`: locust's own stats table every few seconds on our stderr, as the run goes."""
    if not is_loopback_url(host):
        # Load only ever targets this machine: a harness run must never load someone else's service.
        raise ConfigError(f"load target {host!r}: not a loopback address; the load lane only targets this machine")
    out = Path(tempfile.mkdtemp(prefix="harness-load-")) / "result.json"
    if profile.user == "OpenStreamUser" and not profile.rate_rps:
        raise ConfigError(f"load profile {profile.name}: rate_rps: an open-model profile needs an arrival rate")
    spec = {"path": path, "model": model, "auth": auth, "auth_header": auth_header,
            "think_s": profile.think_s, "out": str(out), "users": profile.users, "rate_rps": profile.rate_rps,
            "fanout": profile.fanout, "protocol": profile.protocol}
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            *([] if progress else ["--only-summary"]),
            "-u", str(profile.users), "-r", str(profile.spawn_rate), "-t", f"{profile.duration_s:g}s",
            "--stop-timeout", "10", "--host", host, "--loglevel", "WARNING", profile.user]
    if workers > 1:
        argv += ["--processes", str(workers)]
    import os
    env = {**os.environ, "HARNESS_LOAD_SPEC": json.dumps(spec)}
    proc = subprocess.run(argv, env=env, text=True, timeout=profile.duration_s + 90,   # bounded, whatever locust does
                          stdout=sys.stderr if progress else subprocess.PIPE,
                          stderr=sys.stderr if progress else subprocess.PIPE)
    if not out.exists():
        raise RuntimeError(f"locust wrote no result (exit {proc.returncode}): {(proc.stderr or '')[-1500:]}")
    return json.loads(out.read_text())
