#!/usr/bin/env python3
"""FTP checks with Python's ftplib against a running `wharf serve` (standard library only).

Called by tests/ftp/run.sh; one MODE per server configuration:

  ftp_clients.py plain        HOST PORT USER PASSWORD   everything over plain FTP (USER must
                                                        be a fresh, non-admin user: its home
                                                        is expected to start empty)
  ftp_clients.py tls          HOST PORT USER PASSWORD   explicit FTPS (AUTH TLS, PROT P)
  ftp_clients.py tls-required HOST PORT USER PASSWORD   a server run with --ftps-required
  ftp_clients.py login        HOST PORT USER PASSWORD [WHY...]  the right password works
  ftp_clients.py lockout      HOST PORT USER PASSWORD N N wrong passwords, then the right one
                                                        must be refused (locked out)
  ftp_clients.py anonymous    HOST PORT NAME CONTENT    a server run with --anonymous whose
                                                        public area holds file NAME = CONTENT
  ftp_clients.py passive      HOST PORT USER PASSWORD FIRST LAST
                                                        PASV/EPSV ports lie in FIRST-LAST

Prints `ok - NAME` or `not ok - NAME` (followed by `#` lines saying why) per check and exits
non-zero when a check failed.
"""

import datetime
import ftplib
import io
import random
import re
import socket
import ssl
import sys
import traceback
import unicodedata

TIMEOUT = 15
failures = 0


class Failed(Exception):
    pass


def expect(cond, why):
    if not cond:
        raise Failed(why)


def check(name, known=None):
    """Decorator: runs the function at once as one check and reports it.

    `known` names a defect of libunftp that Wharf cannot get around from its side of the
    API: the check still runs and prints what happened, but as `not ok - NAME # TODO ...`
    (TAP's expected failure), which the run does not count as a failure. When it passes,
    the defect is gone: the line says so, so the marker gets removed."""

    def run(fn):
        global failures
        try:
            detail = fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            if known:
                print(f"not ok - {name} # TODO known libunftp defect: {known}")
            else:
                failures += 1
                print(f"not ok - {name}")
            if isinstance(e, Failed):
                lines = str(e).splitlines()
            else:
                here = [fr for fr in traceback.extract_tb(e.__traceback__) if fr.filename == __file__]
                lines = traceback.format_exception_only(type(e), e)
                lines = "".join(lines).splitlines()
                if here:
                    lines.append(f"at line {here[-1].lineno}: {here[-1].line}")
            for line in lines:
                print(f"#   {line}")
        else:
            gone = f" # the known libunftp defect is gone: drop `known` ({known})" if known else ""
            print(f"ok - {name}" + (f" ({detail})" if detail else "") + gone)
        sys.stdout.flush()
        return fn

    return run


def blob(n, seed):
    return random.Random(seed).randbytes(n)


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(user=None, password=None, tls=False):
    """A logged-in session (with PROT P when tls)."""
    if tls:
        f = ftplib.FTP_TLS(context=tls_context(), timeout=TIMEOUT)
    else:
        f = ftplib.FTP(timeout=TIMEOUT)
    f.encoding = "utf-8"
    f.connect(HOST, PORT)
    f.login(USER if user is None else user, PASSWORD if password is None else password)
    if tls:
        f.prot_p()
    return f


def retr(f, path, rest=None):
    out = io.BytesIO()
    f.retrbinary(f"RETR {path}", out.write, rest=rest)
    return out.getvalue()


def stor(f, path, data, rest=None, cmd="STOR"):
    return f.storbinary(f"{cmd} {path}", io.BytesIO(data), rest=rest)


def refused(code, fn, *args):
    """fn(*args) must fail with an FTP error whose reply starts with `code` (a prefix such as
    '550' or '5'); returns the reply."""
    try:
        got = fn(*args)
    except ftplib.all_errors as e:
        reply = str(e)
        expect(reply.startswith(code), f"expected a {code} reply, got: {reply}")
        return reply
    raise Failed(f"expected a {code} reply, but it succeeded: {got!r}"[:300])


def mlst_facts(f, path=None):
    """MLST: the facts of the one entry, as a dict, plus the entry's name."""
    reply = f.sendcmd(f"MLST {path}" if path else "MLST")
    lines = reply.splitlines()
    expect(lines[0].startswith("250-") and lines[-1].startswith("250"), f"not a 250 multi-line reply: {reply}")
    entry = [ln for ln in lines[1:-1] if ln.startswith(" ")]
    expect(len(entry) == 1, f"expected one entry line: {reply}")
    facts_text, _, name = entry[0][1:].partition(" ")
    facts = dict(kv.split("=", 1) for kv in facts_text.rstrip(";").split(";") if "=" in kv)
    return {k.lower(): v for k, v in facts.items()}, name


def mdtm_time(value):
    expect(re.fullmatch(r"\d{14}(\.\d+)?", value), f"not YYYYMMDDHHMMSS: {value!r}")
    return datetime.datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=datetime.timezone.utc)


def recent(value, slack=600):
    now = datetime.datetime.now(datetime.timezone.utc)
    t = mdtm_time(value)
    expect(abs((now - t).total_seconds()) <= slack, f"time {value} is not near now ({now:%Y%m%d%H%M%S} UTC)")


def host_passwd():
    try:
        with open("/etc/passwd", "rb") as fh:
            return fh.read()
    except OSError:
        return b"root:x:0:0:"


def not_host_passwd(data):
    expect(b"root:x:0:0" not in data and data != host_passwd(), "got the host's /etc/passwd")


def transfer_via(f, mode, command, upload=None):
    """Opens the data connection by hand with an explicit EPSV or PASV, then runs `command`
    (RETR or STOR) over it. Returns the bytes read (RETR) and the final reply."""
    if mode == "EPSV":
        reply = f.sendcmd("EPSV")
        expect(reply.startswith("229"), f"EPSV answered {reply}")
        m = re.search(r"\(\|\|\|(\d+)\|\)", reply)
        expect(m, f"no port in the 229 reply: {reply}")
        host, port = f.sock.getpeername()[0], int(m.group(1))
    else:
        reply = f.sendcmd("PASV")
        expect(reply.startswith("227"), f"PASV answered {reply}")
        host, port = ftplib.parse227(reply)
        expect(host == HOST, f"PASV announced {host}, the server is {HOST}")
    data = socket.create_connection((host, port), timeout=TIMEOUT)
    try:
        prelim = f.sendcmd(command)
        expect(prelim.startswith("150") or prelim.startswith("125"), f"{command} answered {prelim}")
        if upload is not None:
            data.sendall(upload)
            data.shutdown(socket.SHUT_WR)
            got = b""
            data.recv(1)  # wait for the server to close
        else:
            chunks = []
            while True:
                chunk = data.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            got = b"".join(chunks)
    finally:
        data.close()
    final = f.voidresp()
    return got, final, port


# --- plain FTP ---------------------------------------------------------------------------


def plain():
    data = blob(300_000, 1) + bytes(range(256)) * 4

    @check("ftplib: login, the 220 greeting, PWD is / and the fresh home is empty")
    def _():
        f = connect()
        expect(f.welcome.startswith("220"), f"greeting: {f.welcome}")
        expect(f.pwd() == "/", f"PWD: {f.pwd()}")
        names = f.nlst()
        expect(names == [], f"a fresh user's home lists {names}")
        expect(f.quit().startswith("221"), "QUIT was not answered 221")

    @check("ftplib: FEAT lists UTF8, MLST, SIZE, MDTM, REST STREAM, EPSV; OPTS UTF8 ON is accepted")
    def _():
        with connect() as f:
            feat = f.sendcmd("FEAT")
            for word in ["UTF8", "MLST", "SIZE", "MDTM", "REST STREAM", "EPSV"]:
                expect(re.search(rf"^ {word}\b", feat, re.M), f"FEAT lacks {word}: {feat}")
            expect(f.sendcmd("OPTS UTF8 ON").startswith("200"), "OPTS UTF8 ON")

    @check("ftplib: wrong password, unknown user and anonymous (not enabled) are refused with 530")
    def _():
        for user, pw in [(USER, PASSWORD + "x"), ("no-such-user", PASSWORD), ("anonymous", "guest@example.com")]:
            f = ftplib.FTP(timeout=TIMEOUT)
            f.connect(HOST, PORT)
            refused("530", f.login, user, pw)
            refused("530", f.nlst)  # still not logged in
            f.close()
        connect().quit()  # a success clears the brute-force counters

    @check("ftplib: MKD, CWD, PWD, CDUP, CWD .. (relative and absolute)")
    def _():
        with connect() as f:
            expect(f.sendcmd("MKD /py").startswith("257"), "MKD /py")
            expect(f.cwd("py").startswith("250"), "CWD py")
            expect(f.pwd() == "/py", f"PWD after CWD py: {f.pwd()}")
            expect(f.sendcmd("MKD sub").startswith("257"), "MKD sub (relative)")
            f.cwd("sub")
            expect(f.pwd() == "/py/sub", f"PWD: {f.pwd()}")
            expect(f.sendcmd("CDUP")[:1] == "2", "CDUP")
            expect(f.pwd() == "/py", f"PWD after CDUP: {f.pwd()}")
            f.cwd("..")
            expect(f.pwd() == "/", f"PWD after CWD ..: {f.pwd()}")
            f.cwd("/py/sub")
            expect(f.pwd() == "/py/sub", f"PWD after CWD /py/sub: {f.pwd()}")
            refused("550", f.cwd, "/py/nothere")
            refused("550", f.sendcmd, "MKD /py/sub")  # exists already
            refused("550", f.sendcmd, "MKD /py/no/such/parent")
            expect(f.pwd() == "/py/sub", "a refused CWD changed the directory")

    @check('ftplib: MKD answers 257 "PATH" with the path quoted (RFC 959)', known="mkd.rs replies with the bare path")
    def _():
        with connect() as f:
            reply = f.sendcmd("MKD /py/quoted")
            expect(reply.startswith('257 "/py/quoted"'), f'MKD /py/quoted answered: {reply} (want 257 "/py/quoted" ...)')
            expect(ftplib.parse257(reply) == "/py/quoted", f"ftplib's parse257 reads {ftplib.parse257(reply)!r}")

    @check("ftplib: STOR then RETR returns the same bytes; SIZE matches")
    def _():
        with connect() as f:
            expect(stor(f, "/py/data.bin", data).startswith("226"), "STOR")
            got = retr(f, "/py/data.bin")
            expect(got == data, f"RETR returned {len(got)} bytes that differ from the {len(data)} stored")
            expect(f.size("/py/data.bin") == len(data), f"SIZE {f.size('/py/data.bin')}")
            stor(f, "/py/empty.txt", b"")
            expect(retr(f, "/py/empty.txt") == b"" and f.size("/py/empty.txt") == 0, "empty file")
        return f"{len(data)} bytes"

    @check("ftplib: REST + RETR returns the tail; REST at the end returns nothing; beyond it is refused")
    def _():
        with connect() as f:
            got = retr(f, "/py/data.bin", rest=123_457)
            expect(got == data[123_457:], f"REST 123457 gave {len(got)} bytes, not the tail")
            expect(retr(f, "/py/data.bin") == data, "a RETR without REST after a REST + RETR")
            expect(retr(f, "/py/data.bin", rest=len(data)) == b"", "REST at the size")
            return refused("5", retr, f, "/py/data.bin", len(data) + 10)

    @check(
        "ftplib: a RETR after a refused REST + RETR starts at 0 (the restart offset is not kept)",
        known="the session's restart offset is reset only after a successful transfer",
    )
    def _():
        with connect() as f:
            refused("5", retr, f, "/py/data.bin", len(data) + 10)
            try:
                got = retr(f, "/py/data.bin")
            except ftplib.error_perm as e:
                raise Failed(
                    f"REST {len(data) + 10} + RETR /py/data.bin was refused; the next RETR /py/data.bin "
                    f"(no REST) answered: {e}"
                )
            expect(got == data, f"the next RETR returned {len(got)} bytes")

    @check("ftplib: REST + STOR resumes an interrupted upload")
    def _():
        with connect() as f:
            stor(f, "/py/resume.bin", data[:100_000])
            expect(f.size("/py/resume.bin") == 100_000, "the partial upload")
            expect(stor(f, "/py/resume.bin", data[100_000:], rest=100_000).startswith("226"), "STOR after REST")
            got = retr(f, "/py/resume.bin")
            expect(got == data, f"resumed file has {len(got)} bytes and differs from the original")

    @check("ftplib: APPE appends (and creates a missing file)")
    def _():
        with connect() as f:
            stor(f, "/py/appe.txt", b"first,")
            expect(stor(f, "/py/appe.txt", b"second", cmd="APPE").startswith("226"), "APPE")
            got = retr(f, "/py/appe.txt")
            expect(got == b"first,second", f"after APPE: {got!r}")
            stor(f, "/py/appe-new.txt", b"created", cmd="APPE")
            expect(retr(f, "/py/appe-new.txt") == b"created", "APPE of a new file")

    @check("ftplib: RNFR + RNTO renames a file into another directory, and a directory")
    def _():
        with connect() as f:
            stor(f, "/py/rename-me.bin", data)
            expect(f.sendcmd("RNFR /py/rename-me.bin").startswith("350"), "RNFR")
            expect(f.sendcmd("RNTO /py/sub/renamed.bin").startswith("250"), "RNTO")
            refused("550", f.size, "/py/rename-me.bin")
            expect(retr(f, "/py/sub/renamed.bin") == data, "renamed file's bytes")
            f.rename("/py/sub", "/py/moved-sub")
            refused("550", f.cwd, "/py/sub")
            expect(retr(f, "/py/moved-sub/renamed.bin") == data, "file inside the renamed directory")
            refused("550", f.sendcmd, "RNFR /py/not-there")

    @check("ftplib: DELE removes a file; DELE of a missing file or of a directory is refused")
    def _():
        with connect() as f:
            stor(f, "/py/dele.txt", b"x")
            expect(f.delete("/py/dele.txt").startswith("250"), "DELE")
            refused("550", f.size, "/py/dele.txt")
            expect("dele.txt" not in f.nlst("/py"), "still listed")
            refused("550", f.delete, "/py/dele.txt")
            refused("550", f.delete, "/py/moved-sub")
            expect(retr(f, "/py/moved-sub/renamed.bin") == data, "DELE of a directory removed its content")

    @check("ftplib: RMD removes an empty directory; a non-empty one is refused with 550 and kept")
    def _():
        with connect() as f:
            f.sendcmd("MKD /py/empty-dir")
            expect(f.rmd("/py/empty-dir").startswith("250"), "RMD of an empty directory")
            refused("550", f.cwd, "/py/empty-dir")
            reply = refused("550", f.rmd, "/py/moved-sub")
            expect(retr(f, "/py/moved-sub/renamed.bin") == data, "RMD of a non-empty directory lost its file")
            f.cwd("/py/moved-sub")
            refused("550", f.rmd, "/py/data.bin")  # a file
            return reply

    facts_dir = "/py/facts"
    files = {"a.txt": b"alpha", "b b.bin": blob(4321, 2), "zero": b""}
    inner = {"c.txt": b"inner file"}

    @check("ftplib: SIZE and MDTM (MDTM is UTC and recent)")
    def _():
        with connect() as f:
            f.sendcmd(f"MKD {facts_dir}")
            f.sendcmd(f"MKD {facts_dir}/inner")
            for name, body in files.items():
                stor(f, f"{facts_dir}/{name}", body)
            for name, body in inner.items():
                stor(f, f"{facts_dir}/inner/{name}", body)
            for name, body in files.items():
                expect(f.size(f"{facts_dir}/{name}") == len(body), f"SIZE of {name}")
            reply = f.sendcmd(f"MDTM {facts_dir}/a.txt")
            expect(reply.startswith("213 "), f"MDTM: {reply}")
            recent(reply[4:].strip())
            refused("550", f.sendcmd, f"MDTM {facts_dir}/missing")
            refused("550", f.size, f"{facts_dir}/missing")
            return reply

    @check("ftplib: MLSD lists each entry with type, size and modify facts")
    def _():
        with connect() as f:
            entries = dict(f.mlsd(facts_dir))
            entries.pop(".", None)
            entries.pop("..", None)
            expect(set(entries) == set(files) | {"inner"}, f"MLSD names: {sorted(entries)}")
            for name, body in files.items():
                e = {k.lower(): v for k, v in entries[name].items()}
                expect(e.get("type") == "file", f"{name}: type={e.get('type')}")
                expect(e.get("size") == str(len(body)), f"{name}: size={e.get('size')}, want {len(body)}")
                recent(e.get("modify", ""))
            d = {k.lower(): v for k, v in entries["inner"].items()}
            expect(d.get("type") == "dir", f"inner: type={d.get('type')}")
            mdtm = f.sendcmd(f"MDTM {facts_dir}/a.txt")[4:].strip()
            a = {k.lower(): v for k, v in entries["a.txt"].items()}
            expect(a["modify"][:14] == mdtm[:14], f"MLSD modify {a['modify']} != MDTM {mdtm}")

    @check("ftplib: MLST of an absolute path")
    def _():
        with connect() as f:
            facts, name = mlst_facts(f, f"{facts_dir}/b b.bin")
            expect(facts.get("type") == "file" and facts.get("size") == str(len(files["b b.bin"])), f"facts: {facts}")
            expect(name.endswith("b b.bin"), f"entry name: {name!r}")
            facts, _ = mlst_facts(f, f"{facts_dir}/inner")
            expect(facts.get("type") == "dir", f"inner: {facts}")
            refused("550", f.sendcmd, f"MLST {facts_dir}/missing")

    @check("ftplib: MLST of a relative path after CWD into a subdirectory finds the file there")
    def _():
        with connect() as f:
            f.cwd(f"{facts_dir}/inner")
            facts, name = mlst_facts(f, "c.txt")
            expect(facts.get("type") == "file", f"MLST c.txt facts: {facts}")
            expect(facts.get("size") == str(len(inner["c.txt"])), f"MLST c.txt size: {facts}")
            # a.txt exists in the parent only: relative MLST must not look there (or at /)
            refused("550", f.sendcmd, "MLST a.txt")
            facts, _ = mlst_facts(f)
            expect(facts.get("type") == "dir", f"MLST without argument: {facts}")
            f.cwd("/py")
            facts, _ = mlst_facts(f, "facts/a.txt")
            expect(facts.get("size") == "5", f"after CWD /py, MLST facts/a.txt: {facts}")
            f.cwd("/")
            facts, _ = mlst_facts(f, "py/facts/inner/c.txt")
            expect(facts.get("type") == "file", f"MLST py/facts/inner/c.txt from /: {facts}")

    @check(
        "ftplib: MLST of a relative path after CDUP or CWD .. uses the new working directory",
        known="MLST passes relative paths unjoined and CDUP never reaches the storage backend",
    )
    def _():
        problems = []
        with connect() as f:
            for up in ["CDUP", "CWD .."]:
                f.cwd(f"{facts_dir}/inner")
                f.voidcmd(up)
                pwd = f.pwd()
                try:
                    facts, _ = mlst_facts(f, "a.txt")
                    if facts.get("size") != "5":
                        problems.append(f"after {up} (PWD {pwd}), MLST a.txt gave {facts}")
                except ftplib.error_perm as e:
                    problems.append(f"after CWD {facts_dir}/inner, {up} (PWD {pwd}): MLST a.txt answered {e}")
        expect(not problems, "\n".join(problems))

    @check("ftplib: LIST shows every entry with its size; NLST lists exactly the names")
    def _():
        with connect() as f:
            lines = []
            f.retrlines(f"LIST {facts_dir}", lines.append)
            for name, body in files.items():
                hits = [ln for ln in lines if ln.endswith(" " + name)]
                expect(len(hits) == 1, f"LIST has no line for {name!r}: {lines}")
                expect(re.search(rf"\s{len(body)}\s", hits[0]) and hits[0].startswith("-"), f"LIST line: {hits[0]}")
            d = [ln for ln in lines if ln.endswith(" inner")]
            expect(len(d) == 1 and d[0].startswith("d"), f"LIST line of the directory: {d}")
            expect(len(lines) == len(files) + 1, f"LIST has {len(lines)} lines: {lines}")
            names = sorted(n.rsplit("/", 1)[-1] for n in f.nlst(facts_dir))
            expect(names == sorted(list(files) + ["inner"]), f"NLST: {names}")
            f.cwd(facts_dir)
            lines = []
            f.retrlines("LIST", lines.append)
            expect(len(lines) == len(files) + 1, f"LIST in the working directory: {lines}")
            expect(sorted(f.nlst()) == sorted(list(files) + ["inner"]), f"NLST in the working directory: {f.nlst()}")

    @check("ftplib: passive mode with ftp.set_pasv(True) (PASV) for RETR, STOR and LIST")
    def _():
        with connect() as f:
            f.set_pasv(True)
            sent = []
            real_sendcmd = f.sendcmd
            f.sendcmd = lambda cmd: (sent.append(cmd.split()[0]), real_sendcmd(cmd))[1]
            stor(f, "/py/pasv.bin", data)
            expect(retr(f, "/py/pasv.bin") == data, "RETR over PASV")
            expect(len(f.nlst("/py")) > 3, "NLST over PASV")
            expect("PASV" in sent, f"ftplib did not use PASV: {sent}")

    @check("ftplib: explicit PASV (227) and EPSV (229) data connections for RETR and STOR")
    def _():
        ports = []
        with connect() as f:
            f.voidcmd("TYPE I")
            for mode in ["PASV", "EPSV"]:
                got, final, port = transfer_via(f, mode, "RETR /py/data.bin")
                expect(final.startswith("226") and got == data, f"RETR over {mode}: {final}, {len(got)} bytes")
                body = blob(70_000, 3 if mode == "PASV" else 4)
                _, final, port2 = transfer_via(f, mode, f"STOR /py/{mode}.bin", upload=body)
                expect(final.startswith("226"), f"STOR over {mode}: {final}")
                expect(retr(f, f"/py/{mode}.bin") == body, f"bytes stored over {mode}")
                ports += [port, port2]
            # ftplib itself uses EPSV when it believes it is on IPv6
            f.af = socket.AF_INET6
            expect(retr(f, "/py/data.bin") == data, "RETR through ftplib's EPSV path")
        return f"data ports {ports}"

    utf = {
        "caf\u00e9.txt": b"nfd stored, nfc read",
        "\u65e5\u672c\u8a9e \u30d5\u30a1\u30a4\u30eb.txt": "日本語".encode(),
        "with  two spaces .txt": b"spaces",
    }

    @check("ftplib: UTF-8 names: an NFD name is stored as NFC; Japanese and spaces round-trip")
    def _():
        with connect() as f:
            f.sendcmd("MKD /py/utf8")
            nfd = unicodedata.normalize("NFD", "caf\u00e9.txt")
            expect(nfd == "cafe\u0301.txt", "test data is not NFD")
            stor(f, f"/py/utf8/{nfd}", utf["caf\u00e9.txt"])
            for name, body in utf.items():
                if name != "caf\u00e9.txt":
                    stor(f, f"/py/utf8/{name}", body)
            got = retr(f, "/py/utf8/caf\u00e9.txt")
            expect(got == utf["caf\u00e9.txt"], f"RETR of the NFC name: {got!r}")
            expect(retr(f, f"/py/utf8/{nfd}") == utf["caf\u00e9.txt"], "RETR of the NFD name")
            names = sorted(f.nlst("/py/utf8"))
            names = [n.rsplit("/", 1)[-1] for n in names]
            expect(names == sorted(utf), f"NLST: {[ascii(n) for n in names]}")
            mlsd = sorted(n for n, _ in f.mlsd("/py/utf8") if n not in (".", ".."))
            expect(mlsd == sorted(utf), f"MLSD: {[ascii(n) for n in mlsd]}")
            for name, body in utf.items():
                expect(retr(f, f"/py/utf8/{name}") == body, f"RETR {name!r}")
                expect(f.size(f"/py/utf8/{name}") == len(body), f"SIZE {name!r}")
            f.cwd("/py/utf8")
            expect(retr(f, "\u65e5\u672c\u8a9e \u30d5\u30a1\u30a4\u30eb.txt") == utf[
                "\u65e5\u672c\u8a9e \u30d5\u30a1\u30a4\u30eb.txt"], "relative RETR of the Japanese name")

    def root_listing():
        with connect() as f:
            return sorted(f.nlst("/"))

    @check("ftplib: CWD ../.. keeps the session in the user's tree (NLST/LIST show the user's root)")
    def _():
        expected = root_listing()
        expect(expected == ["py"], f"the user's root lists {expected}")
        with connect() as f:
            f.cwd("/py")
            reply = f.cwd("../..")
            names = sorted(f.nlst())
            expect(names == expected, f"NLST after CWD ../..: {names}")
            for system in ["etc", "usr", "bin", "proc", "root", "home", "public"]:
                expect(system not in names, f"{system} is listed")
            lines = []
            f.retrlines("LIST", lines.append)
            expect(len(lines) == 1 and lines[0].endswith(" py"), f"LIST after CWD ../..: {lines}")
            f.cwd("py/facts")  # relative to the top again
            expect(retr(f, "a.txt") == b"alpha", "RETR after CWD ../.. then CWD py/facts")
            return reply

    @check(
        "ftplib: PWD shows a normalised path after CWD ../.., CWD /../../.., CWD .. and CWD ./x/.",
        known="the session keeps the working directory as typed",
    )
    def _():
        problems = []
        with connect() as f:
            for start, arg, want in [
                ("/py", "../..", "/"),
                ("/py", "/../../..", "/"),
                ("/py/facts/inner", "..", "/py/facts"),
                ("/py", "./facts/.", "/py/facts"),
            ]:
                f.cwd(start)
                f.sendcmd(f"CWD {arg}")
                pwd = f.pwd()
                if pwd != want:
                    problems.append(f"CWD {start} then CWD {arg}: PWD answered {pwd!r}, want {want!r}")
        expect(not problems, "\n".join(problems))

    @check("ftplib: CWD /../../.. stays at the user's root")
    def _():
        expected = root_listing()
        with connect() as f:
            f.cwd("/../../..")
            names = sorted(f.nlst())
            expect(names == expected, f"NLST after CWD /../../..: {names}")
            refused("550", f.cwd, "etc")

    escapes = [
        "../../etc/passwd",
        "/../../etc/passwd",
        "../../../../../../../../etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "..\\..\\etc\\passwd",
        "/..\\..\\etc\\passwd",
        "....//....//etc/passwd",
    ]

    @check("ftplib: escape attempts (RETR/SIZE/MLST/LIST ../../etc/passwd and variants) are 550")
    def _():
        replies = set()
        with connect() as f:
            for cwd in ["/", "/py/facts/inner"]:
                f.cwd(cwd)
                for p in escapes:
                    try:
                        got = retr(f, p)
                    except ftplib.error_perm as e:
                        expect(str(e).startswith("550"), f"RETR {p} from {cwd}: {e}")
                        replies.add(str(e))
                        continue
                    not_host_passwd(got)
                    raise Failed(f"RETR {p} from {cwd} returned {len(got)} bytes: {got[:80]!r}")
                refused("550", f.size, "../../../../etc/passwd")
                refused("550", f.sendcmd, "MLST ../../etc/passwd")
                refused("550", f.sendcmd, "MDTM /../../etc/passwd")
                refused("550", f.retrlines, "LIST ../../etc", lambda line: None)
                refused("550", f.nlst, "/../../etc")
                refused("550", f.cwd, "/../../etc")
        return "; ".join(sorted(replies))

    @check("ftplib: with the user's own /etc/passwd, ../../etc/passwd resolves inside the user's tree")
    def _():
        marker = b"the user's own passwd, not the host's\n"
        with connect() as f:
            f.sendcmd("MKD /etc")
            stor(f, "/etc/passwd", marker)
            for cwd, up in [("/", "../.."), ("/py/facts/inner", "../../..")]:
                f.cwd(cwd)
                for p in [f"{up}/etc/passwd", "/../../etc/passwd", "../../../../../../etc/passwd"]:
                    got = retr(f, p)
                    not_host_passwd(got)
                    expect(got == marker, f"RETR {p} from {cwd}: {got[:80]!r}")
                expect(f.size("../../../../etc/passwd") == len(marker), "SIZE ../../../../etc/passwd")
                for p in ["%2e%2e/%2e%2e/etc/passwd", "..\\..\\etc\\passwd"]:
                    refused("550", retr, f, p)
            f.cwd("/../../..")
            f.cwd("etc")
            expect(retr(f, "passwd") == marker, "CWD /../../.. then CWD etc then RETR passwd")
            f.cwd("/")
            f.delete("/etc/passwd")
            f.rmd("/etc")

    @check("ftplib: QUIT is answered 221")
    def _():
        f = connect()
        reply = f.quit()
        expect(reply.startswith("221"), f"QUIT: {reply}")


# --- FTPS ----------------------------------------------------------------------------------


def upload_tolerant(f, path, body):
    """storbinary over TLS. Returns (exception or None, the final reply). When storbinary
    raised after the data was sent, the transfer's final reply is still unread on the
    control connection: read it, so that the session stays in step."""
    try:
        return None, stor(f, path, body)
    except (ssl.SSLError, OSError, EOFError) as e:
        try:
            final = f.getresp()
        except ftplib.all_errors as e2:
            final = f"(no final reply: {type(e2).__name__}: {e2})"
        return e, final


def tls_mode():
    body = blob(1_500_000, 5)

    @check("ftplib FTPS: AUTH TLS, login over TLS, PBSZ/PROT P")
    def _():
        f = ftplib.FTP_TLS(context=tls_context(), timeout=TIMEOUT)
        f.connect(HOST, PORT)
        expect(f.auth().startswith("234"), "AUTH TLS")
        expect(isinstance(f.sock, ssl.SSLSocket), "the control connection is not TLS")
        version, cipher = f.sock.version(), f.sock.cipher()[0]
        expect(f.login(USER, PASSWORD).startswith("230"), "login")
        expect(f.prot_p().startswith("200"), "PROT P")
        expect(f.pwd() == "/", "PWD")
        f.quit()
        return f"{version}, {cipher}"

    outcomes = []

    @check(
        "ftplib FTPS: upload completes without client error (storbinary over PROT P)",
        known="the data channel never answers the client's TLS close_notify after STOR",
    )
    def _():
        with connect(tls=True) as f:
            f.sendcmd("MKD /ftps")
            sizes = [len(body), 1, 64 * 1024, 300_000]
            for i, n in enumerate(sizes):
                e, final = upload_tolerant(f, f"/ftps/up{i}.bin", body[:n])
                outcomes.append((n, e, final))
        bad = [(n, e, final) for n, e, final in outcomes if e is not None or not final.startswith("226")]
        if bad:
            lines = [
                f"{len(bad)} of {len(outcomes)} storbinary calls raised (the known libunftp TLS close_notify defect):"
            ]
            for n, e, final in bad:
                lines.append(f"STOR of {n} bytes: storbinary raised {type(e).__name__}: {e}; final reply read afterwards: {final}")
            raise Failed("\n".join(lines))

    @check("ftplib FTPS: the uploads stored every byte (verified by RETR over PROT P)")
    def _():
        expect(outcomes, "no upload was attempted")
        with connect(tls=True) as f:
            for i, (n, _, final) in enumerate(outcomes):
                expect(final.startswith("226"), f"upload {i} ({n} bytes) ended with {final}")
                got = retr(f, f"/ftps/up{i}.bin")
                expect(got == body[:n], f"up{i}.bin: RETR gave {len(got)} bytes, {n} were sent")
                expect(f.size(f"/ftps/up{i}.bin") == n, f"SIZE of up{i}.bin")

    @check("ftplib FTPS: RETR, REST + RETR and MLSD over a protected data channel")
    def _():
        with connect(tls=True) as f:
            stor_ok = outcomes and outcomes[0][2].startswith("226")
            expect(stor_ok, "nothing to read: the first upload failed")
            expect(retr(f, "/ftps/up0.bin") == body, "RETR")
            expect(retr(f, "/ftps/up0.bin", rest=1_000_000) == body[1_000_000:], "REST + RETR")
            entries = {n: {k.lower(): v for k, v in e.items()} for n, e in f.mlsd("/ftps")}
            expect(entries.get("up0.bin", {}).get("size") == str(len(body)), f"MLSD: {entries}")
            expect(entries["up0.bin"].get("type") == "file", f"MLSD type: {entries['up0.bin']}")
            expect(f.voidcmd("NOOP").startswith("200"), "NOOP afterwards")

    @check("ftplib FTPS: PROT C (clear data) still works when TLS is optional")
    def _():
        with connect(tls=True) as f:
            expect(f.prot_c().startswith("200"), "PROT C")
            expect(retr(f, "/ftps/up2.bin") == body[: 64 * 1024], "RETR over a clear data channel")


def tls_required_mode():
    @check("ftplib --ftps-required: a plain (non-TLS) login is refused")
    def _():
        f = ftplib.FTP(timeout=TIMEOUT)
        f.connect(HOST, PORT)
        try:
            reply = f.login(USER, PASSWORD)
        except ftplib.all_errors as e:
            reply = str(e)
            expect(reply[:1] in "45", f"refused with {reply}")
            try:
                f.nlst()
            except ftplib.all_errors as e2:
                return f"login: {reply}; NLST then: {e2}"
            raise Failed(f"NLST worked after the refused login ({reply})")
        raise Failed(f"plain login accepted: {reply}")

    @check("ftplib --ftps-required: TLS login works and a protected STOR/RETR round-trips")
    def _():
        body = blob(200_000, 6)
        with connect(tls=True) as f:
            e, final = upload_tolerant(f, "/required.bin", body)
            expect(final.startswith("226"), f"STOR ended with {final} (storbinary raised {e!r})")
            expect(retr(f, "/required.bin") == body, "RETR over PROT P")
            return "storbinary raised " + type(e).__name__ if e else "no client error"

    @check("ftplib --ftps-required: a clear data channel (PROT C) is refused")
    def _():
        with connect(tls=True) as f:
            try:
                reply = f.prot_c()
            except ftplib.error_perm as e:
                return f"PROT C: {e}"
            try:
                got = retr(f, "/required.bin")
            except ftplib.all_errors as e:
                expect(str(e)[:1] in "45", f"RETR after PROT C: {e}")
                return f"PROT C: {reply}; RETR: {e}"
            raise Failed(f"RETR over a clear data channel returned {len(got)} bytes ({reply})")


def login_mode(why):
    @check(f"ftplib: the right password logs in{why}")
    def _():
        with connect() as f:
            expect(f.pwd() == "/", "PWD")


def lockout_mode(bad):
    @check(f"ftplib: {bad} wrong password(s), then the right one is refused (locked out)")
    def _():
        for i in range(bad):
            f = ftplib.FTP(timeout=TIMEOUT)
            f.connect(HOST, PORT)
            refused("530", f.login, USER, f"wrong-{i}")
            f.close()
        f = ftplib.FTP(timeout=TIMEOUT)
        f.connect(HOST, PORT)
        reply = refused("5", f.login, USER, PASSWORD)
        f.close()
        return reply


def anonymous_mode(name, content):
    content = content.encode()
    for user in ["anonymous", "ftp"]:

        @check(f"ftplib --anonymous: user {user} logs in, lists and reads the public area")
        def _():
            with connect(user, "guest@example.com") as f:
                names = f.nlst()
                expect(name in names, f"NLST: {names}")
                expect(retr(f, name) == content, "RETR")
                entries = dict(f.mlsd())
                expect(entries.get(name, {}).get("size") == str(len(content)), f"MLSD: {entries}")
                expect(f.pwd() == "/", f"PWD {f.pwd()}")

        @check(f"ftplib --anonymous: user {user} may not STOR (550), APPE, MKD, DELE, RNFR/RNTO")
        def _():
            with connect(user, "guest@example.com") as f:
                reply = refused("550", stor, f, "new.txt", b"should not be stored")
                refused("550", stor, f, name, b"overwrite", None, "APPE")
                refused("550", stor, f, name, b"overwrite")
                refused("550", f.sendcmd, "MKD newdir")
                refused("550", f.delete, name)
                try:
                    f.sendcmd(f"RNFR {name}")
                    refused("550", f.sendcmd, "RNTO renamed.txt")
                except ftplib.error_perm as e:
                    expect(str(e).startswith("550"), f"RNFR: {e}")
                expect("new.txt" not in f.nlst(), "new.txt appeared")
                expect(retr(f, name) == content, "the public file changed")
                return reply

    @check("ftplib --anonymous: a wrong password for a real user is still 530")
    def _():
        f = ftplib.FTP(timeout=TIMEOUT)
        f.connect(HOST, PORT)
        refused("530", f.login, "admin", "not-the-password")
        f.close()


def passive_mode(first, last):
    @check(f"ftplib --ftp-passive-ports {first}-{last}: PASV and EPSV ports are in the range")
    def _():
        ports = []
        with connect() as f:
            f.voidcmd("TYPE I")
            stor(f, "/passive.bin", b"passive range")
            for mode in ["PASV", "EPSV"] * 4:
                got, final, port = transfer_via(f, mode, "RETR /passive.bin")
                expect(got == b"passive range" and final.startswith("226"), f"RETR over {mode}: {final}")
                expect(first <= port <= last, f"{mode} offered port {port}")
                ports.append(port)
        return f"ports {sorted(set(ports))}"


def main():
    global HOST, PORT, USER, PASSWORD
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    mode, HOST, PORT, USER, PASSWORD = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    rest = sys.argv[6:]
    if mode == "plain":
        plain()
    elif mode == "tls":
        tls_mode()
    elif mode == "tls-required":
        tls_required_mode()
    elif mode == "login":
        login_mode(" ".join(rest))
    elif mode == "lockout":
        lockout_mode(int(rest[0]))
    elif mode == "anonymous":
        anonymous_mode(USER, PASSWORD)
    elif mode == "passive":
        passive_mode(int(rest[0]), int(rest[1]))
    else:
        sys.exit(f"unknown mode {mode}\n{__doc__}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
