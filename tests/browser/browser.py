"""The file-browser page end to end in a real headless Chromium.

Drives Debian's chromium through chromedriver with the W3C WebDriver protocol, spoken over
HTTP with nothing but the standard library (no selenium, nothing to install). Started by
tests/browser/run.sh, which passes the server in the environment:

  WHARF_URL         the server's base URL, ending in '/'
  WHARF_PASSWORD    admin's password
  WHARF_WORK        a private work directory (files to upload, chromedriver's log)
  WHARF_ARTIFACTS   where the screenshot goes
  WHARF_SERVER_LOG  the server's log, shown when a step fails

Every step the page performs is checked twice: in the page (what it shows) and over plain
HTTP against the server (what really happened).
"""

import base64
import json
import os
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

URL = os.environ["WHARF_URL"]
PASSWORD = os.environ["WHARF_PASSWORD"]
WORK = os.environ["WHARF_WORK"]
ARTIFACTS = os.environ["WHARF_ARTIFACTS"]
SERVER_LOG = os.environ.get("WHARF_SERVER_LOG", "")
AUTH = "Basic " + base64.b64encode(("admin:" + PASSWORD).encode()).decode()
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web element key
WAIT = 20.0  # seconds any single expectation may take

# Names with spaces and non-ASCII letters, so encoding mistakes show.
FILE_A = "alpha report.txt"
FILE_B = "bêta données.bin"
RENAMED = "gamma renamé.bin"
FOLDER = "new földer"
HOSTILE = "<img src=x onerror=alert(1)>.txt"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-proxy-server",
    "--window-size=1280,900",
]


class Failure(Exception):
    pass


def fail(message):
    raise Failure(message)


# ---- plain HTTP against the server ------------------------------------------------------


def href(name, collection=False):
    return URL + urllib.parse.quote(name, safe="") + ("/" if collection else "")


def http(method, url, body=None, headers=None):
    """(status, headers, body) of one request as admin; never raises on an HTTP status."""
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Authorization", AUTH)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def expect_status(want, method, url, **kw):
    status, headers, body = http(method, url, **kw)
    if status != want:
        fail(f"{method} {url} answered {status}, want {want}: {body[:300]!r}")
    return headers, body


def propfind_names():
    """The names PROPFIND Depth 1 lists in the root, with whether each is a collection."""
    _, body = expect_status(
        207,
        "PROPFIND",
        URL,
        body=b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:">'
        b"<D:prop><D:resourcetype/></D:prop></D:propfind>",
        headers={"Depth": "1", "Content-Type": "application/xml"},
    )
    names = {}
    base = urllib.parse.urlsplit(URL).path
    for resp in ET.fromstring(body).iter("{DAV:}response"):
        path = urllib.parse.unquote(resp.findtext("{DAV:}href"))
        if path.startswith("http"):
            path = urllib.parse.urlsplit(path).path
        rel = path[len(base):]
        if not rel:
            continue
        is_dir = resp.find(".//{DAV:}resourcetype/{DAV:}collection") is not None
        names[rel.rstrip("/")] = is_dir
    return names


# ---- a minimal W3C WebDriver client -----------------------------------------------------


class WebDriver:
    def __init__(self, base):
        self.base = base
        self.session = None

    def call(self, method, path, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        prefix = "" if self.session is None else f"/session/{self.session}"
        req = urllib.request.Request(self.base + prefix + path, data=data, method=method)
        req.add_header("Content-Type", "application/json; charset=utf-8")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=60) as r:
                return json.loads(r.read() or b"null").get("value")
        except urllib.error.HTTPError as e:
            try:
                value = json.loads(e.read()).get("value", {})
            except ValueError:
                value = {}
            raise WebDriverError(value.get("error", str(e.code)), value.get("message", "")) from None

    def start(self, download_dir):
        caps = {
            "browserName": "chrome",
            "unhandledPromptBehavior": "ignore",  # an alert stays open, so it can be seen
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": CHROMIUM_ARGS + ["--user-data-dir=" + os.path.join(WORK, "profile")],
                "prefs": {"download.default_directory": download_dir, "download.prompt_for_download": False},
            },
        }
        value = self.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
        self.session = value["sessionId"]
        self.call("POST", "/timeouts", {"script": 30000, "pageLoad": 30000, "implicit": 0})

    def quit(self):
        if self.session:
            try:
                self.call("DELETE", "")
            except Exception:
                pass
            self.session = None

    def cdp(self, cmd, params):
        return self.call("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params})

    def go(self, url):
        self.call("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find_all(self, css):
        return [e[ELEMENT] for e in self.call("POST", "/elements", {"using": "css selector", "value": css})]

    def find(self, css):
        found = self.find_all(css)
        if not found:
            fail(f"no element matches {css}")
        return found[0]

    def click(self, el):
        self.call("POST", f"/element/{el}/click", {})

    def clear(self, el):
        self.call("POST", f"/element/{el}/clear", {})

    def type(self, el, text):
        self.call("POST", f"/element/{el}/value", {"text": text})

    def text(self, el):
        return self.call("GET", f"/element/{el}/text")

    def alert_text(self):
        """The text of an open alert, or None."""
        try:
            return self.call("GET", "/alert/text")
        except WebDriverError as e:
            if e.error == "no such alert":
                return None
            raise

    def screenshot(self):
        return base64.b64decode(self.call("GET", "/screenshot"))

    def console(self):
        try:
            return self.call("POST", "/se/log", {"type": "browser"}) or []
        except WebDriverError:
            return []


class WebDriverError(Exception):
    def __init__(self, error, message):
        super().__init__(f"{error}: {message.splitlines()[0] if message else ''}")
        self.error = error


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_chromedriver():
    port = free_port()
    log = open(os.path.join(WORK, "chromedriver.log"), "w")
    proc = subprocess.Popen(
        ["chromedriver", f"--port={port}", "--allowed-ips=127.0.0.1"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(base + "/status", timeout=2) as r:
                if json.loads(r.read())["value"].get("ready"):
                    return proc, base
        except (OSError, ValueError):
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    sys.exit("browser: chromedriver did not start: " + open(os.path.join(WORK, "chromedriver.log")).read()[-2000:])


# ---- the page ---------------------------------------------------------------------------


def wait_for(what, predicate, timeout=WAIT):
    """Polls predicate until it returns something truthy; fails with `what` otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except WebDriverError as e:
            last = e
        if time.monotonic() > deadline:
            fail(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last})" if last else ""))
        time.sleep(0.1)


def listed(wd):
    """{name: kind} of the rows the page's listing shows."""
    rows = wd.js(
        "return Array.from(document.querySelectorAll('#listing tbody tr[data-name]'),"
        " tr => [tr.dataset.name, tr.classList.contains('dir') ? 'dir' : 'file']);"
    )
    return dict(rows)


def row_button(wd, name, act):
    for tr in wd.find_all("#listing tbody tr[data-name]"):
        if wd.call("GET", f"/element/{tr}/attribute/data-name") == name:
            return wd.call("POST", f"/element/{tr}/element", {"using": "css selector", "value": f"button[data-act={act}]"})[
                ELEMENT
            ]
    fail(f"no row named {name!r}; the listing shows {sorted(listed(wd))}")


def errors_shown(wd):
    return wd.js("return Array.from(document.querySelectorAll('#messages .msg.error'), m => m.textContent);")


def no_errors(wd):
    errs = errors_shown(wd)
    if errs:
        fail("the page shows errors: " + " | ".join(errs))


def dialog_open(wd):
    return wd.js("return document.getElementById('dialog').open;")


def answer_dialog(wd, text=None):
    """Waits for the page's dialog, types `text` into it (if given), presses OK."""
    wait_for("the dialog to open", lambda: dialog_open(wd))
    if text is not None:
        field = wd.find("#dialog-input")
        wd.clear(field)
        wd.type(field, text)
    wd.click(wd.find("#dialog-ok"))
    wait_for("the dialog to close", lambda: not dialog_open(wd))


def page_state(wd):
    """What the page shows, for a failure report."""
    try:
        return wd.js(
            "const t = (s) => Array.from(document.querySelectorAll(s), e => e.textContent.trim());"
            "return {messages: t('#messages .msg'), uploads: t('#upload-list li'),"
            " overall: t('#overall-text'), rows: t('#listing tbody tr[data-name]')};"
        )
    except Exception as e:  # the browser may be gone
        return f"(page state unavailable: {e})"


# ---- the steps --------------------------------------------------------------------------


class Run:
    def __init__(self, wd):
        self.wd = wd
        self.passed = 0
        self.failed = 0
        self.files = {}

    def step(self, name, fn):
        mark = os.path.getsize(SERVER_LOG) if SERVER_LOG and os.path.exists(SERVER_LOG) else 0
        try:
            fn()
        except Exception as e:
            self.failed += 1
            print(f"not ok - {name}")
            detail = str(e) if isinstance(e, (Failure, WebDriverError)) else traceback.format_exc()
            for line in detail.rstrip().splitlines():
                print(f"#   {line}")
            print(f"#   page: {json.dumps(page_state(self.wd), ensure_ascii=False)}")
            if SERVER_LOG and os.path.exists(SERVER_LOG):
                with open(SERVER_LOG, errors="replace") as log:
                    log.seek(mark)
                    reqs = [line.split("request ", 1)[1].rstrip() for line in log if " request " in line]
                print("#   server requests during the step:")
                for line in reqs[-20:]:
                    print(f"#     {line}")
        else:
            self.passed += 1
            print(f"ok - {name}")
        sys.stdout.flush()

    # -- each step --

    def hostile_name_put(self):
        expect_status(201, "PUT", href(HOSTILE), body=b"not markup\n")

    def open_listing(self):
        wd = self.wd
        # Sign in with credentials in the URL, then go to the plain URL: the browser answers
        # its challenges from the credentials it cached, as after a login prompt. (A page
        # whose own URL carries credentials can't use fetch() with relative URLs at all.)
        parts = urllib.parse.urlsplit(URL)
        wd.go(f"{parts.scheme}://admin:{urllib.parse.quote(PASSWORD, safe='')}@{parts.netloc}{parts.path}")
        wait_for("the signed-in listing", lambda: wd.find_all("#listing"))
        wd.go(URL)
        here = wd.js("return location.href;")
        if here != URL:
            fail(f"the page is at {here!r}, want {URL!r}")
        wait_for("the script to run (html.js)", lambda: wd.js("return document.documentElement.classList.contains('js');"))
        title = wd.js("return document.title;")
        if "Wharf" not in title:
            fail(f"title is {title!r}")
        wd.find("#listing")
        for el in ("#pick", "#mkdir", "#zip", "#drop", "#messages"):
            wd.find(el)
        shown = wd.js("return getComputedStyle(document.getElementById('mkdir')).display;")
        if shown == "none":
            fail("the New folder button is still hidden although the script ran")
        if HOSTILE not in listed(wd):
            fail(f"{HOSTILE!r} is not listed: {sorted(listed(wd))}")
        no_errors(wd)

    def hostile_name_is_text(self):
        wd = self.wd
        alert = wd.alert_text()
        if alert is not None:
            fail(f"an alert is open: {alert!r}")
        imgs = wd.js("return document.querySelectorAll('#listing img, #listing [onerror]').length;")
        if imgs:
            fail(f"the listing holds {imgs} img/onerror element(s): the name was parsed as markup")
        link = wd.js(
            "const tr = Array.from(document.querySelectorAll('#listing tbody tr')).find(r => r.dataset.name === arguments[0]);"
            "return tr && tr.querySelector('td.name a').textContent;",
            HOSTILE,
        )
        if link != HOSTILE:
            fail(f"the row's link text is {link!r}, want {HOSTILE!r}")
        shown = wd.js(
            "const tr = Array.from(document.querySelectorAll('#listing tbody tr')).find(r => r.dataset.name === arguments[0]);"
            "return tr.querySelector('td.name').innerText.trim();",
            HOSTILE,
        )
        if shown != HOSTILE:
            fail(f"the row shows {shown!r}, want {HOSTILE!r}")

    def upload_two(self):
        wd = self.wd
        src = os.path.join(WORK, "upload")
        os.makedirs(src, exist_ok=True)
        self.files = {FILE_A: b"alpha\n" * 5000, FILE_B: os.urandom(700 * 1024 + 13)}
        paths = []
        for name, data in self.files.items():
            path = os.path.join(src, name)
            with open(path, "wb") as f:
                f.write(data)
            paths.append(path)
        wd.type(wd.find("#pick"), "\n".join(paths))
        wait_for("the uploads section to show", lambda: wd.js("return !document.getElementById('uploads').hidden;"))
        wait_for(
            "both uploads to be done",
            lambda: len(wd.find_all("#upload-list li.done")) == 2,
        )
        bad = wd.find_all("#upload-list li.failed, #upload-list li.cancelled")
        if bad:
            fail(f"{len(bad)} upload(s) failed or were cancelled")
        items = wd.js("return Array.from(document.querySelectorAll('#upload-list li .name'), e => e.textContent);")
        if sorted(items) != sorted(self.files):
            fail(f"the upload list shows {items}")
        wait_for("the overall bar to be full", lambda: wd.js("return document.getElementById('overall').value;") == 1)
        text = wd.text(wd.find("#overall-text"))
        if not text.startswith("2 of 2 files"):
            fail(f"#overall-text says {text!r}")
        bars = wd.js("return Array.from(document.querySelectorAll('#upload-list progress'), p => p.value);")
        if bars != [1, 1]:
            fail(f"per-file bars are {bars}")
        wait_for("Cancel all to hide", lambda: wd.js("return document.getElementById('cancel-all').hidden;"))
        no_errors(wd)
        for name, data in self.files.items():
            _, body = expect_status(200, "GET", href(name))
            if body != data:
                fail(f"the server holds {len(body)} different bytes for {name!r} ({len(data)} uploaded)")

    def both_listed(self):
        wd = self.wd
        wait_for(f"{FILE_A!r} and {FILE_B!r} in the listing", lambda: set(self.files) <= set(listed(wd)))
        sizes = wd.js(
            "return Object.fromEntries(Array.from(document.querySelectorAll('#listing tbody tr[data-name]'),"
            " tr => [tr.dataset.name, tr.querySelector('td.size').dataset.bytes]));"
        )
        for name, data in self.files.items():
            if sizes.get(name) != str(len(data)):
                fail(f"{name!r} listed with {sizes.get(name)} bytes, want {len(data)}")
        if wd.find_all("#empty:not([hidden])"):
            fail("the 'empty folder' note is shown")

    def download(self):
        wd = self.wd
        link = wd.js(
            "const tr = Array.from(document.querySelectorAll('#listing tbody tr')).find(r => r.dataset.name === arguments[0]);"
            "return tr.querySelector('td.actions a[download]').href;",
            FILE_B,
        )
        parts = urllib.parse.urlsplit(link)  # the browser's href may carry the userinfo
        server = urllib.parse.urlsplit(URL)  # the link's path already carries any base path
        target = urllib.parse.urlunsplit((server.scheme, server.netloc, parts.path, parts.query, ""))
        headers, body = expect_status(200, "GET", target)
        if body != self.files[FILE_B]:
            fail(f"downloaded {len(body)} bytes that differ from the {len(self.files[FILE_B])} uploaded")
        cd = headers.get("Content-Disposition", "")
        if not cd.startswith("attachment") or "filename*=UTF-8''" not in cd:
            fail(f"Content-Disposition is {cd!r}")
        # The same bytes as the browser itself gets them (its credentials, its cache).
        got = wd.call(
            "POST",
            "/execute/async",
            {
                "script": "const done = arguments[arguments.length - 1];"
                "fetch(arguments[0], {credentials: 'same-origin', cache: 'no-store'})"
                ".then(r => r.arrayBuffer().then(b => done([r.status, b.byteLength,"
                " Array.from(new Uint8Array(b.slice(0, 64)))])))"
                ".catch(e => done([0, String(e)]));",
                "args": [parts.path + "?" + parts.query],
            },
        )
        if got[0] != 200 or got[1] != len(self.files[FILE_B]) or bytes(got[2]) != self.files[FILE_B][:64]:
            fail(f"the browser's own download differs: {got[:2]}")

    def rename(self):
        wd = self.wd
        wd.click(row_button(wd, FILE_B, "rename"))
        answer_dialog(wd, RENAMED)
        wait_for(f"{RENAMED!r} listed and {FILE_B!r} gone", lambda: RENAMED in listed(wd) and FILE_B not in listed(wd))
        no_errors(wd)
        names = propfind_names()
        if RENAMED not in names or FILE_B in names:
            fail(f"PROPFIND lists {sorted(names)}")
        expect_status(404, "GET", href(FILE_B))
        _, body = expect_status(200, "GET", href(RENAMED))
        if body != self.files[FILE_B]:
            fail("the renamed file's bytes differ")

    def mkdir(self):
        wd = self.wd
        wd.click(wd.find("#mkdir"))
        answer_dialog(wd, FOLDER)
        wait_for(f"folder {FOLDER!r} listed", lambda: listed(wd).get(FOLDER) == "dir")
        no_errors(wd)
        names = propfind_names()
        if names.get(FOLDER) is not True:
            fail(f"PROPFIND does not list {FOLDER!r} as a collection: {names}")
        # Folders are listed before files.
        order = list(listed(wd))
        if order.index(FOLDER) > min(order.index(n) for n in order if listed(wd)[n] == "file"):
            fail(f"folders are not listed first: {order}")

    def delete(self):
        wd = self.wd
        wd.click(row_button(wd, FILE_A, "delete"))
        wait_for("the confirmation", lambda: dialog_open(wd))
        text = wd.text(wd.find("#dialog-text"))
        if FILE_A not in text:
            fail(f"the confirmation says {text!r}")
        if wd.js("return !document.getElementById('dialog-input').hidden;"):
            fail("the confirmation shows a text field")
        answer_dialog(wd)
        wait_for(f"{FILE_A!r} gone from the listing", lambda: FILE_A not in listed(wd))
        no_errors(wd)
        expect_status(404, "GET", href(FILE_A))
        if FILE_A in propfind_names():
            fail("PROPFIND still lists it")

    def screenshot(self):
        wd = self.wd
        # A fresh load, as a user would see the listing now.
        wd.go(wd.js("return location.href;"))
        wait_for("the script to run", lambda: wd.js("return document.documentElement.classList.contains('js');"))
        png = wd.screenshot()
        if not png.startswith(b"\x89PNG"):
            fail("the screenshot is not a PNG")
        want = {HOSTILE, RENAMED, FOLDER, "public"}  # admins also see /public
        if set(listed(wd)) != want:
            fail(f"after reload the listing shows {sorted(listed(wd))}, want {sorted(want)}")
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, "listing.png")
        with open(path, "wb") as f:
            f.write(png)
        print(f"# screenshot: {path} ({len(png)} bytes)")

    def quiet_console(self):
        wd = self.wd
        if wd.alert_text() is not None:
            fail(f"an alert is open: {wd.alert_text()!r}")
        severe = [e.get("message", "") for e in wd.console() if e.get("level") == "SEVERE"]
        if severe:
            fail("the console shows errors:\n" + "\n".join(severe))


def main():
    started = time.monotonic()
    downloads = os.path.join(WORK, "downloads")
    os.makedirs(downloads, exist_ok=True)
    driver, base = start_chromedriver()
    wd = WebDriver(base)
    try:
        try:
            wd.start(downloads)
        except WebDriverError as e:
            print(f"browser: chromium did not start: {e}")
            print(open(os.path.join(WORK, "chromedriver.log"), errors="replace").read()[-3000:])
            return 1
        run = Run(wd)
        run.step(f"a file named {HOSTILE} is created with PUT", run.hostile_name_put)
        run.step("the listing opens, signed in, and its script runs", run.open_listing)
        run.step(f"{HOSTILE} renders as text (no markup, no alert)", run.hostile_name_is_text)
        run.step("two files uploaded through the page: both done, overall progress complete", run.upload_two)
        run.step("both uploaded files are listed with their sizes", run.both_listed)
        run.step("a download link returns the uploaded bytes", run.download)
        run.step("rename through the row's button and the dialog (checked with PROPFIND)", run.rename)
        run.step("a folder created through New folder and the dialog", run.mkdir)
        run.step("delete through the row's button and the confirmation", run.delete)
        run.step("screenshot of the listing saved", run.screenshot)
        run.step("no alert and no console errors", run.quiet_console)
    finally:
        wd.quit()
        driver.terminate()
        try:
            driver.wait(10)
        except subprocess.TimeoutExpired:
            driver.kill()
    print(f"browser: took {time.monotonic() - started:.0f} s")
    print(f"browser: {run.passed} passed, {run.failed} failed")
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
