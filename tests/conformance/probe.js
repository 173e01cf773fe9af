#!/usr/bin/env node
// Conformance probes for `btsdr sim` with tedious (Node), over TLS with the simulator's
// certificate validated; the same probes as probe.py, SQL Server's documented answers.
// usage: node probe.js HOST PORT USER PASSWORD CA_PEM WRONG_CA_PEM   (tedious from NODE_PATH)
'use strict';
const fs = require('fs');
const { Connection, Request, TYPES } = require('tedious');

const [HOST, PORT, USER, PASSWORD, CA, WRONG_CA] = process.argv.slice(2);

function connect(ca) {
  return new Promise((resolve, reject) => {
    const c = new Connection({
      server: HOST,
      authentication: { type: 'default', options: { userName: USER, password: PASSWORD } },
      options: {
        port: Number(PORT), database: 'master', encrypt: true, trustServerCertificate: false,
        cryptoCredentialsDetails: { ca: fs.readFileSync(ca) }, connectTimeout: 10000,
        rowCollectionOnRequestCompletion: true,
      },
    });
    c.on('connect', (err) => (err ? reject(err) : resolve(c)));
    c.on('error', () => {});
    c.connect();
  });
}

// Every result set of `sql` as arrays of values.
function query(c, sql, params = []) {
  return new Promise((resolve, reject) => {
    const sets = [];
    let cur = null;
    const r = new Request(sql, (err) => (err ? reject(err) : resolve(sets)));
    r.on('columnMetadata', () => { cur = []; sets.push(cur); });
    r.on('row', (cols) => cur.push(cols.map((x) => x.value)));
    for (const [name, type, value] of params) r.addParameter(name, type, value);
    if (params.length) c.execSql(r); else c.execSqlBatch(r);
  });
}

const assert = (ok, what) => { if (!ok) throw new Error(what); };

const probes = {
  async login_tls(c) { assert((await query(c, 'SELECT 1'))[0][0][0] === 1, 'SELECT 1'); },
  async wrong_ca_refused() {
    let c;
    try { c = await connect(WRONG_CA); } catch (e) { return; }
    c.close();
    throw new Error('connected although the certificate is signed by another CA');
  },
  async version(c) {
    const v = (await query(c, 'SELECT @@VERSION'))[0][0][0];
    assert(v.startsWith('Microsoft SQL Server'), v);
  },
  async sys_databases(c) {
    const names = (await query(c, 'SELECT name FROM sys.databases'))[0].map((r) => r[0]);
    for (const n of ['master', 'msdb', 'BizTalkMgmtDb', 'BizTalkDTADb']) assert(names.includes(n), n);
  },
  async biztalk_table(c) {
    const n = (await query(c, 'SELECT COUNT(*) FROM BizTalkMgmtDb.dbo.adm_Group'))[0][0][0];
    assert(n === 1, String(n));
  },
  async several_result_sets(c) {
    const sets = await query(c, "SELECT 1 AS a; SELECT 'two' AS b");
    assert(sets.length === 2 && sets[1][0][0] === 'two', JSON.stringify(sets));
  },
  async result_over_64k(c) {
    const s = (await query(c, "SELECT REPLICATE(CAST('x' AS nvarchar(max)), 40000)"))[0][0][0];
    assert(s.length === 40000, String(s.length));
  },
  async use(c) {
    await query(c, 'USE BizTalkDTADb');
    assert((await query(c, 'SELECT DB_NAME()'))[0][0][0] === 'BizTalkDTADb', 'DB_NAME()');
    await query(c, 'USE master');
  },
  async error_keeps_connection(c) {
    let failed = false;
    try { await query(c, 'SELECT * FROM dbo.no_such_table_xyz'); } catch (e) {
      failed = true;
      assert(/no_such_table_xyz/.test(e.message), e.message);
    }
    assert(failed, 'no error for a missing table');
    assert((await query(c, 'SELECT 2'))[0][0][0] === 2, 'SELECT 2 after the error');
  },
  async parameters(c) {
    const rows = (await query(c, 'SELECT name FROM sys.databases WHERE name = @n',
      [['n', TYPES.NVarChar, 'msdb']]))[0];
    assert(rows.length === 1 && rows[0][0] === 'msdb', JSON.stringify(rows));
  },
  async prepared_statement(c) {
    // tedious's prepare/execute: sp_prepare, then sp_execute with the handle, sp_unprepare.
    const got = await new Promise((resolve, reject) => {
      const seen = [];
      const r = new Request('SELECT name FROM sys.databases WHERE name = @n', (err) => {
        if (err) reject(err);
      });
      r.addParameter('n', TYPES.NVarChar);
      r.on('row', (cols) => seen.push(cols[0].value));
      let runs = 0;
      r.on('prepared', () => c.execute(r, { n: 'msdb' }));
      r.on('requestCompleted', () => {
        runs += 1;
        if (runs === 1) c.execute(r, { n: 'tempdb' });
        else if (runs === 2) c.unprepare(r);
        else resolve(seen);
      });
      c.prepare(r);
    });
    assert(JSON.stringify(got) === '["msdb","tempdb"]', JSON.stringify(got));
  },
  async attention_cancels_waitfor(c) {
    // An attention (cancel) ends WAITFOR DELAY '00:00:30' at once; the connection stays usable.
    const started = Date.now();
    const err = await new Promise((resolve) => {
      const r = new Request("WAITFOR DELAY '00:00:30'", (e) => resolve(e));
      c.execSqlBatch(r);
      setTimeout(() => c.cancel(), 200);
    });
    const took = Date.now() - started;
    assert(err && err.code === 'ECANCEL', `not cancelled: ${err}`);
    assert(took < 5000, `cancel took ${took} ms`);
    assert((await query(c, 'SELECT 3'))[0][0][0] === 3, 'SELECT 3 after the cancel');
  },
  async attention_cancels_a_streaming_result(c) {
    // 100,000 rows stream out; a cancel after the first row ends them and keeps the connection.
    const sql = 'SELECT a.name, b.name, c.name, d.name, e.name FROM ' +
      ['a', 'b', 'c', 'd', 'e'].map((t) => `(SELECT name FROM sys.databases) ${t}`).join(' CROSS JOIN ');
    let rows = 0;
    const err = await new Promise((resolve) => {
      const r = new Request(sql, (e) => resolve(e));
      r.on('row', () => { rows += 1; if (rows === 1) c.cancel(); });
      c.execSqlBatch(r);
    });
    assert(err && err.code === 'ECANCEL', `not cancelled: ${err}`);
    assert(rows < 100000, `all ${rows} rows arrived`);
    assert((await query(c, 'SELECT 4'))[0][0][0] === 4, 'SELECT 4 after the cancel');
  },
  async transactions(c) {
    await query(c, 'BEGIN TRAN');
    assert((await query(c, 'SELECT @@TRANCOUNT'))[0][0][0] === 1, '@@TRANCOUNT after BEGIN');
    await query(c, 'ROLLBACK');
    assert((await query(c, 'SELECT @@TRANCOUNT'))[0][0][0] === 0, '@@TRANCOUNT after ROLLBACK');
    let code = null;
    try { await query(c, 'COMMIT'); } catch (e) { code = e.number; }
    assert(code === 3902, `COMMIT without BEGIN: ${code}`);
  },
  async nocount(c) {
    // SET NOCOUNT ON: DONE tokens without DONE_COUNT, so tedious reports no row count.
    const counts = (sql) => new Promise((resolve, reject) => {
      const seen = [];
      const r = new Request(sql, (err) => (err ? reject(err) : resolve(seen)));
      r.on('doneInProc', (n) => seen.push(n));
      r.on('done', (n) => seen.push(n));
      c.execSqlBatch(r);
    });
    const insert = 'DECLARE @t TABLE (a int); INSERT INTO @t VALUES (1), (2)';
    const off = await counts(`SET NOCOUNT OFF; ${insert}`);
    assert(off.includes(2), `counts with NOCOUNT OFF: ${JSON.stringify(off)}`);
    const on = await counts(`SET NOCOUNT ON; ${insert}`);
    assert(on.every((n) => n === undefined), `counts with NOCOUNT ON: ${JSON.stringify(on)}`);
    await query(c, 'SET NOCOUNT OFF');
  },
  async fmtonly(c) {
    await query(c, 'SET FMTONLY ON');
    let cols = null;
    const rows = await new Promise((resolve, reject) => {
      const seen = [];
      const r = new Request('SELECT name, database_id FROM sys.databases',
        (err) => (err ? reject(err) : resolve(seen)));
      r.on('columnMetadata', (m) => { cols = m.map((x) => x.colName); });
      r.on('row', (x) => seen.push(x));
      c.execSqlBatch(r);
    });
    await query(c, 'SET FMTONLY OFF');
    assert(JSON.stringify(cols) === '["name","database_id"]', JSON.stringify(cols));
    assert(rows.length === 0, `${rows.length} rows with FMTONLY ON`);
  },
  async error_line_and_server(c) {
    const server = (await query(c, 'SELECT @@SERVERNAME'))[0][0][0];
    let e = null;
    try { await query(c, 'SELECT 1\n\n-- three\nSELECT * FROM dbo.no_such_table_xyz'); } catch (x) { e = x; }
    assert(e, 'no error for a missing table');
    assert(e.lineNumber === 4 && e.serverName === server && e.number === 208,
      `line ${e.lineNumber}, server ${e.serverName} (expected ${server}), number ${e.number}`);
  },
  async raiserror_arguments(c) {
    let e = null;
    try {
      await query(c, "RAISERROR('db %s has %d rows, %5.2s|%-3i|%u', 16, 1, N'msdb', 7, 'abc', 4, -1)");
    } catch (x) { e = x; }
    assert(e && e.message === 'db msdb has 7 rows,    ab|4  |4294967295', e && e.message);
  },
  async datetime2_keeps_its_precision(c) {
    // tedious: a Date (ms) plus nanosecondsDelta (the rest, in seconds).
    const v = (await query(c, "SELECT CAST('2024-01-02 03:04:05.1234567' AS datetime2(7))"))[0][0][0];
    const ns = Math.round((v.getUTCMilliseconds() / 1000 + v.nanosecondsDelta) * 1e7);
    assert(v.getUTCSeconds() === 5 && ns === 1234567, `${v.toISOString()} + ${v.nanosecondsDelta}`);
  },
  async binary_literal(c) {
    const v = (await query(c, 'SELECT 0x0A0BFF'))[0][0][0];
    assert(Buffer.isBuffer(v) && v.toString('hex') === '0a0bff', String(v));
  },
  async serverproperty_is_sql_variant(c) {
    let types = null;
    const rows = await new Promise((resolve, reject) => {
      const seen = [];
      const r = new Request("SELECT SERVERPROPERTY('ProductVersion'), SERVERPROPERTY('EngineEdition')",
        (err) => (err ? reject(err) : resolve(seen)));
      r.on('columnMetadata', (m) => { types = m.map((x) => x.type.name); });
      r.on('row', (x) => seen.push(x.map((y) => y.value)));
      c.execSqlBatch(r);
    });
    assert(JSON.stringify(types) === '["Variant","Variant"]', JSON.stringify(types));
    assert(String(rows[0][0]).startsWith('15.') && Number(rows[0][1]) === 3, JSON.stringify(rows));
  },
  async dm_os_host_info(c) {
    const row = (await query(c, 'SELECT host_platform, host_release FROM sys.dm_os_host_info'))[0][0];
    assert(JSON.stringify(row) === '["Windows","10.0"]', JSON.stringify(row));
  },
  async top_without_parentheses(c) {
    assert((await query(c, 'SELECT TOP 2 name FROM sys.databases'))[0].length === 2, 'TOP 2');
  },
};

(async () => {
  let c;
  const names = Object.keys(probes);
  try { c = await connect(CA); } catch (e) {
    console.log(`FAIL tedious connect: ${e.message}`);
    console.log(`tedious: 0/${names.length} passed`);
    process.exit(1);
  }
  let passed = 0;
  for (const n of names) {
    try { await probes[n](c); passed += 1; console.log(`PASS tedious ${n}`); } catch (e) {
      console.log(`FAIL tedious ${n}: ${e.message}`);
    }
  }
  c.close();
  console.log(`tedious: ${passed}/${names.length} passed`);
  process.exit(passed === names.length ? 0 : 1);
})();
