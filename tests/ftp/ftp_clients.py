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

import sys

import ftp_check
from ftp_check import *  # noqa: F403 - the checks' shared vocabulary
from ftp_plain import plain

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
        f.connect(T.host, T.port)
        expect(f.auth().startswith("234"), "AUTH TLS")
        expect(isinstance(f.sock, ssl.SSLSocket), "the control connection is not TLS")
        version, cipher = f.sock.version(), f.sock.cipher()[0]
        expect(f.login(T.user, T.password).startswith("230"), "login")
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
        f.connect(T.host, T.port)
        try:
            reply = f.login(T.user, T.password)
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
            f.connect(T.host, T.port)
            refused("530", f.login, T.user, f"wrong-{i}")
            f.close()
        f = ftplib.FTP(timeout=TIMEOUT)
        f.connect(T.host, T.port)
        reply = refused("5", f.login, T.user, T.password)
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
        f.connect(T.host, T.port)
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
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    mode, T.host, T.port, T.user, T.password = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
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
        anonymous_mode(T.user, T.password)
    elif mode == "passive":
        passive_mode(int(rest[0]), int(rest[1]))
    else:
        sys.exit(f"unknown mode {mode}\n{__doc__}")
    sys.exit(1 if ftp_check.failures else 0)


if __name__ == "__main__":
    main()
