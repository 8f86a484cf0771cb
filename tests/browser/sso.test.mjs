// Registration and sign-in through the organization's OpenID provider, in
// headless Chromium against the real onramp binary and a real provider
// (oidc-provider 8, see idp.mjs): the invitation mail, the provider's sign-in
// page, the new path, the account page, signing out at the provider and in
// again through /login; back-channel logout sent by the provider; someone
// else's sign-in on an invitation. Every page of onramp's is checked with
// axe-core, and again in a phone's width; screenshots of each step go to
// $ONRAMP_BROWSER_ARTIFACTS/sso. Tests run in order and share one server and
// one provider: the later ones sign in the person the first one registered.

import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ARTIFACTS, connectSso, startServer } from './harness.mjs';
import { startIdp } from './idp.mjs';
import {
  assertAccessible, assertFitsPhone, DESKTOP, heading, invite as inviteAt, launchChromium, PHONE,
  recordedContext,
} from './kit.mjs';


// Who is invited, what the directory calls them, and who the provider signs in.
const PAT = {
  email: 'pat.doe@example.com',
  directory: { givenName: 'Patricia', familyName: 'Doe' },
  identity: { sub: 'sub-pat', claims: { email: 'Pat.Doe@Example.com', email_verified: true, name: 'Pat D.' } },
};
const SAM = {
  email: 'sam.lee@example.com',
  directory: { givenName: 'Sam', familyName: 'Lee' },
  identity: { sub: 'sub-sam', claims: { email: 'sam.lee@example.com', email_verified: true, name: 'Sam Lee' } },
};
// Invited as casey@…, but the provider signs in someone else for that hint.
const CASEY = {
  email: 'casey@example.com',
  directory: { givenName: 'Casey', familyName: 'Jones' },
  identity: { sub: 'sub-mallory', claims: { email: 'mallory@example.com', email_verified: true, name: 'Mallory' } },
};

let artifacts;
let server;
let idp;
let browser;
let shots = 0;
const requests = []; // every URL any page asked for
const cspViolations = [];

/** A fresh browser context (own cookies) whose requests are recorded. */
const newContext = (options = DESKTOP) => recordedContext(browser, options, { requests, cspViolations });

/** Invites `person` over SCIM and registers them at the provider; resolves to the mail's join link. */
const invite = (person) => inviteAt(server, idp, person);

/** Full-page screenshot of the next step of the journey: sso/NN-name.png. */
async function shot(page, name) {
  shots += 1;
  await page.screenshot({ path: join(artifacts, `${String(shots).padStart(2, '0')}-${name}.png`), fullPage: true });
}

const onramp = (path) => (url) => url.origin === server.base && url.pathname === path;
const atProvider = (url) => url.origin === idp.issuer;

/**
 * In a phone context: the layout checks (kit.mjs), axe-core, and a
 * screenshot phone-<name>.png.
 */
async function checkPhone(page, name, mainButton) {
  await assertFitsPhone(page, name, mainButton);
  await assertAccessible(page, `${name} (phone)`);
  await page.screenshot({ path: join(artifacts, `phone-${name}.png`), fullPage: true });
}

/** The account page's definition list as { term: description }. */
async function accountFacts(page) {
  return page.locator('main dl').evaluate((dl) => Object.fromEntries(
    [...dl.querySelectorAll('dt')].map((dt) => [dt.textContent.trim(), dt.nextElementSibling.textContent.trim()]),
  ));
}

/** Signs in at /login with `email`, through the provider's page when it asks; lands on /account. */
async function signInAtLogin(page, email) {
  await page.goto(`${server.base}/login`);
  await page.getByRole('textbox', { name: 'Work email' }).fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((url) => onramp('/account')(url) || atProvider(url));
  if (atProvider(new URL(page.url()))) {
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(onramp('/account'));
  }
  await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
}

describe('sign-in through the organization SSO in Chromium', () => {
  before(async () => {
    artifacts = join(ARTIFACTS, 'sso');
    await rm(artifacts, { recursive: true, force: true });
    await mkdir(artifacts, { recursive: true });
    console.log(`# artifacts (screenshots, server log): ${artifacts}`);
    idp = await startIdp();
    // onramp at localhost and the provider at 127.0.0.1 are two sites to the
    // browser, as an organization's provider always is: SameSite cookies are
    // sent, or not, as in production.
    server = await startServer({ logDir: artifacts, host: 'localhost' });
    const connection = await connectSso(server, idp);
    assert.equal(connection.redirect_uri, `${server.base}/sso/callback`);
    assert.equal(connection.backchannel_logout_uri, `${server.base}/sso/backchannel-logout`);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await idp?.stop();
  });

  test('an invited person registers at the provider, signs out, and signs in again through /login', async () => {
    const link = await invite(PAT);
    const context = await newContext();
    const page = await context.newPage();

    await page.goto(link);
    assert.equal(page.url(), `${server.base}/join`);
    assert.match(await heading(page), /Join Browser Corp/);
    await shot(page, 'welcome');

    await page.getByRole('button', { name: 'Continue with Browser Corp sign-in' }).click();
    await page.waitForURL(atProvider);
    const authorize = new URL(page.url());
    assert.match(authorize.pathname, /^\/interaction\//, 'the provider asks who signs in');
    assert.equal(await heading(page), `Test identity provider — Sign in as ${PAT.identity.claims.email}`);
    await shot(page, 'provider-sign-in');

    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(onramp('/join/register'));
    assert.equal(await heading(page), 'Create your business account');
    const name = page.getByRole('textbox', { name: 'Your name' });
    assert.equal(await name.inputValue(), 'Patricia Doe', 'the name comes from the directory');
    assert.ok((await page.locator('main').innerText()).includes(PAT.email), 'the page names the invited address');
    assert.equal(await page.getByLabel(/password/i).count(), 0, 'no password field: the organization uses SSO only');
    assert.ok(await page.getByRole('button', { name: 'Start over' }).isVisible());
    await assertAccessible(page, '/join/register');
    await shot(page, 'register');

    await name.fill('Patricia Doé-Martín');
    await shot(page, 'register-name-changed');
    await page.getByRole('button', { name: 'Create my account' }).click();
    await page.waitForURL(onramp('/account'));
    assert.equal(await heading(page), 'Your account');
    const facts = await accountFacts(page);
    assert.equal(facts.Name, 'Patricia Doé-Martín');
    assert.equal(facts.Email, PAT.email);
    assert.equal(facts.Organization, 'Browser Corp');
    assert.equal(facts['Signed in with'], idp.issuer);
    assert.ok(facts['Session ends'], 'the page says when the session ends');
    assert.equal((await context.cookies()).some((c) => c.name === 'onramp_join'), false, 'the join session is over');
    await assertAccessible(page, '/account');
    await shot(page, 'account');
    const invitations = JSON.parse(await server.cli('invitations', 'list', '--org', server.org.id));
    assert.equal(invitations.find((i) => i.email === PAT.email)?.status, 'accepted');

    // Signing out ends the session here, then at the provider, whose page
    // submits itself and comes back to /signed-out; the provider also tells
    // onramp over the back channel, which must answer 200 though the session
    // is already gone.
    const backchannelBefore = idp.backchannelResults.length;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(onramp('/signed-out'));
    assert.equal(await heading(page), 'You are signed out');
    assert.ok(requests.some((u) => u.startsWith(`${idp.issuer}/session/end`)), 'the provider ended its session too');
    assert.deepEqual(
      idp.backchannelResults.slice(backchannelBefore).map(({ sub, ok, error }) => ({ sub, ok, error })),
      [{ sub: PAT.identity.sub, ok: true, error: undefined }],
      'the provider logged onramp out over the back channel',
    );
    await assertAccessible(page, '/signed-out');
    await shot(page, 'signed-out');

    await page.goto(`${server.base}/account`);
    assert.equal(page.url(), `${server.base}/login`, 'signed out: /account sends to /login');
    assert.equal(await heading(page), 'Sign in');
    await assertAccessible(page, '/login');
    await shot(page, 'login');

    await page.getByRole('textbox', { name: 'Work email' }).fill(PAT.email);
    await shot(page, 'login-email');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL((url) => onramp('/account')(url) || atProvider(url));
    if (atProvider(new URL(page.url()))) {
      assert.equal(await heading(page), `Test identity provider — Sign in as ${PAT.identity.claims.email}`);
      await shot(page, 'provider-sign-in-again');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(onramp('/account'));
    }
    assert.equal(await heading(page), 'Your account');
    assert.equal((await accountFacts(page)).Name, 'Patricia Doé-Martín');
    await shot(page, 'account-again');
    await context.close();
  });

  test('every new page passes axe-core and fits a phone', async () => {
    const link = await invite(SAM);
    const context = await newContext(PHONE);
    const page = await context.newPage();

    await page.goto(link);
    await page.getByRole('button', { name: /Continue with Browser Corp/ }).tap();
    await page.waitForURL(atProvider);
    await page.getByRole('button', { name: 'Sign in' }).tap();
    await page.waitForURL(onramp('/join/register'));
    await checkPhone(page, 'register', page.getByRole('button', { name: 'Create my account' }));

    // "Start over" goes back to the welcome page; continuing again comes back
    // here (the provider may remember the sign-in or ask again).
    await page.getByRole('button', { name: 'Start over' }).tap();
    await page.waitForURL(onramp('/join'));
    await page.getByRole('button', { name: /Continue with Browser Corp/ }).tap();
    await page.waitForURL((url) => onramp('/join/register')(url) || atProvider(url));
    if (atProvider(new URL(page.url()))) await page.getByRole('button', { name: 'Sign in' }).tap();
    await page.waitForURL(onramp('/join/register'));

    await page.getByRole('button', { name: 'Create my account' }).tap();
    await page.waitForURL(onramp('/account'));
    assert.equal((await accountFacts(page)).Name, 'Sam Lee');
    await checkPhone(page, 'account', page.getByRole('button', { name: 'Sign out' }));

    await page.getByRole('button', { name: 'Sign out' }).tap();
    await page.waitForURL(onramp('/signed-out'));
    await checkPhone(page, 'signed-out');

    await page.goto(`${server.base}/login`);
    await checkPhone(page, 'login', page.getByRole('button', { name: 'Continue' }));

    await page.getByRole('textbox', { name: 'Work email' }).fill('someone@elsewhere.example');
    await page.getByRole('button', { name: 'Continue' }).tap();
    await page.getByRole('heading', { level: 1, name: 'We could not find your organization' }).waitFor();
    assert.equal(page.url(), `${server.base}/login`);
    await checkPhone(page, 'login-unknown-organization');

    const expired = await page.goto(`${server.base}/sso/callback?state=x&code=y`);
    assert.equal(expired.status(), 400);
    assert.equal(await heading(page), 'This sign-in has expired');
    await checkPhone(page, 'sign-in-expired');
    await context.close();
  });

  test('a back-channel logout from the provider ends that session and no other', async () => {
    const first = await newContext();
    const second = await newContext();
    const pages = [await first.newPage(), await second.newPage()];
    const sessions = [];
    for (const page of pages) {
      await signInAtLogin(page, PAT.email);
      sessions.push(idp.logins.filter((l) => l.sub === PAT.identity.sub).at(-1));
    }
    assert.notEqual(sessions[0].sid, sessions[1].sid, 'two browsers, two provider sessions');

    const status = await idp.sendBackchannelLogout({ client_id: 'onramp', sub: PAT.identity.sub, sid: sessions[0].sid });
    assert.equal(status, 200);

    await pages[0].reload();
    assert.equal(pages[0].url(), `${server.base}/login`, 'the logged-out browser is sent to /login');
    assert.equal(await heading(pages[0]), 'Sign in');
    await shot(pages[0], 'backchannel-logged-out');

    await pages[1].reload();
    assert.equal(pages[1].url(), `${server.base}/account`, 'the other session goes on');
    assert.equal(await heading(pages[1]), 'Your account');
    await first.close();
    await second.close();
  });

  test("someone else's sign-in on an invitation is refused and creates no account", async () => {
    const link = await invite(CASEY);
    const context = await newContext(PHONE);
    const page = await context.newPage();

    await page.goto(link);
    await page.getByRole('button', { name: /Continue with Browser Corp/ }).tap();
    await page.waitForURL(atProvider);
    assert.equal(await heading(page), `Test identity provider — Sign in as ${CASEY.identity.claims.email}`);
    const callback = page.waitForResponse((r) => onramp('/sso/callback')(new URL(r.url())));
    await page.getByRole('button', { name: 'Sign in' }).tap();
    assert.equal((await callback).status(), 403);
    assert.equal(await heading(page), 'That sign-in is not the invited person');
    const text = await page.locator('main').innerText();
    assert.ok(text.includes(`you signed in as ${CASEY.identity.claims.email}, but the invitation is for ${CASEY.email}`), text);
    await shot(page, 'not-the-invited-person');
    await checkPhone(page, 'not-the-invited-person');

    // No account: signing in with the invited address finds none for that
    // sign-in (the provider remembers Mallory and sends her straight back).
    const login = page.waitForResponse((r) => onramp('/sso/callback')(new URL(r.url())));
    await page.goto(`${server.base}/login`);
    await page.getByRole('textbox', { name: 'Work email' }).fill(CASEY.email);
    await page.getByRole('button', { name: 'Continue' }).tap();
    assert.equal((await login).status(), 403);
    assert.equal(await heading(page), 'No account uses this sign-in yet');
    await shot(page, 'not-registered');
    await checkPhone(page, 'not-registered', page.getByRole('link', { name: 'Get a new link' }));

    // The invitation is still open: the link shows the welcome page again.
    await page.goto(link);
    assert.equal(page.url(), `${server.base}/join`);
    assert.match(await heading(page), /Join Browser Corp/);
    const invitations = JSON.parse(await server.cli('invitations', 'list', '--org', server.org.id));
    assert.equal(invitations.find((i) => i.email === CASEY.email)?.status, 'sent', 'the invitation is still open');
    await context.close();
  });

  test('pages load nothing but from onramp and the provider', () => {
    assert.ok(requests.length > 20, `requests were recorded (${requests.length})`);
    const foreign = requests.filter((u) => ![server.base, idp.issuer].includes(new URL(u).origin));
    assert.deepEqual(foreign, [], 'every request goes to onramp or the provider');
    assert.deepEqual(cspViolations, [], 'no Content-Security-Policy violations');
  });
});
