// What the SSO and registration-path browser tests share about pages: a
// browser context that records every request and Content Security Policy
// violation, axe-core, the phone-layout checks, and inviting someone who
// signs in at the test provider. (harness.mjs knows only the CLI, HTTP and
// the mail files; this module knows pages.)

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

import { chromium } from 'playwright-core';

import { nextMailTo, provisionUser } from './harness.mjs';

/** The browser: Debian's Chromium unless ONRAMP_CHROMIUM names another. */
const CHROMIUM = process.env.ONRAMP_CHROMIUM ?? '/usr/bin/chromium';

export const DESKTOP = { viewport: { width: 1280, height: 800 } };
export const PHONE = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
const AXE_SOURCE = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Headless Chromium, quiet (no background traffic); a missing browser is an error. */
export async function launchChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install chromium) or set ONRAMP_CHROMIUM`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true, // playwright passes --headless
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/**
 * A fresh context of `browser` (own cookies) that appends every URL its
 * pages ask for to `seen.requests` and every CSP violation they report to
 * `seen.cspViolations`.
 */
export async function recordedContext(browser, options, seen) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(10_000);
  context.on('request', (r) => seen.requests.push(r.url()));
  context.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) seen.cspViolations.push(m.text());
  });
  return context;
}

/** The page's level-one heading, once it is there. */
export async function heading(page) {
  return (await page.getByRole('heading', { level: 1 }).innerText()).trim();
}

/** Runs axe-core in the page and asserts it finds nothing, of any impact. */
export async function assertAccessible(page, where) {
  // Evaluated over the DevTools protocol, so the page's CSP (no scripts at
  // all) stays in force for everything else the test sees.
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(() => window.axe.run(document).then((r) => r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')),
  }))));
  assert.deepEqual(violations, [], `axe-core violations on ${where}:\n${JSON.stringify(violations, null, 2)}`);
}

/**
 * On a phone: no horizontal scroll; every button and field at least 44px
 * high and inside the width (for a checkbox or radio, the label around it,
 * which is what a finger hits); the page's main button, when given, on the
 * first screen.
 */
export async function assertFitsPhone(page, name, mainButton) {
  const { scrollWidth, innerWidth, innerHeight } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, innerHeight: window.innerHeight,
  }));
  assert.equal(innerWidth, PHONE.viewport.width, `${name}: the viewport is the phone's`);
  assert.ok(scrollWidth <= innerWidth, `${name}: no horizontal scroll (${scrollWidth} > ${innerWidth})`);
  for (const target of await page.locator('main').locator('button, .button, input:not([type=hidden])').all()) {
    const type = await target.getAttribute('type');
    const hit = ['checkbox', 'radio'].includes(type) ? target.locator('xpath=ancestor::label[1]') : target;
    const label = (await target.getAttribute('id')) ?? (await target.getAttribute('name')) ?? (await target.innerText());
    const box = await hit.boundingBox();
    assert.ok(box.height >= 44, `${name}: "${label}" is ${box.height}px high, less than 44`);
    assert.ok(box.x >= 0 && box.x + box.width <= innerWidth, `${name}: "${label}" fits the width`);
  }
  if (mainButton) {
    assert.ok(await mainButton.isVisible(), `${name}: the main button is visible`);
    const box = await mainButton.boundingBox();
    assert.ok(box.y + box.height <= innerHeight, `${name}: the main button is on the first screen (its bottom at ${box.y + box.height}px of ${innerHeight})`);
  }
}

/**
 * Invites `person` over SCIM and registers their identity at the provider
 * `idp`; resolves to the invitation mail's join link.
 */
export async function invite(server, idp, person) {
  idp.addIdentity({ login_hint: person.email, ...person.identity });
  await provisionUser(server, person.email, person.directory);
  const mail = await nextMailTo(server, person.email);
  assert.equal(mail.links.length, 1, `one join link in the invitation mail, found: ${mail.links}`);
  return mail.links[0];
}
