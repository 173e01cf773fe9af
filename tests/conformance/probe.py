#!/usr/bin/env python3
"""Conformance probes for `btsdr sim` with Python clients nobody here wrote, over TLS with the
simulator's certificate validated. Expected values are SQL Server's documented behaviour.

usage: probe.py CLIENT HOST PORT USER PASSWORD CA_PEM WRONG_CA_PEM
CLIENT: python-tds | pyodbc-freetds | mssql-python
Prints one line per probe (PASS/FAIL) and `CLIENT: N/M passed`; exits 1 on any failure.
"""
import sys
import traceback

CLIENT, HOST, PORT, USER, PASSWORD, CA, WRONG_CA = sys.argv[1:8]
PORT = int(PORT)


def connect(ca, database="master"):
    """A DB-API connection with encryption required and the certificate checked against `ca`."""
    if CLIENT == "python-tds":
        import pytds

        return pytds.connect(
            HOST, database=database, user=USER, password=PASSWORD, port=PORT,
            cafile=ca, validate_host=False, autocommit=True, login_timeout=10,
        )
    if CLIENT == "pyodbc-freetds":
        import os
        import tempfile

        import pyodbc

        # FreeTDS reads TLS settings from freetds.conf (FREETDSCONF names the file).
        conf = os.path.join(tempfile.mkdtemp(), "freetds.conf")
        with open(conf, "w") as f:
            f.write(f"[btsdrsim]\n\thost = {HOST}\n\tport = {PORT}\n\ttds version = 7.4\n"
                    f"\tencryption = require\n\tca file = {ca}\n")
        os.environ["FREETDSCONF"] = conf
        return pyodbc.connect(
            f"Driver=FreeTDS;Servername=btsdrsim;Database={database};UID={USER};PWD={PASSWORD}",
            autocommit=True, timeout=10,
        )
    if CLIENT == "mssql-python":
        # Microsoft's ODBC Driver 18, bundled: Encrypt=yes validates against the system store,
        # which the caller points at the CA with SSL_CERT_FILE (OpenSSL's own variable).
        import mssql_python

        return mssql_python.connect(
            f"Server=tcp:{HOST},{PORT};Database={database};UID={USER};PWD={PASSWORD};"
            "Encrypt=yes;TrustServerCertificate=no;HostNameInCertificate=localhost",
            autocommit=True,
        )
    raise SystemExit(f"unknown client {CLIENT}")


def scalar(conn, sql):
    cur = conn.cursor()
    cur.execute(sql)
    row = cur.fetchone()
    return row[0]


def probe_login_tls(conn):
    assert scalar(conn, "SELECT 1") == 1


def probe_wrong_ca_refused(_conn):
    # In a child process: mssql-python's trust store (SSL_CERT_FILE) is per process.
    import os
    import subprocess

    env = dict(os.environ, SSL_CERT_FILE=WRONG_CA)
    args = [sys.executable, __file__, CLIENT, HOST, str(PORT), USER, PASSWORD, WRONG_CA, WRONG_CA,
            "--connect-only"]
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, f"connected although the certificate is signed by another CA: {r}"


def probe_version(conn):
    v = scalar(conn, "SELECT @@VERSION")
    assert v.startswith("Microsoft SQL Server"), v


def probe_sys_databases(conn):
    cur = conn.cursor()
    cur.execute("SELECT name FROM sys.databases")
    names = {r[0] for r in cur.fetchall()}
    for n in ("master", "msdb", "BizTalkMgmtDb", "BizTalkDTADb"):
        assert n in names, (n, names)


def probe_biztalk_table(conn):
    n = scalar(conn, "SELECT COUNT(*) FROM BizTalkMgmtDb.dbo.adm_Group")
    assert n == 1, n


def probe_several_result_sets(conn):
    cur = conn.cursor()
    cur.execute("SELECT 1 AS a; SELECT 'two' AS b")
    assert cur.fetchall()[0][0] == 1
    assert cur.nextset()
    assert cur.fetchall()[0][0] == "two"


def probe_result_over_64k(conn):
    cur = conn.cursor()
    cur.execute("SELECT REPLICATE(CAST('x' AS nvarchar(max)), 40000)")
    assert len(cur.fetchone()[0]) == 40000


def probe_use(conn):
    conn.cursor().execute("USE BizTalkDTADb")
    assert scalar(conn, "SELECT DB_NAME()") == "BizTalkDTADb"
    conn.cursor().execute("USE master")


def probe_error_keeps_connection(conn):
    try:
        scalar(conn, "SELECT * FROM dbo.no_such_table_xyz")
    except Exception as e:
        assert "no_such_table_xyz" in str(e), e
    else:
        raise AssertionError("no error for a missing table")
    assert scalar(conn, "SELECT 2") == 2


def probe_parameters(conn):
    cur = conn.cursor()
    mark = "%s" if CLIENT == "python-tds" else "?"
    cur.execute(f"SELECT name FROM sys.databases WHERE name = {mark}", ("msdb",))
    assert cur.fetchone()[0] == "msdb"


def probe_parameters_reused(conn):
    # ODBC drivers prepare (sp_prepexec) then reuse the handle (sp_execute).
    cur = conn.cursor()
    mark = "%s" if CLIENT == "python-tds" else "?"
    for name in ("master", "msdb", "tempdb"):
        cur.execute(f"SELECT name FROM sys.databases WHERE name = {mark}", (name,))
        assert cur.fetchone()[0] == name


def probe_top_without_parentheses(conn):
    cur = conn.cursor()
    cur.execute("SELECT TOP 2 name FROM sys.databases")
    assert len(cur.fetchall()) == 2


def probe_connect_globals(conn):
    cur = conn.cursor()
    cur.execute("SELECT @@MICROSOFTVERSION, @@LANGUAGE, CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128))")
    mv, lang, pv = cur.fetchone()
    major, minor, build = (int(x) for x in pv.split(".")[:3])
    assert mv == (major << 24) | (minor << 16) | build, (mv, pv)
    assert lang == "us_english", lang


def probe_transactions(conn):
    cur = conn.cursor()
    cur.execute("BEGIN TRAN")
    assert scalar(conn, "SELECT @@TRANCOUNT") == 1
    conn.cursor().execute("ROLLBACK")
    assert scalar(conn, "SELECT @@TRANCOUNT") == 0
    try:
        conn.cursor().execute("COMMIT")
    except Exception as e:
        assert "3902" in str(e) or "no corresponding BEGIN" in str(e), e
    else:
        raise AssertionError("COMMIT without BEGIN TRANSACTION succeeded")


def probe_sp_executesql_as_text(conn):
    n = scalar(conn, "EXEC sp_executesql N'SELECT name FROM sys.databases WHERE name = @n', "
                     "N'@n nvarchar(128)', @n = N'msdb'")
    assert n == "msdb", n


def probe_missing_database_is_4060(_conn):
    try:
        connect(CA, database="NoSuchDb").close()
    except Exception as e:
        # python-tds surfaces 4060; the ODBC drivers the 18456 that follows it.
        expected = ("4060", "Cannot open database") if CLIENT == "python-tds" else ("4060", "18456", "Login failed")
        assert any(x in str(e) for x in expected), e
    else:
        raise AssertionError("logged in to a database that does not exist")


def probe_nocount(conn):
    # SET NOCOUNT ON: DONE tokens without a count, so the driver knows no row count (-1).
    cur = conn.cursor()
    cur.execute("SET NOCOUNT OFF; DECLARE @t TABLE (a int); INSERT INTO @t VALUES (1), (2)")
    assert cur.rowcount == 2, cur.rowcount
    cur = conn.cursor()
    cur.execute("SET NOCOUNT ON; DECLARE @t TABLE (a int); INSERT INTO @t VALUES (1), (2)")
    # No count: -1, or 0 where pyodbc maps FreeTDS's SQL_NO_DATA to 0.
    assert cur.rowcount in (-1, 0), cur.rowcount
    conn.cursor().execute("SET NOCOUNT OFF")


def probe_fmtonly(conn):
    # SET FMTONLY ON: the result set's columns, no rows (what `freebcp queryout` asks first).
    conn.cursor().execute("SET FMTONLY ON")
    try:
        cur = conn.cursor()
        cur.execute("SELECT name, database_id FROM sys.databases")
        assert [d[0] for d in cur.description] == ["name", "database_id"], cur.description
        assert cur.fetchall() == []
    finally:
        conn.cursor().execute("SET FMTONLY OFF")
    assert scalar(conn, "SELECT COUNT(*) FROM sys.databases") > 3


def probe_raiserror_arguments(conn):
    try:
        conn.cursor().execute("RAISERROR('db %s has %d rows, %5.2s|%-3i|%u', 16, 1, N'msdb', 7, 'abc', 4, -1)")
    except Exception as e:
        assert "db msdb has 7 rows,    ab|4  |4294967295" in str(e), e
    else:
        raise AssertionError("RAISERROR severity 16 raised nothing")


def probe_datetime2_keeps_its_precision(conn):
    # datetime2(7) keeps 100 ns; Python's datetime shows the first six of the seven digits.
    v = scalar(conn, "SELECT CAST('2024-01-02 03:04:05.1234567' AS datetime2(7))")
    assert (v.second, v.microsecond) == (5, 123456), v


def probe_binary_literal(conn):
    assert bytes(scalar(conn, "SELECT 0x0A0BFF")) == b"\x0a\x0b\xff"


def probe_dm_os_host_info(conn):
    # What SSMS and sqlcmd ask at connect (SQL Server 2017+).
    cur = conn.cursor()
    cur.execute("SELECT host_platform, host_release FROM sys.dm_os_host_info")
    assert tuple(cur.fetchone()) == ("Windows", "10.0")


if CLIENT != "pyodbc-freetds":
    # FreeTDS's ODBC driver refuses sql_variant columns (HY091 from SQLColAttribute); whether it
    # does so against SQL Server too is not known here, so it is not probed.
    def probe_serverproperty_is_sql_variant(conn):
        cur = conn.cursor()
        cur.execute("SELECT SERVERPROPERTY('ProductVersion'), SERVERPROPERTY('EngineEdition')")
        version, edition = cur.fetchone()
        assert version.startswith("15.") and int(edition) == 3, (version, edition)
        if CLIENT == "python-tds":
            assert [d[1] for d in cur.description] == [98, 98], cur.description  # SQLVARIANT


if CLIENT == "python-tds":
    # The DB-API exposes the ERROR token's line and server only in python-tds.
    def probe_error_line_and_server(conn):
        import pytds

        server = scalar(conn, "SELECT @@SERVERNAME")
        try:
            conn.cursor().execute("DECLARE @x int\n\n-- three\nSELECT * FROM dbo.no_such_table_xyz")
        except pytds.Error as e:
            assert (e.line, e.srvname, e.number) == (4, server, 208), (e.line, e.srvname, e.number)
        else:
            raise AssertionError("no error for a missing table")


PROBES = [(n[len("probe_"):], f) for n, f in sorted(globals().items()) if n.startswith("probe_")]


def main():
    if "--connect-only" in sys.argv:
        try:
            connect(CA).close()
        except Exception:
            return 3
        return 0
    passed = failed = 0
    try:
        conn = connect(CA)
    except Exception as e:
        print(f"FAIL {CLIENT} connect: {e}")
        print(f"{CLIENT}: 0/{len(PROBES)} passed")
        return 1
    for name, f in PROBES:
        try:
            f(conn)
            print(f"PASS {CLIENT} {name}")
            passed += 1
        except Exception as e:
            failed += 1
            print(f"FAIL {CLIENT} {name}: {type(e).__name__}: {e}")
            if "-v" in sys.argv:
                traceback.print_exc()
    print(f"{CLIENT}: {passed}/{passed + failed} passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
