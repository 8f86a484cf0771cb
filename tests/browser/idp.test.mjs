// Tests of the test identity provider (idp.mjs) without a browser: plain fetch
// with redirects followed by hand and a small cookie jar. Run from tests/browser
// after `npm ci`: node --test idp.test.mjs

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';

import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';

import { startIdp } from './idp.mjs';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** Cookies by name and path, all for 127.0.0.1 (cookies do not care about ports). */
class CookieJar {
  #cookies = new Map();

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expired = false;
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        if (k.toLowerCase() === 'path') path = v;
        if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) expired = true;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      }
      const key = `${name}\t${path}`;
      if (expired || value === '') this.#cookies.delete(key);
      else this.#cookies.set(key, { name, value, path });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    return [...this.#cookies.values()]
      .filter((c) => pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  names() {
    return [...this.#cookies.values()].map((c) => c.name);
  }
}

async function request(jar, url, init = {}) {
  const headers = { ...init.headers };
  const cookie = jar.header(url);
  if (cookie) headers.cookie = cookie;
  const response = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar.store(response);
  return response;
}

/**
 * Follows redirects from `url` until one points at `stopPrefix` (returned as
 * { callback }) or a page is answered (returned as { response }). `visited`
 * lists every URL requested.
 */
async function follow(jar, url, stopPrefix, init = {}) {
  const visited = [];
  let next = url;
  let options = init;
  for (let hops = 0; hops < 20; hops += 1) {
    visited.push(next);
    const response = await request(jar, next, options);
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.arrayBuffer();
      const target = new URL(location, next).href;
      if (target.startsWith(stopPrefix)) return { callback: new URL(target), visited };
      next = target;
      options = {};
      continue;
    }
    // oidc-provider's self-submitting form (e.g. ending the old session when another
    // identity signs in): do what the browser's script would do.
    const html = response.status === 200 && /text\/html/.test(response.headers.get('content-type') ?? '')
      ? await response.text() : undefined;
    if (html?.includes('<title>Submitting Callback</title>')) {
      const action = html.match(/<form method="post" action="([^"]+)"/)[1];
      const fields = [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)].map((m) => [m[1], m[2]]);
      visited.push(`form:${action}`);
      next = new URL(action, next).href;
      options = {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      };
      continue;
    }
    if (html !== undefined) return { response: new Response(html, { status: response.status, headers: response.headers }), visited };
    return { response, visited };
  }
  throw new Error(`too many redirects from ${url}`);
}

function pkce() {
  const verifier = b64url(randomBytes(32));
  return { verifier, challenge: b64url(createHash('sha256').update(verifier).digest()) };
}

function authorizeUrl(discovery, client, { login_hint, state, nonce, challenge, scope = 'openid email profile' }) {
  const url = new URL(discovery.authorization_endpoint);
  const params = {
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: client.redirect_uris[0],
    scope,
    state,
    nonce,
    ...(challenge ? { code_challenge: challenge, code_challenge_method: 'S256' } : {}),
    ...(login_hint ? { login_hint } : {}),
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.href;
}

async function exchange(discovery, client, code, verifier, method = 'client_secret_basic') {
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: client.redirect_uris[0],
    code_verifier: verifier,
  });
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
  if (method === 'client_secret_basic') {
    const creds = `${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`;
    headers.Authorization = `Basic ${Buffer.from(creds).toString('base64')}`;
  } else {
    body.set('client_id', client.client_id);
    body.set('client_secret', client.client_secret);
  }
  const response = await fetch(discovery.token_endpoint, { method: 'POST', headers, body: body.toString() });
  const json = await response.json();
  assert.equal(response.status, 200, JSON.stringify(json));
  return json;
}

async function jwks(discovery) {
  const response = await fetch(discovery.jwks_uri);
  assert.equal(response.status, 200);
  return response.json();
}

async function verify(discovery, token, audience, typ) {
  const keys = createLocalJWKSet(await jwks(discovery));
  return jwtVerify(token, keys, { issuer: discovery.issuer, audience, algorithms: ['RS256'], typ });
}

/** A stand-in RP: records the form POSTs to its back-channel logout URI. */
async function startRp() {
  const received = [];
  let status = 200;
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    received.push({
      method: req.method,
      path: req.url,
      contentType: req.headers['content-type'],
      body: new URLSearchParams(Buffer.concat(chunks).toString('utf8')),
    });
    res.writeHead(status, { 'Cache-Control': 'no-store' });
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    received,
    answer(code) {
      status = code;
    },
    async stop() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** One full sign-in in a "browser" (jar): returns the callback and the token response. */
async function signIn(discovery, client, jar, login_hint, { method } = {}) {
  const state = b64url(randomBytes(12));
  const nonce = b64url(randomBytes(12));
  const { verifier, challenge } = pkce();
  const { callback, response, visited } = await follow(
    jar, authorizeUrl(discovery, client, { login_hint, state, nonce, challenge }), client.redirect_uris[0],
  );
  assert.ok(callback, `expected a redirect to the client, got ${response?.status}: ${await response?.text()}`);
  assert.equal(callback.searchParams.get('state'), state);
  assert.equal(callback.searchParams.get('error'), null, callback.searchParams.get('error_description'));
  const tokens = await exchange(discovery, client, callback.searchParams.get('code'), verifier, method);
  return { callback, tokens, nonce, visited };
}

describe('test identity provider (autoSubmit)', () => {
  let idp;
  let rp;
  let discovery;
  let client;

  before(async () => {
    rp = await startRp();
    idp = await startIdp({ autoSubmit: true });
    client = {
      client_id: 'onramp',
      client_secret: 's3cret+/%',
      redirect_uris: [`${rp.base}/sso/callback`],
      post_logout_redirect_uris: [`${rp.base}/signed-out`],
      backchannel_logout_uri: `${rp.base}/sso/backchannel-logout`,
    };
    await idp.addClient(client);
    idp.addIdentity({
      login_hint: 'pat@example.com',
      sub: 'sub-pat',
      claims: {
        email: 'pat@example.com', email_verified: true, name: 'Pat Doe', given_name: 'Pat', family_name: 'Doe', oid: 'oid-pat', tid: 'tenant-1',
      },
    });
    idp.addIdentity({
      login_hint: 'lee@example.com',
      sub: 'sub-lee',
      claims: { email: 'lee@example.com', email_verified: false, name: 'Lee Roe' },
    });
    idp.addIdentity({ login_hint: 'kim@example.com', sub: 'sub-kim', claims: { email: 'kim@example.com' } });
    discovery = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
  });

  after(async () => {
    await idp?.stop();
    await rp?.stop();
  });

  it('publishes a discovery document', () => {
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(discovery.issuer, idp.issuer);
    for (const endpoint of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'end_session_endpoint', 'userinfo_endpoint']) {
      assert.ok(discovery[endpoint]?.startsWith(`${idp.issuer}/`), endpoint);
    }
    assert.equal(discovery.backchannel_logout_supported, true);
    assert.equal(discovery.backchannel_logout_session_supported, true);
    assert.equal(discovery.authorization_response_iss_parameter_supported, true);
    assert.deepEqual(discovery.response_types_supported, ['code']);
    assert.deepEqual(discovery.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(discovery.id_token_signing_alg_values_supported, ['RS256']);
    assert.deepEqual(discovery.token_endpoint_auth_methods_supported.sort(), ['client_secret_basic', 'client_secret_post']);
    assert.deepEqual(discovery.scopes_supported.sort(), ['email', 'openid', 'profile']);
    for (const claim of ['email', 'email_verified', 'name', 'given_name', 'family_name', 'oid', 'tid', 'sid']) {
      assert.ok(discovery.claims_supported.includes(claim), claim);
    }
  });

  it('runs the code flow with PKCE and verifiable ID tokens', async () => {
    const jar = new CookieJar();
    const { callback, tokens, nonce, visited } = await signIn(discovery, client, jar, 'PAT@Example.com');
    assert.ok(visited.some((u) => new URL(u).pathname.startsWith('/interaction/')), 'went through the interaction');
    assert.equal(callback.searchParams.get('iss'), idp.issuer);
    assert.ok(callback.searchParams.get('code'));
    assert.equal(tokens.token_type, 'Bearer');
    assert.ok(tokens.access_token);

    const { payload, protectedHeader } = await verify(discovery, tokens.id_token, client.client_id);
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(protectedHeader.kid, idp.kid);
    assert.equal(payload.iss, idp.issuer);
    assert.equal(payload.aud, client.client_id);
    assert.equal(payload.sub, 'sub-pat');
    assert.equal(payload.nonce, nonce);
    assert.equal(payload.email, 'pat@example.com');
    assert.equal(payload.email_verified, true);
    assert.equal(payload.name, 'Pat Doe');
    assert.equal(payload.given_name, 'Pat');
    assert.equal(payload.family_name, 'Doe');
    assert.equal(payload.oid, 'oid-pat');
    assert.equal(payload.tid, 'tenant-1');
    assert.equal(typeof payload.sid, 'string');
    assert.ok(payload.exp - payload.iat <= 300);
    assert.deepEqual(idp.logins.at(-1), { client_id: 'onramp', sub: 'sub-pat', sid: payload.sid });

    // The session cookies are SameSite=Lax (not None, which http cannot carry).
    assert.ok(jar.names().includes(`idp${new URL(idp.issuer).port}_session`));

    const userinfo = await (await fetch(discovery.userinfo_endpoint, {
      headers: { Authorization: `Bearer ${tokens.access_token}` },
    })).json();
    assert.equal(userinfo.sub, 'sub-pat');
    assert.equal(userinfo.email, 'pat@example.com');

    // A second request in the same browser signs in silently (session and grant exist).
    const again = await signIn(discovery, client, jar, 'pat@example.com', { method: 'client_secret_post' });
    assert.ok(!again.visited.some((u) => new URL(u).pathname.startsWith('/interaction/')), 'no interaction the second time');
    assert.equal((await verify(discovery, again.tokens.id_token, client.client_id)).payload.sid, payload.sid);
  });

  it('keeps email_verified false or absent as registered, and switches identity on another login_hint', async () => {
    const jar = new CookieJar();
    await signIn(discovery, client, jar, 'pat@example.com');

    // oidc-provider ends pat's session first (a self-submitting form to
    // end_session_confirm, which logs pat's RP session out over the back channel).
    const count = rp.received.length;
    const lee = await signIn(discovery, client, jar, 'lee@example.com');
    assert.ok(lee.visited.some((u) => u.startsWith('form:') && u.includes('/session/end/confirm')));
    assert.equal(rp.received.length, count + 1);
    const leeClaims = (await verify(discovery, lee.tokens.id_token, client.client_id)).payload;
    assert.equal(leeClaims.sub, 'sub-lee');
    assert.equal(leeClaims.email, 'lee@example.com');
    assert.equal(leeClaims.email_verified, false);
    assert.equal(leeClaims.oid, undefined);

    const kim = await signIn(discovery, client, jar, 'kim@example.com');
    const kimClaims = (await verify(discovery, kim.tokens.id_token, client.client_id)).payload;
    assert.equal(kimClaims.sub, 'sub-kim');
    assert.equal('email_verified' in kimClaims, false);
  });

  it('requires PKCE', async () => {
    const jar = new CookieJar();
    const url = authorizeUrl(discovery, client, { login_hint: 'pat@example.com', state: 'st', nonce: 'n' });
    const { callback } = await follow(jar, url, client.redirect_uris[0]);
    assert.equal(callback.searchParams.get('error'), 'invalid_request');
    assert.match(callback.searchParams.get('error_description'), /PKCE/);
    assert.equal(callback.searchParams.get('iss'), idp.issuer);
    assert.equal(callback.searchParams.get('state'), 'st');
  });

  it('rotates the signing key', async () => {
    const keysBefore = await jwks(discovery);
    assert.equal(keysBefore.keys.length, 1);
    const oldKid = keysBefore.keys[0].kid;
    assert.equal(oldKid, idp.kid);
    assert.equal(keysBefore.keys[0].d, undefined, 'no private parts in the JWKS');

    const jar = new CookieJar();
    const first = await signIn(discovery, client, jar, 'pat@example.com');
    assert.equal(decodeProtectedHeader(first.tokens.id_token).kid, oldKid);

    const newKid = await idp.rotateKeys();
    assert.notEqual(newKid, oldKid);
    const keysAfter = await jwks(discovery);
    assert.deepEqual(keysAfter.keys.map((k) => k.kid), [newKid]);
    assert.equal(keysAfter.keys[0].alg, 'RS256');

    // The same browser session survives the rotation; the new token uses the new key.
    const second = await signIn(discovery, client, jar, 'pat@example.com');
    assert.equal(decodeProtectedHeader(second.tokens.id_token).kid, newKid);
    assert.equal((await verify(discovery, second.tokens.id_token, client.client_id)).payload.sub, 'sub-pat');
    await assert.rejects(verify(discovery, first.tokens.id_token, client.client_id), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
  });

  it('sends verifiable back-channel logout tokens', async () => {
    const count = rp.received.length;
    const status = await idp.sendBackchannelLogout({ client_id: 'onramp', sub: 'sub-pat', sid: 'sid-1' });
    assert.equal(status, 200);
    assert.equal(rp.received.length, count + 1);
    const post = rp.received.at(-1);
    assert.equal(post.method, 'POST');
    assert.equal(post.path, '/sso/backchannel-logout');
    assert.equal(post.contentType, 'application/x-www-form-urlencoded');
    const token = post.body.get('logout_token');
    const { payload, protectedHeader } = await verify(discovery, token, 'onramp', 'logout+jwt');
    assert.equal(protectedHeader.kid, idp.kid);
    assert.equal(payload.iss, idp.issuer);
    assert.equal(payload.sub, 'sub-pat');
    assert.equal(payload.sid, 'sid-1');
    assert.deepEqual(payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
    assert.equal(typeof payload.jti, 'string');
    assert.equal(typeof payload.iat, 'number');
    assert.ok(payload.exp > payload.iat);
    assert.equal('nonce' in payload, false);

    // Only sid, a fresh jti, and the RP's answer comes back as is.
    rp.answer(400);
    const status2 = await idp.sendBackchannelLogout({ client_id: 'onramp', sid: 'sid-2' });
    rp.answer(200);
    assert.equal(status2, 400);
    const second = (await verify(discovery, rp.received.at(-1).body.get('logout_token'), 'onramp', 'logout+jwt')).payload;
    assert.equal(second.sid, 'sid-2');
    assert.equal('sub' in second, false);
    assert.notEqual(second.jti, payload.jti);

    // Overrides for negative tests: a nonce added, events removed.
    await idp.sendBackchannelLogout({ client_id: 'onramp', sub: 'sub-pat', claims: { nonce: 'n', events: undefined } });
    const bad = (await verify(discovery, rp.received.at(-1).body.get('logout_token'), 'onramp', 'logout+jwt')).payload;
    assert.equal(bad.nonce, 'n');
    assert.equal('events' in bad, false);

    await assert.rejects(idp.sendBackchannelLogout({ client_id: 'nobody', sub: 'x' }), /unknown client/);
  });

  it('completes RP-initiated logout and logs the RP out over the back channel', async () => {
    const jar = new CookieJar();
    const { tokens } = await signIn(discovery, client, jar, 'pat@example.com');
    const { sid } = (await verify(discovery, tokens.id_token, client.client_id)).payload;
    const count = rp.received.length;

    const url = new URL(discovery.end_session_endpoint);
    url.searchParams.set('id_token_hint', tokens.id_token);
    url.searchParams.set('post_logout_redirect_uri', client.post_logout_redirect_uris[0]);
    url.searchParams.set('state', 'bye');
    const logoutPage = await request(jar, url.href);
    assert.equal(logoutPage.status, 200);
    const html = await logoutPage.text();
    assert.match(html, /<html lang="en">/);
    assert.match(html, /<h1>Test identity provider — Sign out<\/h1>/);
    assert.match(html, /\.submit\(\)/, 'the form submits itself');
    assert.equal(html.match(/<button/g).length, 1);
    const action = html.match(/<form id="op.logoutForm" method="post" action="([^"]+)"/)[1];
    const form = new URLSearchParams([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    assert.equal(form.get('logout'), 'yes');
    assert.ok(form.get('xsrf'));

    const done = await request(jar, new URL(action, idp.issuer).href, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    assert.equal(done.status, 303);
    assert.equal(done.headers.get('location'), `${client.post_logout_redirect_uris[0]}?state=bye`);

    // The provider itself told the RP, before redirecting.
    assert.equal(rp.received.length, count + 1);
    const logout = (await verify(discovery, rp.received.at(-1).body.get('logout_token'), 'onramp', 'logout+jwt')).payload;
    assert.equal(logout.sub, 'sub-pat');
    assert.equal(logout.sid, sid);
    assert.deepEqual(idp.backchannelResults.at(-1), { client_id: 'onramp', sub: 'sub-pat', sid, ok: true });

    // The provider session is gone: the next sign-in goes through the interaction again.
    const again = await signIn(discovery, client, jar, 'pat@example.com');
    assert.ok(again.visited.some((u) => new URL(u).pathname.startsWith('/interaction/')));
  });
});

describe('test identity provider (sign-in pages)', () => {
  let idp;
  let discovery;
  let client;

  before(async () => {
    idp = await startIdp();
    discovery = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
    client = {
      client_id: 'late-client',
      client_secret: 'another secret',
      redirect_uris: ['http://127.0.0.1:9/callback'],
      token_endpoint_auth_method: 'client_secret_post',
    };
  });

  after(async () => {
    await idp?.stop();
  });

  it('rejects invalid client metadata', async () => {
    await assert.rejects(idp.addClient({ client_id: 'bad', client_secret: 'x', redirect_uris: ['not a url'] }), /invalid client metadata/);
  });

  it('shows an error page without identities, then the sign-in page, then the list', async () => {
    await idp.addClient(client);
    const { challenge, verifier } = pkce();
    const jar = new CookieJar();

    const none = await follow(jar, authorizeUrl(discovery, client, { login_hint: 'pat@example.com', state: 's1', nonce: 'n1', challenge }), client.redirect_uris[0]);
    assert.equal(none.response.status, 400);
    assert.match(await none.response.text(), /<h1>Test identity provider — No identities<\/h1>/);

    idp.addIdentity({ login_hint: 'Pat@Example.com', sub: 'sub-pat', claims: { email: 'pat@example.com', email_verified: true } });
    idp.addIdentity({ sub: 'sub-robin', claims: { email: 'robin@example.com', email_verified: true, oid: 'oid-robin' } });

    const hinted = await follow(jar, authorizeUrl(discovery, client, { login_hint: 'pat@example.com', state: 's2', nonce: 'n2', challenge }), client.redirect_uris[0]);
    assert.equal(hinted.response.status, 200);
    const pageUrl = hinted.visited.at(-1);
    const html = await hinted.response.text();
    assert.match(html, /<html lang="en">/);
    assert.match(html, /<title>Test identity provider — Sign in as pat@example.com<\/title>/);
    assert.match(html, /<h1>Test identity provider — Sign in as pat@example.com<\/h1>/);
    assert.equal(html.match(/<button/g).length, 1);
    assert.match(html, /<button type="submit">Sign in<\/button>/);
    const action = html.match(/<form method="post" action="([^"]+)"/)[1];
    assert.equal(action, `${new URL(pageUrl).pathname}/login`);

    const { callback } = await follow(jar, new URL(action, idp.issuer).href, client.redirect_uris[0], {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ sub: 'sub-pat' }).toString(),
    });
    assert.equal(callback.searchParams.get('state'), 's2');
    assert.equal(callback.searchParams.get('iss'), idp.issuer);
    const tokens = await exchange(discovery, client, callback.searchParams.get('code'), verifier, 'client_secret_post');
    assert.equal((await verify(discovery, tokens.id_token, client.client_id)).payload.sub, 'sub-pat');

    // No login_hint in a fresh browser: a list with one button per identity.
    const jar2 = new CookieJar();
    const p2 = pkce();
    const list = await follow(jar2, authorizeUrl(discovery, client, { state: 's3', nonce: 'n3', challenge: p2.challenge }), client.redirect_uris[0]);
    assert.equal(list.response.status, 200);
    const listHtml = await list.response.text();
    assert.match(listHtml, /<h1>Test identity provider — Choose an identity<\/h1>/);
    assert.match(listHtml, /<button type="submit">Sign in as pat@example.com<\/button>/);
    assert.match(listHtml, /<button type="submit">Sign in as robin@example.com<\/button>/);
    const robinForm = listHtml.match(/<form method="post" action="([^"]+)">\s*<input type="hidden" name="sub" value="sub-robin">/);
    const chosen = await follow(jar2, new URL(robinForm[1], idp.issuer).href, client.redirect_uris[0], {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ sub: 'sub-robin' }).toString(),
    });
    const robin = await exchange(discovery, client, chosen.callback.searchParams.get('code'), p2.verifier, 'client_secret_post');
    const claims = (await verify(discovery, robin.id_token, client.client_id)).payload;
    assert.equal(claims.sub, 'sub-robin');
    assert.equal(claims.oid, 'oid-robin', 'an extra claim added after start is released');
  });

  it('completes without a click for an identity marked auto, and can abort', async () => {
    idp.addIdentity({ login_hint: 'auto@example.com', sub: 'sub-auto', auto: true, claims: { email: 'auto@example.com' } });
    const { callback } = await signIn(discovery, client, new CookieJar(), 'auto@example.com', { method: 'client_secret_post' });
    assert.ok(callback.searchParams.get('code'));

    const jar = new CookieJar();
    const page = await follow(jar, authorizeUrl(discovery, client, { login_hint: 'pat@example.com', state: 's4', nonce: 'n4', challenge: pkce().challenge }), client.redirect_uris[0]);
    await page.response.arrayBuffer();
    const aborted = await follow(jar, `${page.visited.at(-1)}/abort`, client.redirect_uris[0]);
    assert.equal(aborted.callback.searchParams.get('error'), 'access_denied');
    assert.equal(aborted.callback.searchParams.get('state'), 's4');
  });
});
