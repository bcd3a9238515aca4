"""The load lane's verdicts: profiles validated with the field named, gates (at a rate, per
profile), the claims and JUnit cases they become, and the load section of the main report."""
from __future__ import annotations

import pytest
from junitparser import Failure, JUnitXml, Skipped

from harness.config import ConfigError, load
from harness.load import claims
from harness.load.lane import COLUMNS, buffering, for_report, gates
from harness.load.outcome import tally
from harness.load.run import load_profile
from harness.outputs import write_all
from harness.results.record import Record
from runs import rec, run_of


@pytest.mark.parametrize("text,phrase", [
    ("name: x\nuser: OpenStreamUser\nusers: 2\nspawn_rate: 2\nduration_s: 5\n", "rate_rps: an open-model profile needs"),
    ("name: x\nuser: StreamUser\nusers: 2\nspawn_rate: 2\nsteps: [{rate_rps: 1, duration_s: 2}]\n", "steps: stepped arrival"),
    ("name: x\nuser: OpenStreamUser\nusers: 2\nspawn_rate: 2\nduration_s: 9\nsteps: [{rate_rps: 1, duration_s: 2}]\n",
     "duration_s: 9 differs from the steps' total 2"),
    ("name: x\nuser: StreamUser\nusers: 2\nspawn_rate: 2\n", "duration_s: every run is bounded"),
    ("name: x\nuser: RealtimeUser\nusers: 2\nspawn_rate: 2\nduration_s: 3\n", "protocol: RealtimeUser and protocol"),
    ("name: x\nuser: StreamUser\nusers: 0\nspawn_rate: 2\nduration_s: 3\n", "users: Input should be greater"),
    ("name: x\nuser: StreamUser\nusers: 2\nspawn_rate: 2\nduration_s: 3\nwarmup_s: 3\n", "warmup_s: 3 leaves nothing"),
    ("name: [x\n", "not valid YAML"),
])
def test_bad_profiles_name_the_field(tmp_path, text, phrase):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_profile(str(p))
    assert phrase in str(e.value) and str(p) in str(e.value)


def test_shipped_profiles_are_valid():
    for name in ("smoke", "open", "stepped", "burst", "fanout", "soak", "anthropic", "responses", "realtime",
                 "responses-fanout"):
        assert load_profile(name).duration_s


def _cfg(tmp_path, gates_yaml):
    base, _ = load(None)
    data = base.model_dump(mode="json", exclude_none=True)
    import yaml
    data["gates"] = yaml.safe_load(gates_yaml)
    p = tmp_path / "h.yaml"
    p.write_text(yaml.safe_dump(data))
    return load(p)[0]


RUN = {"counts": {"requests": 98, "error:http_500": 2}, "table": {"ttft": {"count": 98, "p99": 120.0}},
       "locust": {"rps": 9.5, "requests": 100}}


def test_gates_judge_percentiles_rates_and_error_rate(tmp_path):
    cfg = _cfg(tmp_path, """
- {metric: ttft, percentile: 99, max_ms: 200}
- {metric: ttft, percentile: 99, max_ms: 100}
- {metric: ttft, percentile: 99, max_ms: 200, min_rps: 20}
- {metric: error_rate, max_rate: 0.01, id: CM-30.1}
- {metric: itl, percentile: 50, max_ms: 5}
- {metric: ttft, percentile: 99, max_ms: 1, profile: soak}
""")
    got = gates(cfg, RUN, "smoke")
    assert [(g["id"], g["status"]) for g in got] == [
        ("CM-21.2", "PASS"), ("CM-21.3", "FAIL"), ("CM-21.4", "FAIL"), ("CM-30.1", "FAIL"), ("CM-21.6", "UNSUPPORTED")]
    assert "reached 9.5 rps, short of 20" in got[2]["reason"]       # "under X ms at Y rps": the rate is part of it
    assert got[3]["value"] == round(2 / 98, 4)
    assert [g["status"] for g in gates(cfg, RUN, "soak")][-1] == "FAIL"   # the soak-only gate applies to soak


def test_a_hanging_gateway_fails_every_gate_and_the_buffering_claim(tmp_path):
    """Nothing answered: the 20 requests were still waiting when the drain ran out. That is never a
    pass, not even of an error-rate gate (no request ended, so none 'failed')."""
    cfg = _cfg(tmp_path, "- {metric: ttft, percentile: 99, max_ms: 200}\n- {metric: error_rate, max_rate: 0.01}\n")
    hung = {"counts": {"started": 20}, "table": {}, "locust": {"rps": 0.0, "requests": 0}}
    got = gates(cfg, hung, "smoke")
    assert [g["status"] for g in got] == ["FAIL", "FAIL"], got
    assert "nothing completed" in got[0]["reason"] and "20 never finished" in got[0]["reason"]
    assert got[1]["value"] == 1.0
    direct = {"counts": {"started": 50, "requests": 50}, "table": {"ttft": {"count": 50, "p50": 3.0},
                                                                   "e2e": {"count": 50, "p50": 100.0}}}
    verdict = buffering(hung, direct)
    assert verdict["status"] == "FAIL" and "no stream completed through the gateway" in verdict["reason"]


def test_unfinished_requests_are_errors_in_the_rate():
    assert tally({"started": 10, "requests": 8, "error:http_502": 1}) == {
        "completed": 7, "errors": 1, "unfinished": 2, "attempted": 10}
    assert tally({"requests": 5}) == {"completed": 5, "errors": 0, "unfinished": 0, "attempted": 5}


def test_gate_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"gates\[0\]: a ttft gate needs percentile and max_ms"):
        _cfg(tmp_path, "[{metric: ttft}]")
    with pytest.raises(ConfigError, match=r"gates\[0\]\.min_rps"):
        _cfg(tmp_path, "[{metric: error_rate, max_rate: 0.1, min_rps: -1}]")


def _result():
    hdr = {"samples": [[1000.0 + i / 10, 0.05] for i in range(30)]}
    run = {**RUN, "table": {"ttft": {"count": 98, **{c: 10.0 for c in COLUMNS}, "mean": 10.0}}, "hdr": hdr}
    return {"profile": {"name": "smoke", "description": "d", "users": 2, "user": "StreamUser", "duration_s": 3, "steps": []},
            "gateway": run, "direct": run, "overhead": {}, "tpot_tokens": "tpot counts usage tokens",
            "buffering": {"status": "FAIL", "reason": "chunks arrive together", "ttft_share_of_stream_gateway": 0.9},
            "hops": {"gateway": {"matched": 98, "unmatched": 0, "impossible": 0, "table": {
                         h: {"count": 98, **{c: v for c in COLUMNS}, "mean": v} for h, v in (("in", 3.0), ("provider", 1.0), ("out", 250.0))}},
                     "direct": {"matched": 98, "unmatched": 0, "impossible": 0, "table": {
                         h: {"count": 98, **{c: 1.0 for c in COLUMNS}, "mean": 1.0} for h in ("in", "provider", "out")}},
                     "added": {h: {c: v for c in COLUMNS} for h, v in (("in", 2.0), ("provider", 0.0), ("out", 249.0))}},
            "floor": {"gen_lag": {"p50": 0.2, "p99": 1.5}, "send_lag": {"p50": 0.1, "p99": 0.9}, "cpu_share": 0.42,
                      "direct_deviation": {"ttft": {"p50": 2.0, "p99": 6.5}}, "share": 0.1},
            "gates": [{"id": "CM-21.2", "gate": "ttft p99 <= 100 ms", "value": 120.0, "rps": 9.5, "status": "FAIL",
                       "reason": "measured 120.0 at 9.5 rps"}]}


def test_verdicts_become_claims_junit_cases_and_a_report_section(tmp_path):
    records = claims.records(_result(), 7.0)
    assert [(r["id"], r["status"], r["lane"]) for r in records] == [("CM-21.1", "FAIL", "Load"), ("CM-21.2", "FAIL", "Load")]
    assert "chunks arrive together" in records[0]["reason"] and records[1]["evidence"]["gate"]["value"] == 120.0
    unsupported = {**records[1], "id": "CM-21.3", "status": "UNSUPPORTED", "reason": "no itl"}
    as_records = [Record.from_json(r) for r in records + [unsupported]] + [rec("CM-10.1.1", "PASS")]
    run = run_of(tmp_path / "results.jsonl", as_records,
                 artifacts=[("Load", "smoke", for_report(_result(), ["load/smoke/load.json"]))])
    write_all(run, tmp_path, None)
    suites = {s.name: s for s in JUnitXml.fromfile(str(tmp_path / "junit.xml"))}
    load = suites["Load"]
    assert (load.tests, load.failures, load.skipped) == (3, 2, 1)
    cases = {c.name: c for c in load}
    assert isinstance(cases["test_load_gate[CM-21.2]"].result[0], Failure)
    assert cases["test_load_gate[CM-21.2]"].result[0].message.startswith("CM-21.2 FAIL: smoke: measured 120.0")
    assert isinstance(cases["test_load_gate[CM-21.3]"].result[0], Skipped)
    assert suites["Conformance"].tests == 1   # the claims' suite is beside it
    html, md = (tmp_path / "report.html").read_text(), (tmp_path / "report.md").read_text()
    assert 'id="load-smoke"' in html and "<polyline" in html and "tpot counts usage tokens" in html and 'href="#CM-21.2"' in html
    assert "## Load: profile smoke" in md and "| ttft | gateway | 98 |" in md and "| ttft | direct | 98 |" in md
    assert "| CM-21.2: ttft p99 <= 100 ms | 120.0 at 9.5 rps | FAIL |" in md   # the gate row shows metric and bound
    # The per-hop table: where the TTFT went, with what the gateway added on each side.
    assert "| out | gateway | 250.00 | 250.00 |" in md and "| out | **added** | +249.00 |" in md
    assert "Where the time to first token went" in html and "<td><b>+249.00</b></td>" in html
    floor = ("event-loop lag p50 0.2 ms, p99 1.5 ms; send lag p50 0.1 ms, p99 0.9 ms; CPU 42% of a core per generator "
             "process; direct TTFT above the script by p50 2.0 ms, p99 6.5 ms")
    assert f"is not judged): {floor}." in md and floor in html


def test_several_profiles_one_claim_per_gate_failing_if_any_profile_fails(tmp_path):
    smoke = _result()
    smoke["gates"][0].update(status="PASS", reason="measured 80.0 at 9.5 rps")
    smoke["buffering"] = {"status": "PASS", "reason": "tokens flow"}
    stepped = {**_result(), "profile": {**_result()["profile"], "name": "stepped"}}   # CM-21.2 FAILs here
    both = claims.combine([claims.records(smoke, 5.0), claims.records(stepped, 7.0)])
    assert [(r["id"], r["status"]) for r in both] == [("CM-21.1", "FAIL"), ("CM-21.2", "FAIL")]
    assert both[1]["reason"] == "smoke: measured 80.0 at 9.5 rps; stepped: measured 120.0 at 9.5 rps"
    assert [e["profile"] for e in both[1]["evidence"]["profiles"]] == ["smoke", "stepped"]
    assert claims.combine([claims.records(smoke, 5.0)]) == claims.records(smoke, 5.0)   # one profile: as it was
    loads = [("Load", r["profile"]["name"], for_report(r, [f"load/{r['profile']['name']}/load.json"])) for r in (smoke, stepped)]
    write_all(run_of(tmp_path / "results.jsonl", [Record.from_json(r) for r in both], artifacts=loads), tmp_path, None)
    html, md = (tmp_path / "report.html").read_text(), (tmp_path / "report.md").read_text()
    assert 'id="load-smoke"' in html and 'id="load-stepped"' in html and html.count("<polyline") >= 2
    assert "## Load: profile smoke" in md and "## Load: profile stepped" in md


def test_a_fanout_profile_shows_p95_and_p99_across_the_fan(tmp_path):
    fan = _result()
    fan["profile"] = {**fan["profile"], "name": "responses-fanout", "user": "FanoutStreamUser", "fanout": 8,
                      "protocol": "openai_responses"}
    for name, slow in (("gateway", 900.0), ("direct", 300.0)):
        fan[name] = {**fan[name], "table": {**fan[name]["table"], "fan": {"count": 12, **{c: slow for c in COLUMNS}, "mean": slow},
                                            "fan_ttft": {"count": 12, **{c: slow / 3 for c in COLUMNS}, "mean": slow / 3}}}
    records = [Record.from_json(r) for r in claims.records(fan, 5.0)]
    write_all(run_of(tmp_path / "results.jsonl", records,
                     artifacts=[("Load", "responses-fanout", for_report(fan, ["load/responses-fanout/load.json"]))]), tmp_path, None)
    html, md = (tmp_path / "report.html").read_text(), (tmp_path / "report.md").read_text()
    line = ("Across the fan (8 concurrent openai_responses streams per request, 12 fans): the slowest stream of a fan "
            "was done at p95 900.0 ms, p99 900.0 ms; the fan's last first token came at p95 300.0 ms, p99 300.0 ms "
            "(straight at the provider: p95 300.0 ms, p99 300.0 ms).")
    assert line in md and "<b>Across the fan</b>" in html and "p99 900.0 ms" in html
    assert "in no figure" not in md
    # Fans whose streams did not all finish have no figure: the line says how many there were.
    fan["gateway"]["counts"] = {**fan["gateway"]["counts"], "fans_incomplete": 3}
    out = tmp_path / "incomplete"
    write_all(run_of(tmp_path / "results2.jsonl", [Record.from_json(r) for r in claims.records(fan, 5.0)],
                     artifacts=[("Load", "responses-fanout", for_report(fan, ["load/responses-fanout/load.json"]))]), out, None)
    for f in ("report.md", "report.html"):
        assert "12 fans; 3 more had streams that never finished and are in no figure)" in (out / f).read_text(), f


def test_load_lane_takes_one_profile_or_several(tmp_path):
    base, _ = load(None)
    # The embedded target runs the chat smoke profile and a fanout on the Responses API beside it.
    assert base.load is not None and base.load.names == ["smoke", "responses-fanout"]
    import yaml
    data = base.model_dump(mode="json", exclude_none=True)
    for lane, expect in (({"profiles": ["smoke", "stepped"]}, ["smoke", "stepped"]), ({"profile": "open"}, ["open"])):
        data["load"] = lane
        (tmp_path / "h.yaml").write_text(yaml.safe_dump(data))
        assert load(tmp_path / "h.yaml")[0].load.names == expect
    for lane, phrase in (({"profile": "open", "profiles": ["smoke"]}, "not both"),
                         ({"profiles": ["smoke", "smoke"]}, "named twice")):
        data["load"] = lane
        (tmp_path / "h.yaml").write_text(yaml.safe_dump(data))
        with pytest.raises(ConfigError, match=phrase):
            load(tmp_path / "h.yaml")


def test_a_broken_load_run_is_an_error_on_every_load_claim(tmp_path):
    cfg = _cfg(tmp_path, "[{metric: ttft, percentile: 99, max_ms: 200}]")
    got = claims.errors(cfg, "smoke", "the load run failed: RuntimeError: locust wrote no result")
    assert [(r["id"], r["status"]) for r in got] == [("CM-21.1", "ERROR"), ("CM-21.2", "ERROR")]


def test_red_smoke_cells_are_findings_in_the_main_report(tmp_path):
    cell = {"row": "gemini/g", "protocol": "openai_chat", "stream": True, "status": "FAIL", "reason": "the answer carried no text",
            "evidence": {}}
    smoke = {"matrix": {"name": "m", "description": "d", "protocols": ["openai_chat"], "streaming": [True]},
             "rows": [{"name": "gemini/g", "provider": "gemini", "kind": "gemini", "upstream": "g", "cost_usd": 0.0,
                       "cheapest": True, "alias_of": None}],
             "columns": [{"protocol": "openai_chat", "stream": True}], "cells": [cell],
             "catalog": [{"id": "catalog.listed", "claim": "listed", "status": "PASS", "reason": "ok", "evidence": {}}],
             "files": ["smoke/smoke.html", "smoke/smoke.md", "smoke/smoke.json"]}
    from harness.lanes.smoke import cell_record
    records = [cell_record("m", cell), cell_record("m", smoke["catalog"][0], catalog=True)]
    write_all(run_of(tmp_path / "results.jsonl", records, artifacts=[("Smoke", "m", smoke)]), tmp_path, None)
    md, html = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    findings = md.split("## Findings by cause")[1].split("## Counts")[0]
    assert "SMOKE-gemini/g/openai_chat/stream" in findings and "the answer carried no text" in findings
    assert 'href="smoke/smoke.html#ev-0"' in html and 'id="SMOKE-gemini/g/openai_chat/stream"' in html
