// A small but real OpenID Connect provider for end-to-end tests of "sign in
// with your organization's SSO", built on oidc-provider 8 (the npm package).
// It listens on 127.0.0.1 over plain http and keeps everything in memory.
//
// API (ES module):
//
//   const idp = await startIdp({ port, autoSubmit, confirmLogout, pkceRequired,
//                                clients, identities, idTokenTtl })
//     port           fixed port (default 0: a free one)
//     autoSubmit     complete every login whose identity is known from login_hint
//                    with a 303, without showing the sign-in page (default false)
//     confirmLogout  RP-initiated logout waits for one click on "Sign out" instead
//                    of submitting itself with a script (default false)
//     pkceRequired   refuse authorization requests without code_challenge (default
//                    true, as oidc-provider 8 does; S256 is the only method)
//     clients        client metadata to add at once (as addClient)
//     identities     identities to add at once (as addIdentity)
//     idTokenTtl     ID token lifetime in seconds (default 300)
//   resolves to:
//     idp.issuer     'http://127.0.0.1:<port>' (discovery at
//                    `${issuer}/.well-known/openid-configuration`)
//     idp.addClient({ client_id, client_secret, redirect_uris,
//                     post_logout_redirect_uris, backchannel_logout_uri,
//                     token_endpoint_auth_method = 'client_secret_basic', ...other metadata })
//                    -> Promise<void>; validates the metadata (throws if invalid).
//                    Clients live in the provider's storage adapter (looked up at
//                    request time), so they can be added or replaced any time after
//                    start, e.g. once the RP knows its port. A client with a secret
//                    may authenticate with client_secret_basic or client_secret_post,
//                    whichever of the two is registered (Basic credentials must be
//                    form-urlencoded before base64, RFC 6749 2.3.1: a raw '%' or '+'
//                    in the secret fails). backchannel_logout_session_required
//                    defaults to true (the provider's own logout tokens carry sid).
//     idp.addIdentity({ login_hint, sub, claims, auto })
//                    -> the identity. Who signs in when an authorization request's
//                    login_hint equals login_hint (case-insensitively). Without a
//                    login_hint the identity is only offered on the "choose an
//                    identity" page. claims go into the ID token and userinfo:
//                    email, email_verified (kept as given: true, false or absent),
//                    name, given_name, family_name, and any other claim (oid, tid, …),
//                    which is released with the openid scope. auto: true completes
//                    the login without a click (like autoSubmit, for this identity).
//                    Adding an identity with a login_hint that is already registered
//                    replaces the earlier one.
//     idp.rotateKeys() -> Promise<kid>; a new RS256 signing key with a new kid; the
//                    old key leaves the JWKS at once (an RP must refetch the JWKS;
//                    ID tokens signed before can no longer serve as id_token_hint).
//     idp.sendBackchannelLogout({ client_id, sub, sid, claims, header })
//                    -> Promise<number>, the HTTP status the RP answered. POSTs a
//                    Back-Channel Logout 1.0 logout_token (form-encoded) to the
//                    client's backchannel_logout_uri: a JWT signed with the current
//                    provider key, header typ logout+jwt, claims iss, aud=client_id,
//                    iat, exp (+120 s), jti, events, sub and/or sid, no nonce.
//                    claims/header (optional) are merged over that for negative tests
//                    (a value of undefined removes a claim).
//     idp.logins     [{ client_id, sub, sid }] for each authorization code issued
//                    (what an RP's session would carry, e.g. to build a logout token)
//     idp.backchannelResults  [{ client_id, sub, sid, ok, error }] for each logout token
//                    the provider itself sent during RP-initiated logout
//     idp.stop()     -> Promise<void>; closes the server and its connections.
//
// Provider: authorization code flow only, PKCE S256, client_secret_basic and
// client_secret_post, scopes openid email profile, RS256 ID tokens (carrying the
// scope claims, sid and nonce), userinfo, RP-initiated logout (end_session_endpoint)
// and Back-Channel Logout (backchannel_logout_supported), the RFC 9207 `iss`
// authorization response parameter. Cookies are signed with fixed test keys, are
// SameSite=Lax (SameSite=None needs Secure, which http cannot have) and their names
// carry the port (`idp<port>_session`, …): cookies are not separated by port, so an
// RP on another port of 127.0.0.1, or a second provider, shares the browser's jar.
//
// Interactions (our own; oidc-provider's devInteractions are off):
//   GET  /interaction/:uid        login prompt: the identity named by login_hint gets
//                                 a page "Test identity provider — Sign in as <email>"
//                                 with one "Sign in" button (or a 303 straight through
//                                 with autoSubmit / auto); otherwise a page listing the
//                                 identities, one "Sign in as <email>" button each (or
//                                 an error page when there are none).
//                                 consent prompt: always granted at once (303) with the
//                                 requested scopes and claims.
//   POST /interaction/:uid/login  form field sub: completes the login.
//   GET  /interaction/:uid/abort  ends the request with error=access_denied.
//   A login_hint naming another identity than the signed-in one asks for login again.
//
// RP-initiated logout: features.rpInitiatedLogout.logoutSource is replaced by a page
// whose form (logout=yes: end the provider session, send back-channel logout to every
// client in it) submits itself by script, or after one click on "Sign out" with
// confirmLogout. The provider then redirects (303) to the post_logout_redirect_uri
// (with state) when it is registered and the request carries id_token_hint or
// client_id; without them it shows postLogoutSuccessSource, also replaced ("Signed
// out"). A non-browser client must POST the form (fields xsrf and logout) itself.
//
// CLI (runs until Ctrl-C):
//   node tests/browser/idp.mjs --port 9000 --client-id onramp --client-secret s3cret \
//     --redirect-uri http://127.0.0.1:8080/sso/callback \
//     --post-logout-redirect-uri http://127.0.0.1:8080/ \
//     --backchannel-logout-uri http://127.0.0.1:8080/sso/backchannel-logout \
//     --identity 'pat@example.com:sub-123:email_verified=true,name=Pat Doe,oid=1234' \
//     [--identity …] [--auto] [--confirm-logout] [--no-pkce-required]
//   --identity is email:sub[:claims], claims either k=v pairs separated by commas
//   (true/false become booleans) or a JSON object; the email is the login_hint and
//   the email claim. --redirect-uri and --post-logout-redirect-uri may be repeated.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { realpathSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { SignJWT } from 'jose';
import Provider, { interactionPolicy } from 'oidc-provider';

const HOST = '127.0.0.1';
const COOKIE_KEYS = ['onramp-test-idp-cookie-key-1', 'onramp-test-idp-cookie-key-2'];
const STANDARD_CLAIMS = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name'],
};
const KNOWN_CLAIMS = new Set(Object.values(STANDARD_CLAIMS).flat());
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

const now = () => Math.floor(Date.now() / 1000);

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function page(title, body, script = '') {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#111;background:#fff}button{font-size:1rem;padding:.5rem 1rem}ul{list-style:none;padding:0}li{margin:.5rem 0}</style>
</head>
<body>
<main>
${body}
</main>${script}
</body>
</html>
`;
}

/** An in-memory key/value store with expiry, one per provider (not shared between instances). */
class Store {
  #map = new Map();

  get(key) {
    const entry = this.#map.get(key);
    if (!entry) return undefined;
    if (entry.exp && entry.exp <= Date.now()) {
      this.#map.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key, value, expiresIn) {
    this.#map.set(key, { value, exp: expiresIn ? Date.now() + expiresIn * 1000 : 0 });
  }

  delete(key) {
    this.#map.delete(key);
  }
}

/** The oidc-provider adapter class over one Store (models are keyed `<Model>:<id>`). */
function adapterOver(store) {
  return class TestAdapter {
    constructor(model) {
      this.model = model;
    }

    key(id) {
      return `${this.model}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      store.set(this.key(id), structuredClone(payload), expiresIn);
      if (this.model === 'Session') store.set(`sessionUid:${payload.uid}`, id, expiresIn);
      if (payload.userCode) store.set(`userCode:${payload.userCode}`, id, expiresIn);
      if (GRANTABLE.has(this.model) && payload.grantId) {
        const index = `grant:${payload.grantId}`;
        store.set(index, [...(store.get(index) ?? []), this.key(id)]);
      }
    }

    async find(id) {
      const payload = store.get(this.key(id));
      return payload === undefined ? undefined : structuredClone(payload);
    }

    async findByUid(uid) {
      const id = store.get(`sessionUid:${uid}`);
      return id === undefined ? undefined : this.find(id);
    }

    async findByUserCode(userCode) {
      const id = store.get(`userCode:${userCode}`);
      return id === undefined ? undefined : this.find(id);
    }

    async consume(id) {
      const payload = store.get(this.key(id));
      if (payload) payload.consumed = now();
    }

    async destroy(id) {
      store.delete(this.key(id));
    }

    async revokeByGrantId(grantId) {
      const index = `grant:${grantId}`;
      for (const key of store.get(index) ?? []) store.delete(key);
      store.delete(index);
    }
  };
}

function newSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `test-${randomBytes(6).toString('hex')}`;
  return { kid, privateKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sendHtml(res, status, html) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(html),
  });
  res.end(html);
}

function errorPage(res, status, heading, message) {
  sendHtml(res, status, page(`Test identity provider — ${heading}`,
    `<h1>Test identity provider — ${escapeHtml(heading)}</h1>\n<p>${escapeHtml(message)}</p>`));
}

/** Starts the provider; see the comment at the top of the file. */
export async function startIdp(options = {}) {
  const {
    port: wantedPort = 0,
    autoSubmit = false,
    confirmLogout = false,
    pkceRequired = true,
    idTokenTtl = 300,
    clients = [],
    identities: initialIdentities = [],
  } = options;

  const store = new Store();
  const Adapter = adapterOver(store);
  const identities = [];
  const clientMetadata = new Map();
  const extraClaims = new Set();
  const logins = [];
  const backchannelResults = [];
  let signingKey = newSigningKey();
  let provider;
  let callback;

  const server = createServer((req, res) => {
    dispatch(req, res).catch((err) => {
      console.error('test idp: request failed:', err);
      if (!res.headersSent) errorPage(res, 500, 'Error', err.message);
      else res.destroy();
    });
  });
  server.listen(wantedPort, HOST);
  await once(server, 'listening');
  const { port } = server.address();
  const issuer = `http://${HOST}:${port}`;

  const identityForHint = (hint) => (typeof hint === 'string' && hint
    ? identities.find((i) => i.login_hint?.toLowerCase() === hint.toLowerCase())
    : undefined);
  const identityForSub = (sub) => identities.find((i) => i.sub === sub);
  const displayName = (identity) => identity.claims.email ?? identity.login_hint ?? identity.sub;

  function policy() {
    const base = interactionPolicy.base();
    // A login_hint naming a registered identity other than the signed-in one asks
    // for login again (oidc-provider would otherwise reuse the session silently).
    base.get('login').checks.add(new interactionPolicy.Check(
      'login_hint_mismatch',
      'login_hint names another identity than the signed-in one',
      'login_required',
      (ctx) => {
        const { oidc } = ctx;
        const hinted = identityForHint(oidc.params.login_hint);
        if (hinted && oidc.session.accountId && oidc.session.accountId !== hinted.sub && !oidc.result?.login) {
          return interactionPolicy.Check.REQUEST_PROMPT;
        }
        return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      },
    ));
    return base;
  }

  async function logoutSource(ctx, form) {
    // The form oidc-provider hands over carries the xsrf field; logout=yes ends the
    // provider session (and logs out every client in it over the back channel).
    const formWithLogout = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
    const script = confirmLogout ? ''
      : "\n<script>document.getElementById('op.logoutForm').submit();</script>";
    ctx.type = 'html';
    ctx.body = page('Test identity provider — Sign out', `<h1>Test identity provider — Sign out</h1>
${formWithLogout}
<button type="submit" form="op.logoutForm">Sign out</button>`, script);
  }

  async function postLogoutSuccessSource(ctx) {
    ctx.type = 'html';
    ctx.body = page('Test identity provider — Signed out',
      '<h1>Test identity provider — Signed out</h1>\n<p>You are signed out of the test identity provider.</p>');
  }

  async function renderError(ctx, out) {
    ctx.type = 'html';
    const items = Object.entries(out)
      .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('\n');
    ctx.body = page('Test identity provider — Error', `<h1>Test identity provider — Error</h1>\n<dl>\n${items}\n</dl>`);
  }

  async function findAccount(ctx, sub) {
    const identity = identityForSub(sub);
    if (!identity) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { ...identity.claims, sub };
      },
    };
  }

  function build() {
    const next = new Provider(issuer, {
      adapter: Adapter,
      jwks: { keys: [signingKey.jwk] },
      findAccount,
      claims: { ...STANDARD_CLAIMS, openid: ['sub', ...extraClaims] },
      scopes: ['openid', 'email', 'profile'],
      responseTypes: ['code'],
      subjectTypes: ['public'],
      clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
      clientDefaults: {
        grant_types: ['authorization_code'],
        response_types: ['code'],
        id_token_signed_response_alg: 'RS256',
        token_endpoint_auth_method: 'client_secret_basic',
      },
      enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
      pkce: { methods: ['S256'], required: () => pkceRequired },
      // Scope claims go into the ID token too (oidc-provider 8 otherwise keeps them
      // for userinfo only when an access token for userinfo is issued).
      conformIdTokenClaims: false,
      cookies: {
        names: {
          session: `idp${port}_session`,
          interaction: `idp${port}_interaction`,
          resume: `idp${port}_interaction_resume`,
        },
        long: { httpOnly: true, sameSite: 'lax', signed: true },
        short: { httpOnly: true, sameSite: 'lax', signed: true },
        keys: COOKIE_KEYS,
      },
      features: {
        devInteractions: { enabled: false },
        rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
        backchannelLogout: { enabled: true },
        userinfo: { enabled: true },
      },
      interactions: {
        url: (ctx, interaction) => `/interaction/${interaction.uid}`,
        policy: policy(),
      },
      renderError,
      ttl: {
        AccessToken: 600,
        AuthorizationCode: 60,
        IdToken: idTokenTtl,
        Interaction: 600,
        Session: 3600,
        Grant: 3600,
        RefreshToken: 3600,
      },
    });
    next.on('authorization_code.saved', (code) => {
      logins.push({ client_id: code.clientId, sub: code.accountId, sid: code.sid });
    });
    next.on('backchannel.success', (ctx, client, sub, sid) => {
      backchannelResults.push({ client_id: client.clientId, sub, sid, ok: true });
    });
    next.on('backchannel.error', (ctx, err, client, sub, sid) => {
      backchannelResults.push({ client_id: client.clientId, sub, sid, ok: false, error: err.message });
    });
    next.on('server_error', (ctx, err) => console.error('test idp: server_error:', err));
    // The provider is replaced (same issuer, same storage, same cookie keys) when
    // the signing key or the set of claims changes; sessions and clients survive.
    provider = next;
    callback = next.callback();
  }

  async function finishLogin(req, res, identity) {
    await provider.interactionFinished(req, res, { login: { accountId: identity.sub } }, { mergeWithLastSubmission: false });
  }

  async function grantConsent(req, res, details) {
    const { prompt: { details: missing }, params, session, grantId } = details;
    const grant = (grantId && await provider.Grant.find(grantId))
      || new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const requested = String(params.scope ?? '').split(' ').filter(Boolean);
    grant.addOIDCScope([...new Set([...requested, ...(missing.missingOIDCScope ?? [])])].join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const id = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId: id } }, { mergeWithLastSubmission: true });
  }

  async function interaction(req, res, uid, action) {
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch (err) {
      return errorPage(res, 400, 'Error', `This sign-in request is no longer valid (${err.message}).`);
    }
    if (details.uid !== uid) {
      return errorPage(res, 400, 'Error', 'This sign-in request does not match the browser session.');
    }
    const { prompt, params } = details;

    if (action === 'abort' && req.method === 'GET') {
      return provider.interactionFinished(req, res, {
        error: 'access_denied', error_description: 'End-User aborted interaction',
      }, { mergeWithLastSubmission: false });
    }
    if (prompt.name === 'consent' && action === '' && req.method === 'GET') {
      return grantConsent(req, res, details);
    }
    if (prompt.name !== 'login') {
      return errorPage(res, 400, 'Error', `Unexpected prompt ${prompt.name}.`);
    }
    if (action === 'login' && req.method === 'POST') {
      const identity = identityForSub((await readForm(req)).get('sub'));
      if (!identity) return errorPage(res, 400, 'Error', 'No such identity.');
      return finishLogin(req, res, identity);
    }
    if (action !== '' || req.method !== 'GET') {
      return errorPage(res, 405, 'Error', 'Unsupported request.');
    }

    const client = String(params.client_id);
    const hinted = identityForHint(params.login_hint);
    if (hinted) {
      if (autoSubmit || hinted.auto) return finishLogin(req, res, hinted);
      const title = `Test identity provider — Sign in as ${displayName(hinted)}`;
      return sendHtml(res, 200, page(title, `<h1>${escapeHtml(title)}</h1>
<p>Signing in to ${escapeHtml(client)}.</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<input type="hidden" name="sub" value="${escapeHtml(hinted.sub)}">
<button type="submit">Sign in</button>
</form>`));
    }
    if (!identities.length) {
      return errorPage(res, 400, 'No identities', 'No identity is registered with the test identity provider.');
    }
    const note = params.login_hint
      ? `<p>No identity is registered for ${escapeHtml(params.login_hint)}.</p>\n` : '';
    const items = identities.map((i) => `<li><form method="post" action="/interaction/${escapeHtml(uid)}/login">
<input type="hidden" name="sub" value="${escapeHtml(i.sub)}">
<button type="submit">Sign in as ${escapeHtml(displayName(i))}</button>
</form></li>`).join('\n');
    return sendHtml(res, 200, page('Test identity provider — Choose an identity',
      `<h1>Test identity provider — Choose an identity</h1>\n<p>Signing in to ${escapeHtml(client)}.</p>\n${note}<ul>\n${items}\n</ul>`));
  }

  async function dispatch(req, res) {
    const { pathname } = new URL(req.url, issuer);
    const match = /^\/interaction\/([^/]+)(?:\/(login|abort))?\/?$/.exec(pathname);
    if (match) return interaction(req, res, decodeURIComponent(match[1]), match[2] ?? '');
    return callback(req, res);
  }

  async function addClient(metadata) {
    if (!metadata?.client_id) throw new TypeError('addClient: client_id is required');
    const full = { backchannel_logout_session_required: true, ...metadata };
    for (const [k, v] of Object.entries(full)) if (v === undefined) delete full[k];
    const previous = store.get(`Client:${full.client_id}`);
    store.set(`Client:${full.client_id}`, full);
    try {
      await provider.Client.find(full.client_id); // validates the metadata now
    } catch (err) {
      if (previous) store.set(`Client:${full.client_id}`, previous);
      else store.delete(`Client:${full.client_id}`);
      throw new Error(`addClient: invalid client metadata: ${err.error_description ?? err.message}`);
    }
    clientMetadata.set(full.client_id, full);
  }

  function addIdentity({ login_hint, sub, claims = {}, auto = false }) {
    if (!sub) throw new TypeError('addIdentity: sub is required');
    const identity = { login_hint, sub: String(sub), claims: { ...claims }, auto };
    delete identity.claims.sub;
    const same = identities.findIndex((i) => i.sub === identity.sub
      || (login_hint && i.login_hint?.toLowerCase() === login_hint.toLowerCase()));
    if (same >= 0) identities.splice(same, 1, identity);
    else identities.push(identity);
    const fresh = Object.keys(identity.claims).filter((c) => !KNOWN_CLAIMS.has(c) && !extraClaims.has(c));
    if (fresh.length) {
      fresh.forEach((c) => extraClaims.add(c));
      build();
    }
    return identity;
  }

  async function rotateKeys() {
    signingKey = newSigningKey();
    build();
    return signingKey.kid;
  }

  async function sendBackchannelLogout({ client_id, sub, sid, claims = {}, header = {} }) {
    const client = clientMetadata.get(client_id);
    if (!client) throw new Error(`sendBackchannelLogout: unknown client ${client_id}`);
    if (!client.backchannel_logout_uri) throw new Error(`sendBackchannelLogout: client ${client_id} has no backchannel_logout_uri`);
    if (sub === undefined && sid === undefined && claims.sub === undefined && claims.sid === undefined) {
      throw new TypeError('sendBackchannelLogout: sub or sid is required');
    }
    const iat = now();
    const payload = {
      iss: issuer,
      aud: client_id,
      iat,
      exp: iat + 120,
      jti: randomUUID(),
      events: { [BACKCHANNEL_EVENT]: {} },
      ...(sub === undefined ? {} : { sub }),
      ...(sid === undefined ? {} : { sid }),
      ...claims,
    };
    for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', kid: signingKey.kid, typ: 'logout+jwt', ...header })
      .sign(signingKey.privateKey);
    const response = await fetch(client.backchannel_logout_uri, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: token }).toString(),
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
    await response.arrayBuffer();
    return response.status;
  }

  async function stop() {
    server.closeAllConnections();
    server.close();
    await once(server, 'close').catch(() => {});
  }

  for (const identity of initialIdentities) addIdentity(identity);
  if (!provider) build();
  for (const client of clients) await addClient(client);

  return {
    issuer,
    port,
    addClient,
    addIdentity,
    rotateKeys,
    sendBackchannelLogout,
    logins,
    backchannelResults,
    get kid() {
      return signingKey.kid;
    },
    stop,
  };
}

/** `email:sub[:claims]`, claims as k=v,k=v (true/false become booleans) or a JSON object. */
function parseIdentity(spec) {
  const [email, sub, ...rest] = spec.split(':');
  if (!email || !sub) throw new Error(`--identity ${spec}: expected email:sub[:claims]`);
  const tail = rest.join(':').trim();
  let claims = {};
  if (tail.startsWith('{')) {
    claims = JSON.parse(tail);
  } else if (tail) {
    for (const pair of tail.split(',')) {
      const i = pair.indexOf('=');
      if (i < 1) throw new Error(`--identity ${spec}: expected claim=value, got ${pair}`);
      const key = pair.slice(0, i).trim();
      const raw = pair.slice(i + 1);
      claims[key] = raw === 'true' ? true : raw === 'false' ? false : raw;
    }
  }
  return { login_hint: email, sub, claims: { email, ...claims } };
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true, default: [] },
      'post-logout-redirect-uri': { type: 'string', multiple: true, default: [] },
      'backchannel-logout-uri': { type: 'string' },
      identity: { type: 'string', multiple: true, default: [] },
      auto: { type: 'boolean', default: false },
      'confirm-logout': { type: 'boolean', default: false },
      'no-pkce-required': { type: 'boolean', default: false },
    },
  });
  const idp = await startIdp({
    port: Number(values.port),
    autoSubmit: values.auto,
    confirmLogout: values['confirm-logout'],
    pkceRequired: !values['no-pkce-required'],
    identities: values.identity.map(parseIdentity),
  });
  if (values['client-id']) {
    await idp.addClient({
      client_id: values['client-id'],
      client_secret: values['client-secret'],
      redirect_uris: values['redirect-uri'],
      post_logout_redirect_uris: values['post-logout-redirect-uri'],
      backchannel_logout_uri: values['backchannel-logout-uri'],
    });
  }
  console.log(`test identity provider: issuer ${idp.issuer}`);
  console.log(`  discovery ${idp.issuer}/.well-known/openid-configuration`);
  if (values['client-id']) console.log(`  client ${values['client-id']}`);
  for (const i of values.identity) console.log(`  identity ${i}`);
  const shutdown = () => idp.stop().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();
if (invokedDirectly) {
  main().catch((err) => {
    console.error(`error: ${err.message}`);
    process.exit(1);
  });
}
