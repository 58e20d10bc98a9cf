"""The console's dashboard flow in a real browser (Playwright driving Debian's chromium)
against `dev`, with axe-core on every page. Run by tests/tests/suite/console.rs.

    python console_e2e.py <base url> <operator key> <chromium> <axe.min.js> <output dir>

An operator publishes a crm version and creates an organization; its admin enables crm with
autoQualifyLeads, sees the API's 422 next to a bad booking setting, assigns booking and crm
to twilio in the matrix with the keyboard, previews the draft's diff, saves, sees the new
agent, recovers a draft from a 409, creates a channel key and revokes it. Screenshots of
each page go to the output dir. Exits non-zero with the reason on the first failure.
"""
import json
import pathlib
import sys
import urllib.error
import urllib.request

from playwright.sync_api import expect, sync_playwright

BASE, OPERATOR, CHROMIUM, AXE, OUT = sys.argv[1:6]
OUT = pathlib.Path(OUT)
OUT.mkdir(parents=True, exist_ok=True)
ROOT = pathlib.Path(__file__).resolve().parents[2]
AXE_SOURCE = pathlib.Path(AXE).read_text()


def call(method, path, key, body=None):
    req = urllib.request.Request(BASE + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


checked_pages = []


def axe(page, name):
    """No serious or critical axe-core violation on the page as it stands."""
    # The page's CSP rightly refuses an injected <script>; the DevTools protocol's evaluate
    # is outside it, and the CSP stays on for the page itself.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SOURCE)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: axe-core: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}" for v in bad)
    checked_pages.append(name)


def shot(page, name):
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)


def sign_in(page, key):
    page.goto(BASE + "/console#/library")
    expect(page.get_by_role("heading", name="Sign in with an API key")).to_be_visible()
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_role("heading", name="Plugin library")).to_be_visible()


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                args=["--no-sandbox", "--disable-dev-shm-usage"])
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # Refusals the flow provokes (4xx) are logged by the browser as failed loads; anything
    # else on the console (a CSP violation, a script error) is a failure.
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)

    # The page and its headers: its own files only, no inline script or style.
    resp = page.goto(BASE + "/console")
    csp = resp.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp, csp
    assert resp.headers.get("x-content-type-options") == "nosniff"
    axe(page, "sign-in")
    shot(page, "01-sign-in")

    # 1. The operator publishes a crm version in the library.
    sign_in(page, OPERATOR)
    manifest = json.loads((ROOT / "functions/crm/manifest.json").read_text())
    manifest["version"] = "1.5.1"
    page.get_by_label("or the manifest as JSON").fill(json.dumps(manifest))
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("status")).to_contain_text("Published crm 1.5.1.")
    expect(page.get_by_role("heading", name="CRM leads crm 1.5.1")).to_be_visible()
    axe(page, "library")
    shot(page, "02-library")
    # Nothing of the key reaches a URL, a cookie or localStorage.
    assert OPERATOR not in page.url
    assert page.evaluate("() => localStorage.length") == 0
    assert context.cookies() == []

    status, org = call("POST", "/admin/orgs", OPERATOR,
                       {"org": "console-dental", "display_name": "Console Dental"})
    assert status == 201, (status, org)
    admin = org["result"]["key"]
    page.get_by_role("button", name="Forget key").click()

    # 2. The org's admin enables crm with autoQualifyLeads.
    sign_in(page, admin)
    page.get_by_role("link", name="Your plugins").click()
    expect(page.get_by_role("heading", name="Your plugins")).to_be_visible()
    axe(page, "plugins")
    shot(page, "03-plugins")
    page.get_by_role("link", name="Enable crm").click()
    expect(page.get_by_role("heading", name="crm: enable")).to_be_visible()
    expect(page.get_by_label("Pinned version")).to_have_value("1.5.1")
    page.get_by_label("autoQualifyLeads").check()
    page.get_by_role("button", name="Enable crm").click()
    expect(page.get_by_role("status")).to_contain_text("Saved crm: enabled, version 1.5.1")
    status, inst = call("GET", "/admin/instances/crm", admin)
    assert status == 200 and inst["result"]["config"]["autoQualifyLeads"] is True, inst

    # 3. A bad booking setting: the API's 422 next to the field, then fixed.
    page.goto(BASE + "/console#/plugins/booking")
    expect(page.get_by_role("heading", name="booking: enable")).to_be_visible()
    page.get_by_label("slotMinutes").fill("7")
    page.get_by_role("button", name="Enable booking").click()
    error = page.locator('[data-error-for="/config/slotMinutes"]')
    expect(error).to_contain_text("multiple of 5")
    expect(page.get_by_label("slotMinutes")).to_have_attribute("aria-invalid", "true")
    axe(page, "instance-422")
    shot(page, "04-instance-422")
    page.get_by_label("slotMinutes").fill("30")
    page.get_by_role("button", name="Enable booking").click()
    expect(page.get_by_role("status")).to_contain_text("Saved booking: enabled")
    expect(error).to_be_empty()

    # 4. The matrix, by keyboard: a new twilio row, booking first and crm second.
    page.get_by_role("link", name="Channels").click()
    page.get_by_label("New channel").fill("twilio")
    page.get_by_label("New channel").press("Enter")
    box = page.get_by_label("Assign booking to twilio")
    expect(box).to_be_focused()
    page.keyboard.press("Space")
    expect(box).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Priority of booking on twilio")).to_be_focused()
    page.keyboard.type("1")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Data adapter of booking on twilio (JSON, empty for the plugin's own)")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Assign crm to twilio")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.type("2")
    # On through the row to its buttons, still by keyboard: the draft's diff before saving
    # (every tool is new), then the save.
    for label in ("Data adapter of crm on twilio (JSON, empty for the plugin's own)",
                  "Instructions override for twilio"):
        page.keyboard.press("Tab")
        expect(page.get_by_label(label)).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save twilio")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Preview twilio")).to_be_focused()
    page.keyboard.press("Enter")
    preview = page.get_by_role("region", name="Preview of twilio")
    expect(preview).to_contain_text("Tools added")
    expect(preview).to_contain_text("CreateLead")
    expect(preview).to_contain_text("CreateAppointment")
    axe(page, "channels-preview")
    shot(page, "05-channels-preview")
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Save twilio")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Saved channel twilio")
    status, chan = call("GET", "/admin/channels/twilio", admin)
    assigned = [(a["plugin"], a["priority"]) for a in chan["result"]["plugin_assignments"]]
    assert assigned == [("booking", 1), ("crm", 2)], assigned

    # A draft that changes the instructions: the preview shows it, then another writer's
    # change makes the save 409; the draft survives and saves over the newest version.
    page.get_by_label("Instructions override for twilio").fill("Answer as Console Dental's receptionist.")
    page.get_by_label("Format of twilio's preview").select_option("openai")
    page.get_by_role("button", name="Preview twilio").click()
    expect(preview).to_contain_text("Instructions changed")
    draft_export = page.get_by_label("Draft agent as openai")
    expect(draft_export).to_contain_text('"type": "function"')
    expect(draft_export).to_contain_text("Answer as Console Dental")
    body = dict(chan["result"])
    body["instructions"] = "Changed elsewhere."
    status, _ = call("PUT", "/admin/channels/twilio", admin, body)
    assert status == 200, status
    page.get_by_role("button", name="Save twilio").click()
    expect(page.get_by_role("alert").filter(has_text="changed elsewhere")).to_be_visible()
    shot(page, "06-channels-409")
    page.get_by_role("button", name="Keep my draft").click()
    expect(page.get_by_role("status")).to_contain_text("Now editing over the newest version")
    page.get_by_role("button", name="Save twilio").click()
    expect(page.get_by_role("status")).to_contain_text("Saved channel twilio")
    status, chan = call("GET", "/admin/channels/twilio", admin)
    assert chan["result"]["instructions"] == "Answer as Console Dental's receptionist.", chan

    # 5. The new agent, in a format.
    page.get_by_role("link", name="Agents").click()
    page.get_by_label("Format").select_option("anthropic")
    page.get_by_role("button", name="Show agent").click()
    agent = page.get_by_label("Agent", exact=True)
    expect(agent).to_contain_text("CreateLead")
    expect(agent).to_contain_text("input_schema")
    axe(page, "agents")
    shot(page, "07-agents")

    # 6. A key bound to twilio: shown once, then revoked.
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name", exact=True).fill("twilio voice")
    page.get_by_label("Bound to channel").select_option("twilio")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("The new key")
    new_key = secret.input_value()
    assert new_key.startswith("sb_"), new_key
    status, _ = call("GET", "/agents/twilio", new_key)
    assert status == 200, status
    axe(page, "keys")
    shot(page, "08-keys")
    key_id = page.locator("h2", has_text="created").inner_text().split()[1]
    page.get_by_role("button", name=f"Revoke {key_id}").click()
    page.get_by_role("button", name=f"Confirm: revoke {key_id}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Key {key_id} revoked")
    status, keys = call("GET", "/admin/keys", admin)
    assert [k["revoked"] for k in keys["result"]["keys"] if k["id"] == key_id] == [True], keys

    # Credentials: write-only.
    page.get_by_role("link", name="Credentials").click()
    page.get_by_label("Name", exact=True).fill("crm-api")
    page.get_by_label("Field 1 value").fill("s3cr3t-value")
    page.get_by_role("button", name="Save credential").click()
    expect(page.get_by_role("status")).to_contain_text("Stored credential crm-api (api_key)")
    expect(page.get_by_role("cell", name="crm-api")).to_be_visible()
    expect(page.get_by_label("Field 1 value")).to_have_value("")
    status, creds = call("GET", "/admin/credentials", admin)
    assert status == 200 and "s3cr3t-value" not in json.dumps(creds), creds
    assert [c["fields"] for c in creds["result"]["credentials"] if c["name"] == "crm-api"] == [["api_key"]], creds
    axe(page, "credentials")
    shot(page, "09-credentials")

    # The audit log shows the admin writes.
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("cell", name="PUT /admin/channels/twilio").first).to_be_visible()
    axe(page, "audit")
    shot(page, "10-audit")

    # A key without admin:write: the page says which scope is missing.
    status, ro = call("POST", "/admin/keys", admin, {"scopes": ["admin:read"]})
    assert status == 201, ro
    page.get_by_role("button", name="Forget key").click()
    sign_in(page, ro["result"]["key"])
    status, _ = call("PUT", "/admin/instances/crm", ro["result"]["key"], {"enabled": False})
    assert status == 403
    page.goto(BASE + "/console#/plugins/crm")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert").filter(has_text="lacks the 'admin:write' scope")).to_be_visible()

    assert not problems, problems
    browser.close()

print(json.dumps({"pages_checked_with_axe": checked_pages, "screenshots": sorted(p.name for p in OUT.glob("*.png"))}))
