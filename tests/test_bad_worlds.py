"""A world that cannot start is one line on stderr and exit 3, never a traceback, whatever broke:
a config template with an error, a provider port already taken, a start command that exits at
once, a gateway never ready, a binary that does not exist. The report still says so."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

BASE = """version: 1
target:
  name: broken
  start: {{command: {command}, ready_timeout_s: 3{extra}}}
providers: [{{name: p, kind: openai{port}}}]
models: [{{name: m, provider: p}}]
"""


def run(tmp_path, command='["sleep", "60"]', extra="", port="", template=None):
    if template is not None:
        (tmp_path / "gw.j2").write_text(template)
    (tmp_path / "h.yaml").write_text(BASE.format(command=command, extra=extra, port=port))
    return subprocess.run([sys.executable, "-m", "harness", "run", "-c", str(tmp_path / "h.yaml"), "-o", str(tmp_path / "out"),
                           "--only", "CM-10.1.1", "--no-load", "--no-smoke"], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case,kwargs,says", [
    ("template error", {"extra": ", config_template: gw.j2", "template": "port: {{ nope }}\n"},
     "gw.j2: template error: 'nope' is undefined"),
    ("exits at once", {"command": '["false"]'}, "exited with code 1 before it was ready"),
    ("never ready", {"command": '["sleep", "60"]'}, "not ready at http://127.0.0.1:"),
    ("missing binary", {"command": '["/nonexistent/gw", "{{ port }}"]'}, "gateway 'broken' is not installed: /nonexistent/gw not found"),
])
def test_one_line_and_exit_3(tmp_path, case, kwargs, says):
    r = run(tmp_path, **kwargs)
    assert r.returncode == 3, (case, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: ") and says in lines[0], (case, r.stderr)
    assert "Traceback" not in r.stdout + r.stderr
    assert "**Release gate: NOT CLEARED**: the world could not be started" in (tmp_path / "out" / "report.md").read_text()


def test_a_provider_port_already_taken(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = run(tmp_path, port=f", port: {port}")
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert r.stderr.strip().splitlines() == [
        f"harness: error: provider 'p': port {port} (providers[].port) is already in use on 127.0.0.1"], r.stderr
