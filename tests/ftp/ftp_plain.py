"""The plain-FTP checks of ftp_clients.py (`plain` mode): every command, as a fresh user."""

from ftp_check import *  # noqa: F403 - the checks' shared vocabulary

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
        for user, pw in [(T.user, T.password + "x"), ("no-such-user", T.password), ("anonymous", "guest@example.com")]:
            f = ftplib.FTP(timeout=TIMEOUT)
            f.connect(T.host, T.port)
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
