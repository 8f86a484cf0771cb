// The black-box harness for the browser tests: starts the real onramp binary
// on a fresh SQLite database and a free port, creates an organization and a
// SCIM token with the binary's own CLI, provisions a user over SCIM, and reads
// the invitation mail the folder transport writes, and connects the
// organization to an OpenID provider as an administrator would. Knows nothing
// of the Rust code: only the CLI, HTTP and the .eml files.

import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, existsSync, rmSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));

export const BIN = resolve(process.env.ONRAMP_BIN ?? join(here, '../../target/debug/onramp'));

/** Where screenshots and server logs go: kept under target/ for CI. */
export const ARTIFACTS = resolve(process.env.ONRAMP_BROWSER_ARTIFACTS ?? join(here, '../../target/browser-artifacts'));

/** A free TCP port on 127.0.0.1 (closed again before the server binds it). */
async function freePort() {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/** Polls `check` until it returns a truthy value; fails after `ms`. */
export async function until(what, check, ms = 10_000, every = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

/**
 * Starts onramp with its own database, mail folder and port, listening on
 * 127.0.0.1; `host` is the name in its public URL (`localhost` makes it
 * another site than a provider on 127.0.0.1). The server's log goes to
 * `<logDir>/server.log`. `cli(...args)` runs the binary's CLI on the
 * same database and working directory and resolves to its standard output.
 * Call `stop()` when done (it is also killed if the Node process exits first).
 */
export async function startServer({ logDir, host = '127.0.0.1' }) {
  if (!existsSync(BIN)) {
    throw new Error(`onramp binary not found at ${BIN}: build it (cargo build --bin onramp) or set ONRAMP_BIN`);
  }
  const work = await mkdtemp(join(tmpdir(), 'onramp-browser-'));
  const port = await freePort();
  const base = `http://${host}:${port}`;
  const mailDir = join(work, 'mail');
  // Only our configuration: any other ONRAMP_* variable (ONRAMP_BIN, …) would
  // be read as an unknown configuration key and stop the server.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ONRAMP_')));
  Object.assign(env, {
    ONRAMP_DATABASE__URL: `sqlite://${join(work, 'onramp.db')}`,
    ONRAMP_HTTP__BIND: `127.0.0.1:${port}`,
    ONRAMP_HTTP__PUBLIC_URL: base,
    ONRAMP_MAIL__DIR: mailDir,
    ONRAMP_LOG__LEVEL: 'warn',
  });
  const cli = async (...args) => (await run(BIN, args, { env, cwd: work })).stdout.trim();

  const org = JSON.parse(await cli('org', 'create', '--name', 'Browser Corp', '--domain', 'example.com'));
  await cli('org', 'set', org.id, '--inviter', 'Ada Admin <ada@example.com>');
  const scimToken = (await cli('scim-token', 'create', '--org', org.id)).split('\n').pop().trim();

  const log = createWriteStream(join(logDir, 'server.log'));
  const child = spawn(BIN, [], { env, cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const killOnExit = () => child.kill('SIGKILL');
  const killOnSignal = (signal) => {
    child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', killOnExit);
  process.once('SIGINT', killOnSignal);
  process.once('SIGTERM', killOnSignal);
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });

  const stop = async () => {
    process.off('exit', killOnExit);
    process.off('SIGINT', killOnSignal);
    process.off('SIGTERM', killOnSignal);
    if (!exited) {
      child.kill('SIGTERM');
      const gone = await Promise.race([once(child, 'exit').then(() => true), sleep(5000).then(() => false)]);
      if (!gone) child.kill('SIGKILL');
    }
    await rm(work, { recursive: true, force: true });
  };

  try {
    await until('the server to answer /healthz', async () => {
      if (exited) throw new Error(`onramp exited early (${JSON.stringify(exited)}); see ${join(logDir, 'server.log')}`);
      try {
        return (await fetch(`${base}/healthz`)).ok;
      } catch {
        return false;
      }
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { base, port, org, scimToken, mailDir, work, cli, stop };
}

/**
 * Connects the organization to an OpenID provider (idp.mjs) as an
 * administrator would: `onramp sso set` with a fresh client secret, the URLs
 * it names registered as a client at the provider, then `onramp sso check`.
 * Resolves to the connection `sso set` printed.
 */
export async function connectSso(server, idp, { clientId = 'onramp' } = {}) {
  const secret = randomBytes(24).toString('base64url');
  const secretFile = join(server.work, 'client-secret');
  await writeFile(secretFile, secret, { mode: 0o600 });
  const connection = JSON.parse(await server.cli(
    'sso', 'set', '--org', server.org.id, '--issuer', idp.issuer,
    '--client-id', clientId, '--client-secret-file', secretFile,
  ));
  await idp.addClient({
    client_id: clientId,
    client_secret: secret,
    redirect_uris: [connection.redirect_uri],
    post_logout_redirect_uris: [`${server.base}/signed-out`],
    backchannel_logout_uri: connection.backchannel_logout_uri,
  });
  await server.cli('sso', 'check', '--org', server.org.id);
  return connection;
}

/**
 * Creates a user over SCIM as a directory would; the server invites them.
 * `name` ({ givenName, familyName }) is the directory's name for them.
 */
export async function provisionUser(server, email, name) {
  const res = await fetch(`${server.base}/scim/v2/Users`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${server.scimToken}`, 'Content-Type': 'application/scim+json' },
    body: JSON.stringify({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: email,
      emails: [{ type: 'work', primary: true, value: email }],
      ...(name ? { name: { ...name, formatted: `${name.givenName} ${name.familyName}` } } : {}),
      active: true,
    }),
  });
  if (res.status !== 201) throw new Error(`SCIM POST /Users: ${res.status} ${await res.text()}`);
  return res.json();
}

// --- mail -------------------------------------------------------------------

function decodeQuotedPrintable(text) {
  const soft = text.replace(/=\r?\n/g, '');
  const bytes = [];
  for (let i = 0; i < soft.length; i++) {
    const hex = soft.slice(i + 1, i + 3);
    if (soft[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(soft[i], 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function splitHead(entity) {
  const m = /\r?\n\r?\n/.exec(entity);
  const head = m ? entity.slice(0, m.index) : entity;
  const body = m ? entity.slice(m.index + m[0].length) : '';
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { headers, body };
}

/** The decoded text of every leaf part of a MIME entity. */
function textParts(entity) {
  const { headers, body } = splitHead(entity);
  const type = headers['content-type'] ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (/^multipart\//i.test(type) && boundary) {
    const parts = body.split(`--${boundary}`).slice(1);
    return parts.filter((p) => !p.startsWith('--')).flatMap((p) => textParts(p.replace(/^\r?\n/, '')));
  }
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  if (encoding === 'quoted-printable') return [decodeQuotedPrintable(body)];
  if (encoding === 'base64') return [Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')];
  return [body];
}

/** A parsed .eml file: its headers, decoded text parts and join links. */
export async function readMail(path, base) {
  const raw = await readFile(path, 'utf8');
  const { headers } = splitHead(raw);
  const texts = textParts(raw);
  const escaped = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const links = new Set(texts.flatMap((t) => t.match(new RegExp(`${escaped}/join/[A-Za-z0-9_-]+`, 'g')) ?? []));
  return { path, headers, texts, links: [...links] };
}

/** Every mail in the folder, sorted by file name. */
export async function mails(server) {
  if (!existsSync(server.mailDir)) return [];
  const names = (await readdir(server.mailDir)).filter((n) => n.endsWith('.eml')).sort();
  return Promise.all(names.map((n) => readMail(join(server.mailDir, n), server.base)));
}

/** Waits for a mail to `to` that is not among `seen` (paths); returns it. */
export async function nextMailTo(server, to, seen = [], ms = 10_000) {
  return until(`a new mail to ${to}`, async () => {
    const all = await mails(server);
    return all.find((m) => !seen.includes(m.path) && (m.headers.to ?? '').includes(to));
  }, ms);
}

/** The paths of the mails in the folder now (to tell later mails from them). */
export async function mailPaths(server) {
  return (await mails(server)).map((m) => m.path);
}

/** Whether a mail's To header names exactly `to` (case-insensitively). */
function addressedTo(mail, to) {
  const header = mail.headers.to ?? '';
  const addresses = [...header.matchAll(/<([^>]+)>/g)].map((m) => m[1]);
  if (addresses.length === 0) addresses.push(...header.split(',').map((a) => a.trim()));
  return addresses.some((a) => a.toLowerCase() === to.toLowerCase());
}

/**
 * Waits for a verification code mailed to `to` that is not among `seen`
 * (paths, from mailPaths); resolves to { mail, code }: the code is the one
 * line of six digits in the text part.
 */
export async function nextCodeTo(server, to, seen = [], ms = 10_000) {
  const mail = await until(`a new code mail to ${to}`, async () => {
    const all = await mails(server);
    return all.find((m) => !seen.includes(m.path) && addressedTo(m, to) && /verification code/.test(m.headers.subject ?? ''));
  }, ms);
  const codes = mail.texts.flatMap((t) => t.split(/\r?\n/)).map((l) => l.trim()).filter((l) => /^\d{6}$/.test(l));
  if (new Set(codes).size !== 1) throw new Error(`expected one six-digit line in ${mail.path}, found ${JSON.stringify(codes)}`);
  return { mail, code: codes[0] };
}

/** Waits for a mail to exactly `to`, not among `seen`, whose subject is `subject`. */
export async function nextMailWithSubject(server, to, subject, seen = [], ms = 10_000) {
  return until(`a new mail to ${to} with the subject "${subject}"`, async () => {
    const all = await mails(server);
    return all.find((m) => !seen.includes(m.path) && addressedTo(m, to) && m.headers.subject === subject);
  }, ms);
}

// --- accounts -----------------------------------------------------------------

/** Seeds accounts with `onramp accounts import` (PRODUCT.md "Account import"). */
export async function importAccounts(server, accounts) {
  const file = join(server.work, `accounts-${randomBytes(4).toString('hex')}.jsonl`);
  await writeFile(file, accounts.map((a) => JSON.stringify(a)).join('\n') + '\n');
  return server.cli('accounts', 'import', file);
}

/** `onramp accounts show EMAIL` as JSON, or null when no account has that login. */
export async function showAccount(server, email) {
  try {
    return JSON.parse(await server.cli('accounts', 'show', email));
  } catch (e) {
    if (e.code !== undefined && e.code !== 0 && /no account|not found/i.test(`${e.stderr ?? ''}${e.stdout ?? ''}`)) return null;
    throw e;
  }
}
