"""Drives eddy's dashboard in headless Chromium (Playwright) the way a user reads it.

Usage: check.py URL TOKEN EXPECT_JSON SCREENSHOT

EXPECT_JSON names what the page must show once its polling has caught up:
  {"stream": [name, events], "group": [group, stream, lag], "job": [name, state, input],
   "chart": [table, time column, value column], "chart_total": legend without a key,
   "chart_key": [key column, legend with it], "query": [sql, first cell],
   "query_error": [bad sql, the error it must show]}
and the page asked for with a wrong token must be refused (401) without data. Prints one line per
check that passed; exits 1 with the page's text on the first that does not pass within the
timeout, leaving a screenshot at SCREENSHOT either way.
"""

import json
import sys

from playwright.sync_api import Error, sync_playwright

TIMEOUT_MS = 30_000
# Debian's Chromium on a closed network: no background connections, no sandbox as root.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def row_with(page, tbody_id, cells):
    """Waits for a row of tbody `tbody_id` whose first cells read `cells`, in order."""
    page.wait_for_function(
        """([id, want]) => [...document.getElementById(id).rows].some((r) =>
             want.every((w, i) => r.cells[i] && r.cells[i].textContent.trim() === w))""",
        arg=[tbody_id, cells],
        timeout=TIMEOUT_MS,
    )


def cell_of(page, tbody_id, first, column):
    """The text of column `column` in the row of tbody `tbody_id` starting with `first`."""
    return page.evaluate(
        """([id, first, col]) => {
             const r = [...document.getElementById(id).rows]
               .find((r) => r.cells[0].textContent.trim() === first);
             return r ? r.cells[col].textContent.trim() : null;
           }""",
        [tbody_id, first, column],
    )


def run_query(page, sql, done, arg=None):
    """Types `sql` into the query box, runs it and waits until `done(arg)` holds on the page."""
    page.fill("#sql", sql)
    page.click("#run")
    page.wait_for_function(done, arg=arg, timeout=TIMEOUT_MS)


def main():
    url, token, expect, screenshot = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    number = lambda n: f"{n:,}"  # Intl.NumberFormat in the en-US locale
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(locale="en-US", viewport={"width": 1280, "height": 1400})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        step = "load"
        try:
            page.goto(f"{url}/?token={token}")
            step = "status line"
            page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('updated')",
                timeout=TIMEOUT_MS,
            )
            print("status: polling the API")

            step = "streams table"
            name, events = expect["stream"]
            row_with(page, "streams", [name, "1", number(events)])
            print(f"streams: {name} with {events} events")

            step = "consumer groups table"
            group, stream, lag = expect["group"]
            row_with(page, "groups", [group, stream])
            page.wait_for_function(
                """([g, lag]) => [...document.getElementById('groups').rows]
                     .filter((r) => r.cells[0].textContent.trim() === g)
                     .reduce((a, r) => a + Number(r.cells[5].textContent.replace(/,/g, '')), 0) === lag""",
                arg=[group, lag],
                timeout=TIMEOUT_MS,
            )
            print(f"groups: {group} on {stream} lags {lag}")

            step = "jobs table"
            job, state, inputs = expect["job"]
            row_with(page, "jobs", [job, state, number(inputs)])
            watermark = cell_of(page, "jobs", job, 8)
            if not watermark or watermark == "—":
                raise AssertionError(f"job {job} shows no watermark")
            print(f"jobs: {job} {state}, {inputs} events in, watermark {watermark}")

            step = "live chart"
            table, time, value = expect["chart"]
            page.wait_for_function(
                """(t) => [...document.getElementById('chart-table').options].some((o) => o.value === t)""",
                arg=table,
                timeout=TIMEOUT_MS,
            )
            page.select_option("#chart-table", table)
            page.select_option("#chart-time", time)
            page.select_option("#chart-value", value)
            page.wait_for_selector("#chart canvas", timeout=TIMEOUT_MS)
            legend = """() => [...document.querySelectorAll('#chart .u-legend .u-series .u-label')]
                          .slice(1).map((l) => l.textContent).join(',')"""
            # Several rows per time (one per key) and no "Series by": one summed series.
            page.wait_for_function(f"({legend})() === {json.dumps(expect['chart_total'])}", timeout=TIMEOUT_MS)
            page.select_option("#chart-key", expect["chart_key"][0])
            page.wait_for_function(f"({legend})() === {json.dumps(expect['chart_key'][1])}", timeout=TIMEOUT_MS)
            print(f"chart: {value} over {time} of {table} drawn, series {expect['chart_key'][1]}")

            step = "query box"
            sql, first = expect["query"]
            run_query(
                page,
                sql,
                """(want) => { const r = document.getElementById('result').rows;
                     return r.length > 1 && r[1].cells[0].textContent === want; }""",
                first,
            )
            print(f"query: first cell {first}")

            step = "query error"
            bad_sql, message = expect["query_error"]
            run_query(page, bad_sql, "() => document.getElementById('query-error').textContent.length > 0")
            shown = page.text_content("#query-error")
            if shown != message:
                raise AssertionError(f"query error {shown!r}, expected {message!r}")
            print(f"query error: {shown}")

            step = "wrong token"
            other = browser.new_page(locale="en-US")
            answer = other.goto(f"{url}/?token=wrong-{token}")
            body = other.content()
            if answer is None or answer.status != 401 or expect["stream"][0] in body:
                raise AssertionError(f"a wrong token got {answer and answer.status}: {body[:200]}")
            print(f"wrong token: {answer.status}, no page")
            other.close()

            if errors:
                raise AssertionError(f"script errors on the page: {errors}")
        except (Error, AssertionError) as e:
            page.screenshot(path=screenshot, full_page=True)
            print(f"dashboard check failed at the {step}: {e}", file=sys.stderr)
            print(page.inner_text("main"), file=sys.stderr)
            sys.exit(1)
        page.screenshot(path=screenshot, full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
