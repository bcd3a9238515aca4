"""The report from a results stream: decision first, counts that add up, findings grouped by
cause, the lists by kind, JUnit read back with a JUnit library, waivers, history, partial runs."""
from __future__ import annotations

import json
import subprocess
import sys

from junitparser import Error, Failure, JUnitXml, Skipped

from harness.outputs import write_all
from harness.report.view import build
from harness.results.stream import read
from harness.secrets import Redactor
from runs import catalog_row, rec, run_of, write_run

RECORDS = [rec("CM-10.1.1", "PASS"), rec("CM-10.1.2", "FAIL", risk="revenue", wave="P0", reason="usage | off"),
           rec("CM-10.1.3", "SAFE", risk="reliability", wave="P2"), rec("CM-9.1.1", "UNSUPPORTED", section="9. Catalog"),
           rec("CM-9.1.4", "ERROR", section="9. Catalog", reason="not judged: the provider was not serving"),
           rec("CM-21.2", "PASS", section="Load and release gates", lane="Load"),
           rec("SMOKE-a/openai_chat/plain", "FAIL", section="Smoke matrix m", lane="Smoke", wave="P1",
               reason="the answer carried no text")]
CATALOG = [catalog_row(r) for r in RECORDS] + [catalog_row(rec("CM-9.1.2", "MISSING", section="9. Catalog", check=None)),
                                              catalog_row(rec("CM-9.1.3", "PASS", section="9. Catalog"))]


def test_counts_add_up_and_the_heatmap_has_every_status(tmp_path):
    view = build(run_of(tmp_path / "r.jsonl", RECORDS, catalog=CATALOG))
    c = view["counts"]
    assert (c["PASS"], c["FAIL"], c["SAFE"], c["UNSUPPORTED"], c["ERROR"], c["MISSING"], c["NOT RUN"]) == (2, 2, 1, 1, 1, 1, 1)
    assert view["total"] == 9 == sum(c.values())
    catalog = next(h for h in view["heat"] if h["section"] == "9. Catalog")
    assert catalog["total"] == 4 == sum(catalog["counts"].values())   # ERROR and NOT RUN have columns too


def test_decision_blocks_on_a_p0_fail_and_lists_each_kind_apart(tmp_path):
    view = build(run_of(tmp_path / "r.jsonl", RECORDS, catalog=CATALOG))
    assert view["decision"]["verdict"] == "BLOCKED"
    assert {r.id for r in view["blocking"]} == {"CM-10.1.2", "SMOKE-a/openai_chat/plain"}   # P2 SAFE does not block
    assert [r.id for r in view["errors"]] == ["CM-9.1.4"] and [r.id for r in view["unsupported"]] == ["CM-9.1.1"]
    assert [r.id for r in view["safes"]] == ["CM-10.1.3"]
    ok = build(run_of(tmp_path / "ok.jsonl", [rec("CM-1", "PASS"), rec("CM-2", "SAFE", wave="P3")]))
    assert ok["decision"]["verdict"] == "CLEARED" and "1 non-blocking" in ok["decision"]["why"]
    unjudged = build(run_of(tmp_path / "nj.jsonl", [rec("CM-1", "PASS"), rec("CM-2", "ERROR", wave="P0")]))
    assert unjudged["decision"]["verdict"] == "NOT CLEARED"


def test_markdown_opens_with_the_decision_and_themes(tmp_path):
    write_all(run_of(tmp_path / "results.jsonl", RECORDS, catalog=CATALOG), tmp_path, None)
    md = (tmp_path / "report.md").read_text()
    lines = [line for line in md.splitlines() if line.strip()]
    assert lines[0].startswith("# Gateway test report: gw") and lines[1].startswith("**Release gate: BLOCKED**")
    assert md.index("## Themes") < md.index("## Findings by cause") < md.index("## Not judged (ERROR)") < md.index("## Counts")
    assert "usage \\| off" in md          # pipes escaped inside table cells
    assert "Not promised (UNSUPPORTED)" in md and "declare it in promises:" in md
    assert "harness bug" not in md
    findings = md.split("## Findings by cause")[1].split("## Not judged")[0]
    assert "CM-10.1.2" in findings and "SMOKE-a/openai_chat/plain" in findings and "CM-9.1.4" not in findings
    assert md.count("usage \\| off") == 2   # once under its cause, once in the claim-by-claim table


def test_findings_that_share_a_cause_are_one_group_with_the_gateways_log_lines(tmp_path):
    t0 = 1_700_000_000.0
    import datetime as dt
    clock = dt.datetime.fromtimestamp(t0).strftime("%H:%M:%S")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "gateway.log").write_text(
        f"{clock} - Proxy:INFO: startup\n"
        f"{clock} - Proxy:ERROR: auth.py:207 - proxy.user_api_key_auth(): Exception occured - No api key passed in.\n"
        "Traceback (most recent call last):\n"
        f"{clock} - Proxy:ERROR: auth.py:207 - proxy.user_api_key_auth(): Exception occured - No connected db.\n")

    def ex(status, body):
        return {"exchange": {"request": {"method": "POST", "body": {}}, "status": status, "body": body}}
    records = [rec("CM-1.1", "FAIL", section="1. Auth", risk="security", reason="no key: HTTP 500",
                   evidence=ex(500, "Internal Server Error"), started_at=t0, finished_at=t0 + 0.2),
               rec("CM-1.2", "FAIL", section="1. Auth", risk="security", reason="wrong key: HTTP 400",
                   evidence=ex(400, json.dumps({"error": {"message": "No connected db."}})), started_at=t0, finished_at=t0 + 0.3),
               rec("CM-10.2.1", "FAIL", check="stream.done", reason="the stream ended without [DONE] after 3 chunks"),
               rec("CM-10.2.2", "FAIL", check="stream.done", reason="the stream ended without [DONE] after 5 chunks"),
               rec("CM-10.2.3", "FAIL", check="other", reason="something else")]
    view = write_all(run_of(tmp_path / "results.jsonl", records), tmp_path, None)
    groups = {tuple(r.id for r in g["records"]): g for g in view["groups"]}
    assert set(groups) == {("CM-1.1", "CM-1.2"), ("CM-10.2.1", "CM-10.2.2"), ("CM-10.2.3",)}
    auth = groups[("CM-1.1", "CM-1.2")]
    assert [n for n, _ in auth["log_lines"]] == [2, 4] and "user_api_key_auth" in auth["title"]
    md = (tmp_path / "report.md").read_text()
    assert "2: " in md and "No connected db." in md.split("## Findings by cause")[1]


def test_junit_has_every_lane_and_only_pass_passes(tmp_path):
    write_all(run_of(tmp_path / "results.jsonl", RECORDS, catalog=CATALOG), tmp_path, None)
    xml = JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    suites = {s.name: s for s in xml}
    assert set(suites) == {"Conformance", "Load", "Smoke"}
    results = {}
    for s in xml:
        for case in s:
            results[case.name.split("[")[1].rstrip("]")] = case.result
    assert len(results) == 9
    assert results["CM-10.1.1"] == [] and results["CM-21.2"] == []
    assert isinstance(results["CM-10.1.3"][0], Failure) and results["CM-10.1.3"][0].type == "SAFE"   # SAFE is no pass
    assert isinstance(results["CM-9.1.1"][0], Skipped)                                              # nor UNSUPPORTED
    assert isinstance(results["CM-9.1.4"][0], Error) and isinstance(results["SMOKE-a/openai_chat/plain"][0], Failure)
    assert isinstance(results["CM-9.1.3"][0], Skipped)   # NOT RUN: in the catalog, not judged
    assert sum(1 for r in results.values() if r == []) == 2 == xml.tests - xml.failures - xml.errors - xml.skipped


def test_a_waived_fail_does_not_block_until_it_expires(tmp_path):
    waiver = {"id": "CM-10.1.2", "reason": "known, fixed in 2.0", "expires": "1970-01-30", "issue": "https://x/1"}
    records = [rec("CM-10.1.2", "FAIL", wave="P0")]
    active = build(run_of(tmp_path / "a.jsonl", records, meta={"waivers": [waiver]}, started_at=86400.0 * 10))
    assert active["decision"]["verdict"] == "CLEARED" and [r.id for r in active["waived"]] == ["CM-10.1.2"]
    assert not active["failing"]
    expired = build(run_of(tmp_path / "b.jsonl", records, meta={"waivers": [waiver]}, started_at=86400.0 * 40))
    assert expired["decision"]["verdict"] == "BLOCKED" and [r.id for r in expired["expired"]] == ["CM-10.1.2"]
    write_all(run_of(tmp_path / "results.jsonl", records, meta={"waivers": [waiver]}, started_at=86400.0 * 10), tmp_path, None)
    (case,) = list(next(iter(JUnitXml.fromfile(str(tmp_path / "junit.xml")))))
    assert isinstance(case.result[0], Skipped) and "WAIVED until 1970-01-30" in case.result[0].message


def test_a_second_run_says_no_change_or_exactly_what_changed(tmp_path):
    history = tmp_path / "history"
    first = [rec("CM-1", "PASS"), rec("CM-2", "FAIL"), rec("CM-3", "PASS")]
    out1 = tmp_path / "one"
    view = write_all(run_of(out1 / "results.jsonl", first, started_at=1000.0), out1, history, out1 / "results.jsonl")
    assert view["history"] is None          # nothing to compare with yet
    out2 = tmp_path / "two"
    same = write_all(run_of(out2 / "results.jsonl", first, started_at=2000.0), out2, history, out2 / "results.jsonl")
    assert same["history"]["none"] and "No change since the previous run" in (out2 / "report.md").read_text()
    planted = [rec("CM-1", "PASS"), rec("CM-2", "FAIL"), rec("CM-3", "ERROR", reason="not judged: x")]
    out3 = tmp_path / "three"
    changed = write_all(run_of(out3 / "results.jsonl", planted, started_at=3000.0), out3, history, out3 / "results.jsonl")
    h = changed["history"]
    assert h["same_gateway_and_catalog"] and [(c["id"], c["from"], c["to"]) for c in h["flaky"]] == [("CM-3", "PASS", "ERROR")]
    assert not (h["new_findings"] or h["fixed"] or h["newly_covered"] or h["changed"])
    new_gateway = [rec("CM-1", "FAIL"), rec("CM-2", "PASS"), rec("CM-3", "PASS")]
    out4 = tmp_path / "four"
    v4 = write_all(run_of(out4 / "results.jsonl", new_gateway, started_at=4000.0,
                          meta={"gateway": {"name": "gw", "version": "2.0"}}), out4, history, out4 / "results.jsonl")
    assert [c["id"] for c in v4["history"]["new_findings"]] == ["CM-1"] and [c["id"] for c in v4["history"]["fixed"]] == ["CM-2"]
    html = (out4 / "report.html").read_text()
    assert 'id="changes"' in html and html.count('class="trend"') == 3   # per-claim status over the kept runs


def test_report_from_an_unfinished_stream_is_marked_partial(tmp_path):
    records = [rec("CM-1", "PASS"), rec("CM-2", "FAIL", wave="P0")]
    path = write_run(tmp_path / "results.jsonl", records, finished=False,
                     catalog=[catalog_row(r) for r in records] + [catalog_row(rec("CM-3", "PASS"))],
                     meta={"planned": {"claims": ["CM-1", "CM-2", "CM-3"]}})
    with open(path, "a") as f:
        f.write('{"type": "record", "id": "CM-4", "lane"')   # torn: the process died mid-write
    r = subprocess.run([sys.executable, "-m", "harness", "report", "--from", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "(partial run)" in r.stdout
    md = (tmp_path / "report.md").read_text()
    assert "**Partial run**" in md and "1 planned claims were never reached" in md
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["partial"] and {c["id"]: c["status"] for c in results["claims"]} == {"CM-1": "PASS", "CM-2": "FAIL",
                                                                                        "CM-3": "NOT RUN"}


def test_report_refuses_a_bad_stream_with_one_line(tmp_path):
    bad = tmp_path / "results.jsonl"
    bad.write_text("not json\n")
    r = subprocess.run([sys.executable, "-m", "harness", "report", "--from", str(bad)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "results.jsonl:1: not a results line" in r.stderr and "Traceback" not in r.stderr


def test_html_escapes_gateway_content(tmp_path):
    write_all(run_of(tmp_path / "results.jsonl", [rec("CM-1", "FAIL", reason="<script>alert(1)</script>")]), tmp_path, None)
    html = (tmp_path / "report.html").read_text()
    assert "<script>alert(1)" not in html and 'id="CM-1"' in html and 'href="#cause-CM-1"' in html


def test_secrets_never_reach_the_stream(tmp_path):
    from harness.results.stream import StreamWriter
    red = Redactor(["sk-harness-0123456789abcdef"])
    w = StreamWriter(tmp_path / "results.jsonl", red.data)
    w.start({"command": "harness run"})
    w.record(rec("CM-1", "FAIL", reason="echoed sk-harness-0123456789abcdef", evidence={"h": "Bearer sk-other-abcdefgh1"}))
    w.close()
    text = (tmp_path / "results.jsonl").read_text()
    assert "0123456789abcdef" not in text and "sk-other-abcdefgh1" not in text
    assert read(tmp_path / "results.jsonl").records[0].status == "FAIL"


def test_redactor_removes_known_and_key_like_secrets():
    r = Redactor(["sk-harness-0123456789abcdef"])
    data = {"a": "key sk-harness-0123456789abcdef here", "headers": {"Authorization": "Bearer xyz-secret-token"},
            "b": ["Bearer sk-unregistered-abcdefgh"]}
    out = json.dumps(r.data(data))
    assert "0123456789abcdef" not in out and "xyz-secret-token" not in out and "unregistered-abcdefgh" not in out


def test_a_gateway_failing_every_stream_is_one_cause(tmp_path):
    why = "expected a 2xx answer, got HTTP 500"
    records = [rec(f"CM-10.2.{i}", "FAIL", check=check, reason=why)
               for i, check in enumerate(["openai_stream.shape", "openai_stream.content_type", "openai_stream.text_equals_plain",
                                          "openai_stream.shape"], 1)]
    records.append(rec("CM-15.1.1", "FAIL", check="errors.refused_cleanly", reason=why))   # another family: apart
    view = build(run_of(tmp_path / "r.jsonl", records))
    assert sorted(len(g["records"]) for g in view["groups"]) == [1, 4]
