// The invitation pages in headless Chromium, against the real onramp binary:
// the mail link, the welcome page, "get a new link", the error pages; their
// accessibility (axe-core), phone layout, keyboard use, and that they load
// nothing from other hosts. Tests run in order and share one server: the
// resend tests change which link is current.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { mails, nextMailTo, provisionUser, startServer } from './harness.mjs';

const CHROMIUM = process.env.ONRAMP_CHROMIUM ?? '/usr/bin/chromium';
const KNOWN = 'bjensen@example.com';
const UNKNOWN = 'nobody@example.com';
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 3 };
const AXE_SOURCE = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let artifacts;
let server;
let browser;
let link; // the invitation link from the first mail
const requests = []; // every URL any page asked for
const cspViolations = [];

/** A fresh browser context (own cookies) whose requests are recorded. */
async function newContext(options = {}) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(10_000);
  context.on('request', (r) => requests.push(r.url()));
  context.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  return context;
}

/** Runs axe-core in the page; returns its violations (all impacts). */
async function axe(page) {
  // Evaluated over the DevTools protocol, so the page's CSP (no scripts at
  // all) stays in force for everything else the test sees.
  await page.evaluate(AXE_SOURCE);
  return page.evaluate(() => window.axe.run(document).then((r) => r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')),
  }))));
}

function assertNoViolations(violations, where) {
  assert.deepEqual(violations, [], `axe-core violations on ${where}:\n${JSON.stringify(violations, null, 2)}`);
}

/** The element that has focus, described by tag, type and accessible text. */
const focused = (page) => page.evaluate(() => {
  const el = document.activeElement;
  return el ? { tag: el.tagName.toLowerCase(), id: el.id, type: el.getAttribute('type'), text: el.textContent.trim() } : null;
});

/** Submits the resend form with the keyboard only; returns the status text. */
async function resendWithKeyboard(page, base, email) {
  await page.goto(`${base}/join/resend`);
  await page.getByRole('heading', { level: 1 }).click(); // focus starts at the top of the form
  await page.keyboard.press('Tab');
  assert.equal((await focused(page))?.id, 'email', 'Tab reaches the email field');
  await page.keyboard.type(email);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${base}/join/resend` && r.request().method() === 'POST'),
    page.keyboard.press('Enter'),
  ]);
  assert.equal(response.status(), 200);
  await page.waitForLoadState();
  return (await page.getByRole('status').innerText()).trim();
}

describe('invitation pages in Chromium', () => {
  before(async () => {
    artifacts = process.env.ONRAMP_BROWSER_ARTIFACTS ?? (await mkdtemp(join(tmpdir(), 'onramp-browser-artifacts-')));
    await mkdir(artifacts, { recursive: true });
    console.log(`# artifacts (screenshots, server log): ${artifacts}`);
    server = await startServer({ logDir: artifacts });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true, // playwright passes --headless
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
    });
    await provisionUser(server, KNOWN);
    const mail = await nextMailTo(server, KNOWN);
    assert.equal(mail.links.length, 1, `one join link in the invitation mail, found: ${mail.links}`);
    link = mail.links[0];
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the mail link swaps its token for a cookie and shows the welcome page', async () => {
    const context = await newContext();
    const page = await context.newPage();
    const response = await page.goto(link);

    const redirect = response.request().redirectedFrom();
    assert.ok(redirect, 'the link redirects');
    assert.equal(redirect.url(), link);
    const first = await redirect.response();
    assert.equal(first.status(), 303);
    assert.equal(first.headers()['location'], '/join');
    assert.equal(first.headers()['referrer-policy'], 'no-referrer');

    assert.equal(response.status(), 200);
    assert.equal(page.url(), `${server.base}/join`);
    assert.ok(!page.url().includes(link.split('/').pop()), 'the token left the URL');
    assert.equal(response.headers()['referrer-policy'], 'no-referrer');

    const session = (await context.cookies()).find((c) => c.name === 'onramp_join');
    assert.ok(session, 'a join session cookie is set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.path, '/join');

    await page.getByRole('heading', { level: 1, name: /Join Browser Corp/ }).waitFor();
    const text = await page.locator('main').innerText();
    assert.match(text, /Ada Admin/);
    assert.ok(text.includes(KNOWN), 'the page names the invited address');
    assert.match(text, /expires on \d{1,2} [A-Z][a-z]+ \d{4} at \d{2}:\d{2} UTC/);
    const button = page.getByRole('button', { name: /Continue with Browser Corp/ });
    assert.ok(await button.isVisible(), 'the continue button is visible');
    assert.ok(await button.isEnabled(), 'the continue button is enabled');
    await context.close();
  });

  test('the link stays usable until replaced and the session belongs to the browser', async () => {
    // Opening the link again (a reload, or another browser) starts a new
    // session: the link is not single use; it stops working when accepted,
    // expired, revoked or replaced by an administrator's resend (see the
    // resend tests).
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(link);
    const again = await page.goto(link);
    assert.equal((await again.request().redirectedFrom().response()).status(), 303);
    assert.equal(page.url(), `${server.base}/join`);
    await page.getByRole('heading', { level: 1, name: /Join Browser Corp/ }).waitFor();

    // Without the cookie, /join only says to open the link again.
    const other = await newContext();
    const stranger = await other.newPage();
    const res = await stranger.goto(`${server.base}/join`);
    assert.equal(res.status(), 200);
    assert.equal((await stranger.getByRole('heading', { level: 1 }).innerText()).trim(), 'Open your invitation link');
    assert.equal(await stranger.getByRole('button').count(), 0);
    await other.close();
    await context.close();
  });

  test('axe-core finds no accessibility violations on the pages', async () => {
    const context = await newContext();
    const page = await context.newPage();

    await page.goto(link);
    assertNoViolations(await axe(page), 'the welcome page');

    await page.goto(`${server.base}/join/resend`);
    assertNoViolations(await axe(page), '/join/resend');

    await page.getByRole('textbox', { name: 'Work email' }).fill('someone@example.com');
    await Promise.all([page.waitForURL(`${server.base}/join/resend`), page.getByRole('button', { name: /new link/ }).click()]);
    await page.getByRole('status').waitFor();
    assertNoViolations(await axe(page), 'the page after sending the resend form');

    const res = await page.goto(`${server.base}/join/not-a-real-token`);
    assert.equal(res.status(), 404);
    assert.equal((await page.getByRole('heading', { level: 1 }).innerText()).trim(), 'This invitation link is not valid');
    assertNoViolations(await axe(page), 'an invalid link');

    await page.goto(`${server.base}/join`);
    assertNoViolations(await axe(page), '/join without a session');
    await context.close();
  });

  test('on a phone the pages fit the width and the main button is easy to tap', async () => {
    const context = await newContext(PHONE);
    const page = await context.newPage();
    const pages = [
      { name: 'welcome', url: link, button: page.getByRole('button', { name: /Continue/ }) },
      { name: 'resend', url: `${server.base}/join/resend`, button: page.getByRole('button', { name: /new link/ }) },
      { name: 'invalid-link', url: `${server.base}/join/not-a-real-token`, button: page.getByRole('link', { name: 'Get a new link' }) },
    ];
    for (const { name, url, button } of pages) {
      await page.goto(url);
      const { scrollWidth, innerWidth } = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
      }));
      assert.equal(innerWidth, 390, `${name}: the viewport is the phone's`);
      assert.ok(scrollWidth <= innerWidth, `${name}: no horizontal scroll (${scrollWidth} > ${innerWidth})`);
      assert.ok(await button.isVisible(), `${name}: the main button is visible`);
      const box = await button.boundingBox();
      assert.ok(box.height >= 44, `${name}: the main button is ${box.height}px high, less than 44`);
      assert.ok(box.x >= 0 && box.x + box.width <= innerWidth, `${name}: the main button fits the width`);
      assert.ok(box.y + box.height <= 844, `${name}: the main button is on the first screen`);
      await page.screenshot({ path: join(artifacts, `phone-${name}.png`), fullPage: true });
    }
    await context.close();
  });

  test('the resend form works by keyboard and answers the same for any address', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${server.base}/join/resend`);

    const input = page.getByRole('textbox', { name: 'Work email' });
    assert.equal(await input.count(), 1, 'the email field has an accessible name from its label');
    assert.equal(await input.evaluate((el) => el.labels.length), 1);
    assert.equal(await input.getAttribute('type'), 'email');

    // Focus order from the top of the page: the field, then the button.
    await page.getByRole('heading', { level: 1 }).click();
    await page.keyboard.press('Tab');
    assert.deepEqual(await focused(page), { tag: 'input', id: 'email', type: 'email', text: '' });
    await page.keyboard.press('Tab');
    assert.deepEqual(await focused(page), { tag: 'button', id: '', type: 'submit', text: 'Send me a new link' });

    const before = (await mails(server)).map((m) => m.path);
    const unknown = await resendWithKeyboard(page, server.base, UNKNOWN);
    const known = await resendWithKeyboard(page, server.base, KNOWN);
    assert.match(known, /If an invitation is waiting for that address, we have sent a new link/);
    assert.equal(unknown, known, 'the same answer for a known and an unknown address');

    const mail = await nextMailTo(server, KNOWN, before);
    await sleep(300); // give a (wrong) mail to the unknown address time to show up too
    const fresh = (await mails(server)).filter((m) => !before.includes(m.path));
    assert.deepEqual(fresh.map((m) => m.path), [mail.path], 'one new mail, to the known address only');
    assert.equal(mail.links.length, 1);
    assert.notEqual(mail.links[0], link, 'the new mail carries a new link');
    server.resentLink = mail.links[0];
    await context.close();
  });

  test('a resent link works beside the one already held, until an administrator resends', async () => {
    assert.ok(server.resentLink, 'the resend test ran');
    const context = await newContext();
    const page = await context.newPage();
    // Anyone may ask for the link again, so asking never takes away the link
    // the person already holds.
    for (const held of [link, server.resentLink]) {
      await page.goto(held);
      assert.equal(page.url(), `${server.base}/join`);
      await page.getByRole('heading', { level: 1, name: /Join Browser Corp/ }).waitFor();
    }

    // An administrator's resend voids every earlier link and mails a new one.
    const before = (await mails(server)).map((m) => m.path);
    const [invitation] = JSON.parse(await server.cli('invitations', 'list', '--org', server.org.id));
    await server.cli('invitations', 'resend', invitation.id, '--org', server.org.id);
    const mail = await nextMailTo(server, KNOWN, before);
    for (const old of [link, server.resentLink]) {
      const res = await page.goto(old);
      assert.equal(res.status(), 404);
      assert.equal((await page.getByRole('heading', { level: 1 }).innerText()).trim(), 'This invitation link is not valid');
      assert.ok(await page.getByRole('link', { name: 'Get a new link' }).isVisible());
    }
    await page.goto(mail.links[0]);
    assert.equal(page.url(), `${server.base}/join`);
    await context.close();
  });

  test('a resend POST without the CSRF cookie and token is refused', async () => {
    const url = `${server.base}/join/resend`;
    const post = (body, headers = {}) => fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(body).toString(),
    });
    const form = await fetch(url);
    const cookie = form.headers.getSetCookie().find((c) => c.startsWith('onramp_csrf='));
    assert.ok(cookie, 'the form sets a CSRF cookie');
    const cookieValue = cookie.split(';')[0].split('=')[1];
    const before = (await mails(server)).length;

    for (const [why, res] of [
      ['no cookie, no token', await post({ email: KNOWN })],
      ['no cookie, a token', await post({ email: KNOWN, csrf: cookieValue })],
      ['a cookie, no token', await post({ email: KNOWN }, { Cookie: `onramp_csrf=${cookieValue}` })],
      ['a cookie, a wrong token', await post({ email: KNOWN, csrf: 'csrf_wrong' }, { Cookie: `onramp_csrf=${cookieValue}` })],
    ]) {
      assert.ok(res.status >= 400 && res.status < 500, `${why}: status ${res.status}, want 4xx`);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/, `${why}: an HTML page`);
      assert.match(await res.text(), /<h1>Please try again<\/h1>/, `${why}: explains what to do`);
    }
    await sleep(300);
    assert.equal((await mails(server)).length, before, 'nothing was sent');
  });

  test('no page loads anything from another host', () => {
    assert.ok(requests.length > 10, `requests were recorded (${requests.length})`);
    const foreign = requests.filter((u) => new URL(u).origin !== server.base);
    assert.deepEqual(foreign, [], 'every request goes to the server under test');
    assert.deepEqual(cspViolations, [], 'no Content-Security-Policy violations');
  });
});
