// Drives headless Chromium through the dashboard a cairn-master serves, for
// //tests:dashboard_browser_test (tests/dashboard_browser_test.cc).
//
//   node dashboard_browser.js <page url> <agent hostname> <task id>
//                             <control file> <screenshot dir>
//
// 1. Opens the page; waits until the agents table lists <agent hostname>
//    and the tasks table shows <task id> TASK_RUNNING with a sandbox link.
//    Prints "@@ READY ...".
// 2. Waits until the timeline shows that task's TASK_FINISHED (the test
//    finishes it after READY). Prints "@@ FINISHED_SEEN ...", saves
//    dashboard.png.
// 3. Waits for <control file> to say "killed <host:port>" (the test
//    SIGKILLs the leader), then until the page names another leader, shows
//    the killed master unreachable and the timeline shows an
//    agent_reregistered event after the failover. Prints "@@ FOLLOWED ...",
//    saves dashboard-failover.png.
// Prints "@@ PASS" and exits 0; "@@ FAIL <why>" and exits 1 on a failed
// check; exits 2 when the whole run takes longer than 90 s. Uncaught page
// errors and console errors fail the run.

'use strict';

const fs = require('fs');
const path = require('path');
const {chromium} = require('playwright-core');

const [pageUrl, agentHostname, taskId, controlFile, screenshotDir] = process.argv.slice(2);
if (!screenshotDir) {
  console.error('usage: dashboard_browser.js <url> <agent hostname> <task id> <control file> <screenshot dir>');
  process.exit(1);
}

const STEP_TIMEOUT_MS = 30000;
let browser = null;

function say(line) { console.log('@@ ' + line); }

async function fail(why, page) {
  if (page) {
    // What the page showed, before saying FAIL (the test stops waiting then).
    try {
      console.log('page at failure:\n' + (await page.locator('body').innerText({timeout: 5000})).slice(0, 6000));
      await page.screenshot({path: path.join(screenshotDir, 'dashboard-failure.png'), fullPage: true, timeout: 10000});
    } catch (e) { console.log('no page dump: ' + e.message); }
  }
  say('FAIL ' + why);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

const overall = setTimeout(async () => {
  say('TIMEOUT after 90 s');
  if (browser) await browser.close().catch(() => {});
  process.exit(2);
}, 90000);

async function waitForControl(prefix) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    try {
      const text = fs.readFileSync(controlFile, 'utf8').trim();
      if (text.startsWith(prefix)) return text.slice(prefix.length).trim();
    } catch (e) { /* not written yet */ }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return null;
}

(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage({viewport: {width: 1440, height: 1000}});
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    console.log('console ' + m.type() + ': ' + m.text());
    // A failed request is how a dead master shows up; everything else is
    // the page's own fault.
    if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED|net::ERR_/.test(m.text())) {
      problems.push('console error: ' + m.text());
    }
  });
  page.setDefaultTimeout(STEP_TIMEOUT_MS);

  const response = await page.goto(pageUrl);
  if (!response || response.status() !== 200) await fail('GET ' + pageUrl + ' answered ' + (response && response.status()), page);

  // ---- 1. the agent and the running task ----
  const agentRow = page.locator('#agents tr[data-agent]', {hasText: agentHostname});
  await agentRow.waitFor().catch(() => fail('no agent ' + agentHostname + ' in the agents table', page));
  const taskRow = page.locator(`#tasks tr[data-task="${taskId}"][data-state="TASK_RUNNING"]`);
  await taskRow.waitFor().catch(() => fail('no ' + taskId + ' TASK_RUNNING in the tasks table', page));
  // Every master of the cluster listed with its role, one leading.
  await page.waitForFunction(() => {
    const roles = [...document.querySelectorAll('#masters tr[data-master]')].map((r) => r.dataset.role);
    return roles.length === 3 && roles.filter((r) => r === 'leading').length === 1 &&
        roles.every((r) => r === 'leading' || r === 'standby');
  }).catch(() => fail('the masters table does not show three masters, one leading', page));
  const sandbox = await taskRow.locator('a', {hasText: 'sandbox'}).getAttribute('href');
  const agentText = (await agentRow.innerText()).replace(/\s+/g, ' ');
  const leader = await page.locator('#leader').innerText();
  const masters = await page.locator('#masters tr[data-master]').evaluateAll(
      (rows) => rows.map((r) => r.dataset.master + '=' + r.dataset.role).join(','));
  say('READY agent=' + agentText);
  say('TASK ' + taskId + ' sandbox=' + sandbox);
  say('MASTERS ' + masters + ' ' + leader);

  // ---- 2. the timeline shows the task finish ----
  const finished = page.locator(
      '#timeline li[data-type="task_status_updated"][data-state="TASK_FINISHED"]', {hasText: taskId});
  await finished.waitFor().catch(() => fail('no TASK_FINISHED of ' + taskId + ' in the timeline', page));
  // The tasks table follows on its next poll.
  await page.locator(`#tasks tr[data-task="${taskId}"][data-state="TASK_FINISHED"]`).waitFor()
      .catch(() => fail(taskId + ' not TASK_FINISHED in the tasks table', page));
  say('FINISHED_SEEN ' + (await finished.innerText()).replace(/\s+/g, ' '));
  const timelineTypes = await page.locator('#timeline li[data-type]').evaluateAll(
      (items) => items.map((li) => li.dataset.type).reverse().join(','));
  say('TIMELINE ' + timelineTypes);
  await page.screenshot({path: path.join(screenshotDir, 'dashboard.png'), fullPage: true});
  say('SCREENSHOT dashboard.png');
  say('WAITING for the leader to be killed');

  // ---- 3. failover: the page follows the new leader ----
  const killed = await waitForControl('killed ');
  if (!killed) await fail('the test never said which master it killed', page);
  const before = await page.locator('#timeline li[data-type]').count();
  await page.waitForFunction((dead) => {
    const leader = document.getElementById('leader').textContent;
    const row = document.querySelector(`#masters tr[data-master="${dead}"]`);
    return !leader.includes(dead) && !leader.endsWith('unknown') &&
        row && row.dataset.role === 'unreachable';
  }, killed).catch(() => fail('the page did not follow a new leader after ' + killed + ' died', page));
  const reregistered = page.locator('#timeline li[data-type="agent_reregistered"]', {hasText: agentHostname});
  await reregistered.waitFor().catch(() => fail('no agent_reregistered in the timeline after the failover', page));
  const after = await page.locator('#timeline li[data-type]').count();
  say('FOLLOWED ' + (await page.locator('#leader').innerText()) + ' killed=' + killed +
      ' events_before=' + before + ' events_after=' + after);
  // The agents and tasks are still shown, now from the new leader.
  await agentRow.waitFor().catch(() => fail('agent gone from the table after the failover', page));
  await page.screenshot({path: path.join(screenshotDir, 'dashboard-failover.png'), fullPage: true});
  say('SCREENSHOT dashboard-failover.png');

  if (problems.length) await fail(problems.join(' | '), page);
  say('PASS');
  clearTimeout(overall);
  await browser.close();
  process.exit(0);
})().catch((e) => fail('exception: ' + (e && e.stack || e)));
