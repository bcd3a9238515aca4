"""The HTML report in a real browser (headless Chromium over CDP): it shows without console errors,
and a finding's link lands on its evidence. The detector itself is proven on a page that throws."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.outputs import write_all
from test_report import CATALOG, RECORDS   # the report tests' run: a P0 FAIL (CM-10.1.2) with evidence, and more
from runs import run_of

pytestmark = pytest.mark.timeout(120)

FINDING = "CM-10.1.2"          # the P0 FAIL of RECORDS: listed under its cause, with evidence in the mapping
# "In view": the element's top within [0, innerHeight), less one pixel for sub-pixel scrolling (a scrolled-to
# row's top reads -0.3125).
IN_VIEW = """(() => {{
    const el = document.getElementById({id!r});
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return {{top: r.top, bottom: r.bottom, h: innerHeight, evidence: !!el.querySelector("details pre")}};
}})()"""


def render_report(out: Path) -> Path:
    write_all(run_of(out / "results.jsonl", RECORDS, catalog=CATALOG), out, None)
    return out / "report.html"


@pytest.fixture
def report(tmp_path):
    return render_report(tmp_path)


def test_report_displays_without_console_errors(browser, report):
    browser.navigate(report.as_uri())
    browser.pump(0.3)                       # errors from timers or late scripts, too
    assert browser.errors == [], browser.format_errors()
    assert browser.evaluate(f"!!document.getElementById({FINDING!r})")      # it did render: the finding's row
    assert "usage | off" in browser.evaluate("document.body.innerText")


def test_finding_link_lands_on_its_evidence(browser, report):
    browser.set_viewport(1000, 400)         # short enough that the evidence starts out of view
    browser.navigate(report.as_uri())
    before = browser.evaluate(IN_VIEW.format(id=FINDING))
    assert before is not None, f"the report has no element with id {FINDING!r} (the finding's evidence)"
    assert before["top"] >= before["h"], f"evidence already in view before the click, the test proves nothing: {before}"
    link = f'#findings a[href="#{FINDING}"]'   # the finding under its cause links to its evidence
    assert "usage | off" in browser.evaluate(f"document.querySelector({link!r}).closest('li').textContent")
    browser.click(link)
    browser.wait_for(f"location.hash === '#{FINDING}'", timeout=10)
    after = browser.wait_for(f"(() => {{ const v = {IN_VIEW.format(id=FINDING)}; "
                             "return v && v.top > -1 && v.top < v.h ? v : null; })()", timeout=10)
    assert after["evidence"], "the finding's row has no evidence block"
    assert browser.errors == [], browser.format_errors()


def test_deep_link_to_finding_scrolls_to_it(browser, report):
    browser.set_viewport(1000, 400)
    browser.navigate(f"{report.as_uri()}#{FINDING}")
    v = browser.wait_for(f"(() => {{ const v = {IN_VIEW.format(id=FINDING)}; "
                         "return v && v.top > -1 && v.top < v.h ? v : null; })()", timeout=10)
    assert v["evidence"] and browser.evaluate("scrollY") > 0
    assert browser.errors == [], browser.format_errors()


def test_detector_reports_page_errors(browser, tmp_path):
    """The checks above can fail: a page that logs an error and throws is caught, a clean one is not."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><title>bad</title><script>console.error('boom-console');"
                   "setTimeout(() => { throw new Error('boom-later'); }, 50);"
                   "throw new Error('boom-uncaught');</script>")
    browser.navigate(bad.as_uri())
    browser.pump(0.5)
    texts = " | ".join(str(e["text"]) for e in browser.errors)
    assert "boom-console" in texts and "boom-uncaught" in texts and "boom-later" in texts, browser.format_errors()
    assert {e["source"] for e in browser.errors} >= {"console.error", "exception"}

    good = tmp_path / "good.html"
    good.write_text("<!doctype html><title>good</title><p id=x>ok</p><script>console.log('fine')</script>")
    browser.navigate(good.as_uri())         # a new page: errors of the last one are cleared
    browser.pump(0.2)
    assert browser.errors == [], browser.format_errors()
    with pytest.raises(LookupError):
        browser.click("a#nowhere")
