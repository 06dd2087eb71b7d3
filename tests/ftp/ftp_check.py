"""The harness of the ftplib checks: the `check` decorator and small FTP helpers, shared by
ftp_clients.py (entry point, FTPS and server-mode checks) and ftp_plain.py (plain FTP)."""

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


class T:
    """The server under test and the account to use (set once by main)."""

    host = "127.0.0.1"
    port = 0
    user = ""
    password = ""
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
    f.connect(T.host, T.port)
    f.login(T.user if user is None else user, T.password if password is None else password)
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
        expect(host == T.host, f"PASV announced {host}, the server is {T.host}")
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
