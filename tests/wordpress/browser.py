#!/usr/bin/env python3
"""Tools -> Database Config in Debian's Chromium, driven by Playwright (never downloads a
browser). Prints "ok - " / "not ok - " lines; screenshots and page HTML go to
tests/artifacts/wordpress/. Every request the browser makes outside 127.0.0.1 is aborted.

Environment: WP_URL, WP (the site folder), PROXY_URL, ADMIN_PASS, SUBSCRIBER_PASS, CANARY,
ARTIFACTS (optional, the folder for screenshots).
"""
import json
import os
import sys
import urllib.parse
import urllib.request

from playwright.sync_api import sync_playwright

WP_URL = os.environ["WP_URL"]
WP = os.environ["WP"]
CANARY = os.environ["CANARY"]
ARTIFACTS = os.environ.get("ARTIFACTS") or os.path.join(os.getcwd(), "tests", "artifacts", "wordpress")
TOOLS = WP_URL + "/wp-admin/tools.php?page=ssm-db-config"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
results = []
shots = 0


def check(name, ok, note=""):
    results.append(ok)
    print(("ok - " if ok else "not ok - ") + "browser: " + name + (f" ({note})" if note and not ok else ""), flush=True)


def fetch_count():
    with urllib.request.urlopen(os.environ["PROXY_URL"] + "/__proxy/counts", timeout=5) as r:
        return json.load(r)["by_target"].get("AmazonSSM.GetParameter", 0)


def save(page, name):
    """Screenshot and HTML of the page; the HTML is also checked for the canary."""
    global shots
    shots += 1
    base = os.path.join(ARTIFACTS, f"{shots:02d}-{name}")
    page.screenshot(path=base + ".png", full_page=True)
    html = page.content()
    with open(base + ".html", "w") as f:
        f.write(html)
    check(f"page '{name}' does not contain the database password", CANARY not in html)
    return html


def field(page, name):
    return page.locator(f'[data-field="{name}"]').first.inner_text().strip()


def login(page, user, password):
    """Logs in; tries a second time if the first attempt lands on the login form again
    (seen rarely: the log-in is not what these tests are about, and a second failure still
    fails the check that follows)."""
    for attempt in (1, 2):
        page.goto(WP_URL + "/wp-login.php")
        page.fill("#user_login", user)
        page.fill("#user_pass", password)
        with page.expect_navigation(wait_until="load"):
            page.click("#wp-submit")
        if "/wp-admin" in page.url:
            return
        error = page.locator("#login_error")
        reason = error.first.inner_text().strip()[:200] if error.count() else "no error shown"
        print(f"# login as {user}, attempt {attempt}, landed on {page.url}: {reason}", flush=True)


def main():
    os.makedirs(ARTIFACTS, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        outside = []

        def only_loopback(route):
            host = urllib.parse.urlsplit(route.request.url).hostname
            if host == "127.0.0.1":
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", only_loopback)
        page = context.new_page()
        js_errors = []
        page.on("pageerror", lambda e: js_errors.append(str(e)[:200]))

        # --- administrator ---
        login(page, "admin", os.environ["ADMIN_PASS"])
        check("admin logs in", "/wp-admin" in page.url, page.url)
        response = page.goto(TOOLS)
        check("Tools -> Database Config answers 200", response.status == 200, str(response.status))
        check("the page has its heading", page.locator("#ssm-db-config h1").inner_text().strip() == "Database Config")
        check("the menu has the entry under Tools", page.locator('#menu-tools a[href="tools.php?page=ssm-db-config"]').count() == 1)
        html = save(page, "admin-status")
        check("status shows the parameter", field(page, "parameter") == "/wp/db", field(page, "parameter"))
        check("status shows the region", field(page, "region") == "us-east-1", field(page, "region"))
        check("status shows the extension version", field(page, "version") != "")
        check("status says whether the value is fresh", page.locator('[data-field="freshness"]').get_attribute("data-code") in ("fresh", "stale"))
        check("the database user is shown", field(page, "user") == "wp", field(page, "user"))
        check("the live check finds a writer", page.locator('[data-field="connectivity"]').get_attribute("data-reason") == "writer")
        check("the live check shows its latency", " ms)" in field(page, "connectivity"))

        pid, fetches, before = field(page, "pid"), int(field(page, "fetches")), fetch_count()
        # The extension answers a refresh with a value fetched within the last second instead
        # of fetching again: let the cached value be older than that.
        page.wait_for_timeout(1100)
        with page.expect_navigation(wait_until="load"):
            page.click("#ssm-db-config-refresh input[type=submit]")
        save(page, "admin-after-refresh")
        notice = page.locator("#ssm-db-config-action")
        check("Refresh now reports a fetch", notice.count() == 1 and notice.get_attribute("data-code") == "fetched")
        check("Refresh now made exactly one SSM request", fetch_count() - before == 1, str(fetch_count() - before))
        check("the fetch count on the page rose by one",
              field(page, "pid") == pid and int(field(page, "fetches")) == fetches + 1,
              f"{pid}:{fetches} -> {field(page, 'pid')}:{field(page, 'fetches')}")

        # A forged POST (the admin's cookies, no nonce) changes nothing.
        before = fetch_count()
        forged = page.request.post(TOOLS, form={"ssm_db_config_action": "refresh"})
        check("a forged refresh POST without a nonce is refused with 403", forged.status == 403, str(forged.status))
        check("the forged POST made no SSM request", fetch_count() == before)
        check("the forged POST's answer has no password", CANARY not in forged.text())
        forged = page.request.post(TOOLS, form={"ssm_db_config_action": "install", "dropin": "db.php"})
        check("a forged install POST without a nonce is refused with 403", forged.status == 403, str(forged.status))
        check("the forged install wrote nothing", not os.path.exists(os.path.join(WP, "wp-content", "db.php")))

        # Install the db.php drop-in from the page.
        check("db.php is shown as not installed", page.locator('tr[data-dropin="db.php"]').get_attribute("data-state") == "absent")
        with page.expect_navigation(wait_until="load"):
            page.click("#ssm-db-config-install-dbphp")
        save(page, "admin-dropin-installed")
        check("installing db.php reports success", page.locator("#ssm-db-config-action").get_attribute("data-code") == "installed")
        check("db.php is now in wp-content", os.path.exists(os.path.join(WP, "wp-content", "db.php")))
        check("the page shows db.php as ours", page.locator('tr[data-dropin="db.php"]').get_attribute("data-state") == "ours")
        check("the page says failovers are retried in the request", page.locator("#ssm-db-config-failover").get_attribute("data-mode") == "retry")
        response = page.goto(WP_URL + "/")
        check("the site still works with the db.php drop-in", response.status == 200, str(response.status))

        # Site Health: our direct tests and the async REST test, and the Info section.
        page.goto(WP_URL + "/wp-admin/site-health.php")
        try:
            page.wait_for_selector("text=The database is reachable and accepts writes", state="attached", timeout=20000)
            async_ok = True
        except Exception:
            async_ok = False
        save(page, "site-health-status")
        check("Site Health ran the async database test over REST", async_ok)
        check("Site Health shows the extension test", page.locator("text=The ssm_db_config extension is loaded").count() >= 1)
        nonce = page.evaluate("() => (window.wpApiSettings && wpApiSettings.nonce) || ''")
        rest = WP_URL + "/?rest_route=/ssm-db-config/v1/site-health/database"
        with_nonce = page.request.get(rest, headers={"X-WP-Nonce": nonce})
        check("the REST test answers the admin", with_nonce.status == 200 and with_nonce.json().get("status") == "good",
              f"{with_nonce.status}")
        check("the REST answer has no password", CANARY not in with_nonce.text())
        anonymous = context.request.get(rest, headers={"Cookie": ""})
        check("the REST test refuses a request without a nonce", anonymous.status == 401, str(anonymous.status))
        page.goto(WP_URL + "/wp-admin/site-health.php?tab=debug")
        save(page, "site-health-info")
        check("Site Health Info has the SSM DB Config section", page.locator("text=SSM DB Config").count() >= 1)

        # --- subscriber ---
        context.clear_cookies()
        login(page, "subscriber", os.environ["SUBSCRIBER_PASS"])
        check("subscriber logs in", "/wp-admin" in page.url, page.url)
        before = fetch_count()
        response = page.goto(TOOLS)
        save(page, "subscriber-refused")
        check("the page refuses a subscriber with 403", response.status == 403, str(response.status))
        check("the refusal shows no status", page.locator("#ssm-db-config-status").count() == 0)
        forged = page.request.post(TOOLS, form={"ssm_db_config_action": "refresh"})
        check("a subscriber's POST is refused", forged.status == 403, str(forged.status))
        check("the subscriber caused no SSM request", fetch_count() == before)

        check("no JavaScript error on any page", not js_errors, "; ".join(js_errors[:3]))
        check("the browser made no request outside 127.0.0.1", not outside, ", ".join(outside[:3]))
        browser.close()
    return 0 if all(results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # A crash is a failure, reported without the page's content.
        print(f"not ok - browser: the test ran without an exception ({type(e).__name__}: {str(e)[:300]})")
        sys.exit(1)
