// The registration paths for a work email that already has an account
// (PRODUCT.md "The registration paths"), in headless Chromium against the
// real onramp binary and a real provider (oidc-provider 8, see idp.mjs):
// migrate, proved by the password and by a mailed code; separate; blocked,
// with the order history's CSV, deregistration, the administrator's resend and
// the new path. Accounts are seeded with `onramp accounts import` and compared
// with `onramp accounts show` before and after: nothing lost, nothing doubled.
// Every page of a path is checked with axe-core and, on a phone, for its
// layout; screenshots of each step go to $ONRAMP_BROWSER_ARTIFACTS/paths.
// Tests run in order and share one server and one provider, each with its
// own invited person and browser context.

import assert from 'node:assert/strict';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  ARTIFACTS, connectSso, importAccounts, mailPaths, nextCodeTo, nextMailTo, nextMailWithSubject, showAccount,
  startServer,
} from './harness.mjs';
import { startIdp } from './idp.mjs';
import {
  assertAccessible, assertFitsPhone, DESKTOP, heading, invite as inviteAt, launchChromium, PHONE,
  recordedContext,
} from './kit.mjs';

const ORG = 'Browser Corp';
const OTHER_ORG = 'Rival Industries';

/** An invited person: the directory's name, the provider's identity, and the account already on the email. */
function person(email, givenName, familyName, account) {
  return {
    email,
    directory: { givenName, familyName },
    identity: { sub: `sub-${email}`, claims: { email, email_verified: true, name: `${givenName} ${familyName}` } },
    account: { email, name: `${givenName} ${familyName}`, ...account },
  };
}

const order = (id, date, total, purpose, summary) => ({ id, date, total, currency: 'USD', purpose, summary });
const card = (brand, last4, expires) => ({ brand, last4, expires });
const address = (name, line1, city, postal_code) => ({ name, line1, city, postal_code, country: 'US' });

// Business orders only: migrate, proved by the password.
const MORGAN = person('morgan.mills@example.com', 'Morgan', 'Mills', {
  kind: 'personal', password: 'morgan-old-password', phone: '+15551230001', organization: null,
  orders: [order('M-1', '2025-01-14', '349.00', 'business', 'Office chair'), order('M-2', '2025-02-03', '89.50', 'business', 'Printer toner')],
  payment_methods: [card('visa', '4242', '2028-04'), card('mastercard', '5454', '2027-09')],
  addresses: [address('Morgan Mills', '12 Commerce Way', 'Springfield', '12345'), address('Morgan Mills', '3 Dock Road', 'Ogdenville', '54321')],
});
// Business orders only: migrate, a wrong password, then the mailed code.
const RILEY = person('riley.reed@example.com', 'Riley', 'Reed', {
  kind: 'personal', password: 'riley-old-password', organization: null,
  orders: [order('R-1', '2025-03-09', '19.99', 'business', 'Cables')],
  payment_methods: [card('visa', '1881', '2029-02')],
  addresses: [address('Riley Reed', '4 Mill Lane', 'North Haverbrook', '24680')],
});
// Personal orders: separate, to a personal email outside the organization's domain.
const SAM = person('sam.stone@example.com', 'Sam', 'Stone', {
  kind: 'personal', password: 'sam-old-password', phone: '+15551230002', organization: null,
  orders: [
    order('S-1', '2024-11-20', '1299.00', 'business', 'Laptop'),
    order('S-2', '2024-12-18', '45.99', 'personal', 'Board game'),
    order('S-3', '2025-03-02', '129.90', 'personal', 'Desk lamp'),
  ],
  payment_methods: [card('mastercard', '5454', '2027-09'), card('visa', '1111', '2026-12')],
  addresses: [address('Sam Stone', '7 Elm Street', 'Shelbyville', '62565')],
});
const SAM_PERSONAL = 'sam.stone@personal.example';
// A business account of another organization: blocked. Its orders' summaries
// test the CSV's quoting and its guard against spreadsheet formulas.
const BLAIR = person('blair.banks@example.com', 'Blair', 'Banks', {
  kind: 'business', password: 'blair-old-password',
  orders: [
    order('B-1', '2025-01-05', '2400.00', 'business', 'Standing desks, "oak" (4)'),
    order('B-2', '2025-02-11', '12.00', 'business', '=HYPERLINK("http://evil.example")'),
  ],
  payment_methods: [card('amex', '0005', '2029-01')],
  addresses: [address('Blair Banks', '1 Industrial Park', 'Capital City', '90210')],
});
const BLAIR_PERSONAL = 'blair.banks@home.example';

let artifacts;
let server;
let idp;
let browser;
let shots = 0;
const requests = []; // every URL any page asked for
const cspViolations = [];

/** A fresh browser context (own cookies) whose requests are recorded. */
const newContext = (options) => recordedContext(browser, options, { requests, cspViolations });

const onPhone = (page) => page.viewportSize().width === PHONE.viewport.width;

/** Taps on a phone, clicks elsewhere. */
async function press(page, locator) {
  if (onPhone(page)) await locator.tap();
  else await locator.click();
}

/** Presses `locator` and waits for the page it leads to (a form's answer, after any redirect). */
async function submit(page, locator) {
  const loaded = page.waitForEvent('load');
  await press(page, locator);
  await loaded;
}

const onramp = (path) => (url) => url.origin === server.base && url.pathname === path;
const atProvider = (url) => url.origin === idp.issuer;

/**
 * Checks the page a step shows: axe-core, the phone layout when the page is
 * on a phone, and a screenshot paths/NN-<step>.png.
 */
async function checkStep(page, step, mainButton) {
  await assertAccessible(page, step);
  if (onPhone(page)) await assertFitsPhone(page, step, mainButton);
  shots += 1;
  await page.screenshot({ path: join(artifacts, `${String(shots).padStart(2, '0')}-${step}.png`), fullPage: true });
}

/** The error a refused form shows, which must be announced. */
async function alertText(page) {
  return (await page.getByRole('alert').innerText()).trim();
}

/** The account page's definition list as { term: description }. */
async function accountFacts(page) {
  return page.locator('main dl').evaluate((dl) => Object.fromEntries(
    [...dl.querySelectorAll('dt')].map((dt) => [dt.textContent.trim(), dt.nextElementSibling.textContent.trim()]),
  ));
}

/** Seeds the person's existing account; resolves to `accounts show` of it. */
async function seed(p) {
  await importAccounts(server, [p.account]);
  const shown = await showAccount(server, p.email);
  assert.equal(shown.orders.length, p.account.orders.length, `${p.email}: every order imported`);
  return shown;
}

/** Invites `p` over SCIM; resolves to the invitation mail's join link. */
const invite = (p) => inviteAt(server, idp, p);

/**
 * Opens a join link and signs in at the provider; lands on /join/register.
 * `atWelcome(page)`, when given, runs on the welcome page first.
 */
async function signInFromLink(page, link, atWelcome) {
  await page.goto(link);
  assert.equal(page.url(), `${server.base}/join`);
  await atWelcome?.(page);
  await press(page, page.getByRole('button', { name: `Continue with ${ORG} sign-in` }));
  await page.waitForURL((url) => onramp('/join/register')(url) || atProvider(url));
  if (atProvider(new URL(page.url()))) {
    await press(page, page.getByRole('button', { name: 'Sign in' }));
    await page.waitForURL(onramp('/join/register'));
  }
}

/** Types the code and confirms it. */
async function enterCode(page, to, code) {
  await page.getByRole('textbox', { name: `The 6-digit code we sent to ${to}` }).fill(code);
  await submit(page, page.getByRole('button', { name: 'Confirm', exact: true }));
}

/** Sorted copies, so that lists compare whatever order the store returns them in. */
const byId = (items) => [...items].sort((a, b) => String(a.id).localeCompare(String(b.id)));

/** Asserts that `after` holds exactly the orders, payment methods and addresses `before` held. */
function assertSameHoldings(after, before, what) {
  for (const list of ['orders', 'payment_methods', 'addresses']) {
    assert.deepEqual(byId(after[list]), byId(before[list]), `${what}: the same ${list}, none lost or doubled`);
  }
}

/** The invitation of `email` as `invitations list` shows it. */
async function invitationOf(email) {
  const all = JSON.parse(await server.cli('invitations', 'list', '--org', server.org.id));
  return all.find((i) => i.email === email);
}

/** Splits CSV text into rows of cells (RFC 4180: quoted cells may hold commas, quotes and line breaks). */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '"' && text[i + 1] === '"') {
      cell += '"';
      i++;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (!quoted && c === ',') {
      row.push(cell);
      cell = '';
    } else if (!quoted && c === '\r' && text[i + 1] === '\n') {
      rows.push([...row, cell]);
      row = [];
      cell = '';
      i++;
    } else {
      cell += c;
    }
  }
  if (cell !== '' || row.length) rows.push([...row, cell]);
  return rows;
}

describe('registration paths for an email that already has an account, in Chromium', () => {
  before(async () => {
    artifacts = join(ARTIFACTS, 'paths');
    await rm(artifacts, { recursive: true, force: true });
    await mkdir(artifacts, { recursive: true });
    console.log(`# artifacts (screenshots, server log): ${artifacts}`);
    idp = await startIdp();
    // onramp at localhost and the provider at 127.0.0.1: two sites, as in production.
    server = await startServer({ logDir: artifacts, host: 'localhost' });
    await connectSso(server, idp);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await idp?.stop();
  });

  test('migrate: the password proves the account, which joins with everything it had', async () => {
    const before = await seed(MORGAN);
    const link = await invite(MORGAN);
    const context = await newContext(DESKTOP);
    const page = await context.newPage();

    await signInFromLink(page, link);
    assert.equal(await heading(page), 'Your work email already has an account');
    assert.ok((await page.locator('main').innerText()).includes(MORGAN.email), 'the page names the work email');
    await checkStep(page, 'migrate-prove-ownership');

    await page.getByLabel("The account's password").fill(MORGAN.account.password);
    await submit(page, page.getByRole('button', { name: 'Continue', exact: true }));
    assert.equal(await heading(page), `How should your account join ${ORG}?`);
    const businessOnly = page.getByRole('radio', { name: /^Business only \(recommended\)/ });
    assert.ok(await businessOnly.isChecked(), 'business only is recommended and chosen for business orders only');
    assert.equal(await page.getByRole('radio', { name: /recommended/ }).count(), 1, 'one option is recommended');
    assert.equal(await page.getByRole('checkbox').count(), 0, 'no personal orders: nothing to acknowledge');
    await checkStep(page, 'migrate-choose');

    await submit(page, page.getByRole('button', { name: 'Continue', exact: true }));
    assert.equal(await heading(page), `Move your account into ${ORG}`);
    const warning = await page.locator('main .note').innerText();
    assert.ok(warning.includes(`${ORG}'s administrators will see all 2 orders and 2 payment methods`), warning);
    await checkStep(page, 'migrate-confirm');

    await page.getByRole('checkbox', { name: /business shopping only/ }).check();
    await page.getByRole('checkbox', { name: /shared account/ }).check();
    const seen = await mailPaths(server);
    await submit(page, page.getByRole('button', { name: `Join ${ORG}` }));
    assert.ok(onramp('/account')(new URL(page.url())), `finished on /account, not ${page.url()}`);
    const facts = await accountFacts(page);
    assert.equal(facts.Email, MORGAN.email);
    assert.equal(facts.Organization, ORG);
    assert.equal(facts['Signed in with'], idp.issuer);
    await checkStep(page, 'migrate-account');

    const afterwards = await showAccount(server, MORGAN.email);
    assert.equal(afterwards.id, before.id, 'the same account joined');
    assert.equal(afterwards.kind, 'business');
    assert.equal(afterwards.organization, server.org.id);
    assertSameHoldings(afterwards, before, 'migrated');
    assert.equal((await invitationOf(MORGAN.email)).status, 'accepted');
    await nextMailWithSubject(server, MORGAN.email, `Your account joined ${ORG}`, seen);
    await context.close();
  });

  test('migrate: a wrong password is shown as an error, then the mailed code proves the account', async () => {
    const before = await seed(RILEY);
    const link = await invite(RILEY);
    const context = await newContext(PHONE);
    const page = await context.newPage();

    await signInFromLink(page, link);
    assert.equal(await heading(page), 'Your work email already has an account');
    await checkStep(page, 'code-prove-ownership', page.getByRole('button', { name: 'Continue', exact: true }));

    await page.getByLabel("The account's password").fill('not-the-password');
    await submit(page, page.getByRole('button', { name: 'Continue', exact: true }));
    assert.equal(await heading(page), 'Your work email already has an account', 'the same step again');
    assert.match(await alertText(page), /That password is not right\. 4 more tries/);
    await checkStep(page, 'code-wrong-password');

    const seen = await mailPaths(server);
    await submit(page, page.getByRole('button', { name: 'Forgot your password? Email me a code' }));
    assert.equal(await page.getByRole('status').innerText(), `We sent a code to ${RILEY.email}.`);
    const { code, mail } = await nextCodeTo(server, RILEY.email, seen);
    assert.equal(mail.headers.subject, `Your ${ORG} verification code`);
    await checkStep(page, 'code-enter', page.getByRole('button', { name: 'Confirm', exact: true }));

    // A wrong code first (one that differs from the mailed one in every digit).
    const wrong = [...code].map((d) => String((Number(d) + 1) % 10)).join('');
    await enterCode(page, RILEY.email, wrong);
    assert.match(await alertText(page), /That code is not right\. 4 more tries\./);
    assert.equal(await heading(page), 'Your work email already has an account');
    await checkStep(page, 'code-wrong-code');

    await enterCode(page, RILEY.email, code);
    assert.equal(await heading(page), `How should your account join ${ORG}?`);
    // Two described options: the button is a short scroll away on a phone.
    await checkStep(page, 'code-choose');

    await submit(page, page.getByRole('button', { name: 'Continue', exact: true }));
    assert.equal(await heading(page), `Move your account into ${ORG}`);
    await checkStep(page, 'code-migrate-confirm', page.getByRole('button', { name: `Join ${ORG}` }));

    await page.getByRole('checkbox', { name: /business shopping only/ }).tap();
    await page.getByRole('checkbox', { name: /shared account/ }).tap();
    await submit(page, page.getByRole('button', { name: `Join ${ORG}` }));
    assert.ok(onramp('/account')(new URL(page.url())), `finished on /account, not ${page.url()}`);
    assert.equal((await accountFacts(page)).Organization, ORG);
    await checkStep(page, 'code-account');

    const afterwards = await showAccount(server, RILEY.email);
    assert.equal(afterwards.id, before.id);
    assert.equal(afterwards.kind, 'business');
    assert.equal(afterwards.organization, server.org.id);
    assertSameHoldings(afterwards, before, 'migrated');
    await context.close();
  });

  test('separate: the old account moves to a verified personal email, a new business account joins', async () => {
    await server.cli('org', 'set', server.org.id, '--passwords', 'true');
    const before = await seed(SAM);
    const link = await invite(SAM);
    const context = await newContext(PHONE);
    const page = await context.newPage();

    await signInFromLink(page, link);
    assert.equal(await heading(page), 'Your work email already has an account');
    await checkStep(page, 'separate-prove-ownership', page.getByRole('button', { name: 'Continue', exact: true }));
    await page.getByLabel("The account's password").fill(SAM.account.password);
    await submit(page, page.getByRole('button', { name: 'Continue', exact: true }));

    assert.equal(await heading(page), `How should your account join ${ORG}?`);
    assert.ok(await page.getByRole('radio', { name: /^Separate \(recommended\)/ }).isChecked(), 'separate is recommended for personal orders');
    const acknowledge = page.getByRole('checkbox', { name: /2 personal orders will be visible/ });
    assert.ok(await acknowledge.isVisible(), 'business only would need the personal orders acknowledged');
    await checkStep(page, 'separate-choose');

    await submit(page, page.getByRole('button', { name: 'Continue', exact: true }));
    assert.equal(await heading(page), 'Your personal email');
    await checkStep(page, 'separate-personal-email', page.getByRole('button', { name: 'Send a code to this email' }));

    // An address in the organization's own domain is refused.
    await page.getByRole('textbox', { name: 'Personal email' }).fill('sam.private@example.com');
    await submit(page, page.getByRole('button', { name: 'Send a code to this email' }));
    assert.equal(await heading(page), 'Your personal email');
    assert.match(await alertText(page), /example\.com is your organization's domain/);
    await checkStep(page, 'separate-personal-email-refused');

    let seen = await mailPaths(server);
    await page.getByRole('textbox', { name: 'Personal email' }).fill(SAM_PERSONAL);
    await submit(page, page.getByRole('button', { name: 'Send a code to this email' }));
    assert.equal(await heading(page), 'Check your personal email');
    await checkStep(page, 'separate-personal-code', page.getByRole('button', { name: 'Confirm', exact: true }));
    const personalCode = await nextCodeTo(server, SAM_PERSONAL, seen);
    await enterCode(page, SAM_PERSONAL, personalCode.code);

    assert.equal(await heading(page), 'Your new business account');
    assert.equal(await page.getByRole('textbox', { name: 'Your name' }).inputValue(), 'Sam Stone', 'the name is prefilled');
    await checkStep(page, 'separate-details', page.getByRole('button', { name: `Send a code to ${SAM.email}` }));
    await page.getByLabel('Password (optional, 8 to 256 characters)').fill('sam-new-business-password');
    await page.getByLabel('Password again').fill('sam-new-business-password');
    await page.getByRole('textbox', { name: /^Phone/ }).fill('+1 555 123 0099');
    seen = await mailPaths(server);
    await submit(page, page.getByRole('button', { name: `Send a code to ${SAM.email}` }));

    assert.equal(await heading(page), 'Check your work email');
    assert.ok((await page.locator('main').innerText()).includes(`your existing account moves to ${SAM_PERSONAL}`));
    await checkStep(page, 'separate-work-code', page.getByRole('button', { name: 'Confirm', exact: true }));
    const workCode = await nextCodeTo(server, SAM.email, seen);
    // Nothing has moved before the last code.
    assert.equal((await showAccount(server, SAM.email)).id, before.id);
    assert.equal(await showAccount(server, SAM_PERSONAL), null);

    seen = await mailPaths(server);
    await enterCode(page, SAM.email, workCode.code);
    assert.ok(onramp('/account')(new URL(page.url())), `finished on /account, not ${page.url()}`);
    const facts = await accountFacts(page);
    assert.equal(facts.Email, SAM.email);
    assert.equal(facts.Organization, ORG);
    await checkStep(page, 'separate-account');

    const moved = await showAccount(server, SAM_PERSONAL);
    assert.equal(moved.id, before.id, 'the old account now signs in with the personal email');
    assert.equal(moved.kind, 'personal');
    assert.equal(moved.organization, null);
    assertSameHoldings(moved, before, 'moved');
    const created = await showAccount(server, SAM.email);
    assert.notEqual(created.id, before.id, 'a new account on the work email');
    assert.equal(created.kind, 'business');
    assert.equal(created.organization, server.org.id);
    assert.equal(created.phone, '+15551230099');
    assert.deepEqual([created.orders, created.payment_methods, created.addresses], [[], [], []]);
    await nextMailWithSubject(server, SAM_PERSONAL, 'Your account now signs in with this email', seen);
    await nextMailWithSubject(server, SAM.email, 'Your work email now has a business account', seen);
    assert.equal((await invitationOf(SAM.email)).status, 'accepted');
    await context.close();
  });

  test('blocked: a business account of another organization is exported, deregistered, and the resent invitation takes the new path', async () => {
    const other = JSON.parse(await server.cli('org', 'create', '--name', OTHER_ORG, '--domain', 'rival.example'));
    BLAIR.account.organization = other.id;
    const before = await seed(BLAIR);
    assert.equal(before.organization, other.id);
    const link = await invite(BLAIR);
    const context = await newContext(PHONE);
    const page = await context.newPage();

    // Nothing names the other organization before the proof: not the
    // welcome page, not the step, not the code page or the code mail.
    const namesOther = (text) => text.toLowerCase().includes(OTHER_ORG.toLowerCase()) || text.includes(other.id);
    await signInFromLink(page, link, async (welcome) => {
      assert.ok(!namesOther(await welcome.content()), 'the welcome page does not name the other organization');
    });
    assert.equal(await heading(page), `This email cannot join ${ORG} yet`);
    assert.ok(!namesOther(await page.content()), 'the step does not name the other organization before proof');
    await checkStep(page, 'blocked-prove-ownership', page.getByRole('button', { name: 'Continue', exact: true }));

    let seen = await mailPaths(server);
    await submit(page, page.getByRole('button', { name: 'Forgot your password? Email me a code' }));
    const ownerCode = await nextCodeTo(server, BLAIR.email, seen);
    assert.ok(!namesOther(ownerCode.mail.texts.join('\n') + ownerCode.mail.headers.subject), 'nor the code mail');
    assert.ok(!namesOther(await page.content()), 'nor the code page');
    await checkStep(page, 'blocked-code', page.getByRole('button', { name: 'Confirm', exact: true }));
    await enterCode(page, BLAIR.email, ownerCode.code);

    assert.equal(await heading(page), 'This email belongs to a business account');
    assert.ok((await page.locator('main').innerText()).includes(`business account of ${OTHER_ORG}`), 'after proof it is named');
    await checkStep(page, 'blocked-options', page.getByRole('button', { name: 'Deregister the business account' }));

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      press(page, page.getByRole('link', { name: 'Download its order history (CSV)' })),
    ]);
    assert.equal(download.suggestedFilename(), 'order-history.csv');
    const csv = await readFile(await download.path(), 'utf8');
    assert.ok(csv.endsWith('\r\n'), 'rows end with CRLF');
    const rows = parseCsv(csv);
    assert.deepEqual(rows[0], ['order', 'date', 'total', 'currency', 'purpose', 'summary']);
    assert.deepEqual(rows.slice(1).sort((a, b) => a[0].localeCompare(b[0])), [
      ['B-1', '2025-01-05', '2400.00', 'USD', 'business', 'Standing desks, "oak" (4)'],
      ['B-2', '2025-02-11', '12.00', 'USD', 'business', `'=HYPERLINK("http://evil.example")`],
    ]);

    await submit(page, page.getByRole('button', { name: 'Deregister the business account' }));
    assert.equal(await heading(page), 'Where should the account go?');
    await checkStep(page, 'blocked-personal-email', page.getByRole('button', { name: 'Send a code to this email' }));
    seen = await mailPaths(server);
    await page.getByRole('textbox', { name: 'Personal email' }).fill(BLAIR_PERSONAL);
    await submit(page, page.getByRole('button', { name: 'Send a code to this email' }));
    assert.equal(await heading(page), 'Check your personal email');
    await checkStep(page, 'blocked-personal-code', page.getByRole('button', { name: 'Confirm', exact: true }));
    await enterCode(page, BLAIR_PERSONAL, (await nextCodeTo(server, BLAIR_PERSONAL, seen)).code);

    assert.equal(await heading(page), 'Deregister the business account');
    const note = await page.locator('main .note').innerText();
    assert.ok(note.includes(`leaves ${OTHER_ORG}`) && note.includes(BLAIR_PERSONAL), note);
    await checkStep(page, 'blocked-confirm-deregister', page.getByRole('button', { name: 'Deregister', exact: true }));
    assert.equal((await showAccount(server, BLAIR.email)).organization, other.id, 'nothing changed before the confirmation');

    await page.getByRole('checkbox', { name: 'Yes, deregister this business account.' }).tap();
    seen = await mailPaths(server);
    await submit(page, page.getByRole('button', { name: 'Deregister', exact: true }));
    assert.equal(await heading(page), 'Your business account was deregistered');
    assert.ok((await page.locator('main').innerText()).includes(BLAIR_PERSONAL));
    await checkStep(page, 'blocked-deregistered');

    const deregistered = await showAccount(server, BLAIR_PERSONAL);
    assert.equal(deregistered.id, before.id, 'the same account, on the personal email');
    assert.equal(deregistered.kind, 'personal');
    assert.equal(deregistered.organization, null, 'it left the other organization');
    assertSameHoldings(deregistered, before, 'deregistered');
    assert.equal(await showAccount(server, BLAIR.email), null, 'the work email is free');
    await nextMailWithSubject(server, BLAIR_PERSONAL, 'Your business account was deregistered', seen);
    await nextMailWithSubject(server, BLAIR.email, 'Your business account was deregistered', seen);

    // The administrator resends; the new link takes the new path.
    const invitation = await invitationOf(BLAIR.email);
    assert.notEqual(invitation.status, 'accepted');
    seen = await mailPaths(server);
    await server.cli('invitations', 'resend', invitation.id, '--org', server.org.id);
    const resent = await nextMailTo(server, BLAIR.email, seen);
    assert.equal(resent.links.length, 1);
    assert.notEqual(resent.links[0], link, 'a new link');

    await signInFromLink(page, resent.links[0]);
    assert.equal(await heading(page), 'Create your business account');
    await checkStep(page, 'blocked-new-path', page.getByRole('button', { name: 'Create my account' }));
    await submit(page, page.getByRole('button', { name: 'Create my account' }));
    assert.ok(onramp('/account')(new URL(page.url())), `finished on /account, not ${page.url()}`);
    const facts = await accountFacts(page);
    assert.equal(facts.Email, BLAIR.email);
    assert.equal(facts.Organization, ORG);
    await checkStep(page, 'blocked-account');

    const created = await showAccount(server, BLAIR.email);
    assert.notEqual(created.id, before.id);
    assert.equal(created.kind, 'business');
    assert.equal(created.organization, server.org.id);
    assert.deepEqual([created.orders, created.payment_methods, created.addresses], [[], [], []]);
    assertSameHoldings(await showAccount(server, BLAIR_PERSONAL), before, 'still with the personal email');
    assert.equal((await invitationOf(BLAIR.email)).status, 'accepted');
    await context.close();
  });

  test('pages load nothing but from onramp and the provider', () => {
    assert.ok(requests.length > 20, `requests were recorded (${requests.length})`);
    const foreign = requests.filter((u) => ![server.base, idp.issuer].includes(new URL(u).origin));
    assert.deepEqual(foreign, [], 'every request goes to onramp or the provider');
    assert.deepEqual(cspViolations, [], 'no Content-Security-Policy violations');
  });
});
