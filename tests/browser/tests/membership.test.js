// Member development journey with the demo branch 东城区机关第一党支部:
// the secretary opens the pipeline board, tries to make an activist of
// seven months a development candidate today, sees the step rejected with
// the date it opens, and records a thought report instead.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiSession, login, setup } from '../lib/harness.js';

/** Today in China Standard Time, the server's calendar day, as YYYY-MM-DD. */
function chinaToday() {
  return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);
}

/** One year after a YYYY-MM-DD date, clamped to the month's last day. */
function oneYearAfter(day) {
  const [year, month, date] = day.split('-').map(Number);
  const last = new Date(Date.UTC(year + 1, month, 0)).getUTCDate();
  return { year: year + 1, month, date: Math.min(date, last) };
}

test('too early candidate step shows opening date', async (t) => {
  const { server, page, pageErrors } = await setup(t);

  const call = await apiSession(server.url, 'zhibu');
  const orgs = await call('GET', '/api/orgs');
  const branch = orgs.find((org) => org.name === '东城区机关第一党支部');
  const board = await call('GET', `/api/membership/orgs/${branch.id}/board`);
  const activists = board.columns.find((column) => column.stage === 'activist').people;
  const person = activists.find((entry) => entry.name === '赵明轩');
  assert.ok(person, 'the demo pipeline has the activist 赵明轩');
  const detail = await call('GET', `/api/membership/people/${person.id}`);
  const activistOn = detail.steps.find((record) => record.step === 'activist').taken_on;
  const opens = oneYearAfter(activistOn);

  await login(page, server.url, 'zhibu');
  await page.getByRole('link', { name: '党员' }).click();
  await page.waitForURL(/\/membership$/);
  const column = page.getByRole('region', { name: '入党积极分子' });
  await column.getByRole('link', { name: '赵明轩' }).click();
  await page.waitForURL(new RegExp(`/membership/people/${person.id}$`));
  await page.getByTestId('stage').filter({ hasText: '入党积极分子' }).waitFor();

  const form = page.getByRole('form', { name: '登记步骤' });
  await form.getByLabel('步骤', { exact: true }).selectOption('candidate');
  await form.getByLabel('日期', { exact: true }).fill(chinaToday());
  await form.getByRole('button', { name: '登记' }).click();
  const error = page.getByTestId('step-error');
  await error.waitFor({ state: 'visible' });
  const message = await error.textContent();
  assert.ok(message.includes(`${opens.year}年${opens.month}月${opens.date}日`), message);
  assert.equal(await page.getByTestId('stage').textContent(), '入党积极分子');

  await form.getByLabel('步骤', { exact: true }).selectOption('thought_report');
  await form.getByLabel('日期', { exact: true }).fill(chinaToday());
  await form.getByRole('button', { name: '登记' }).click();
  const timeline = page.getByTestId('timeline');
  await timeline.locator('li', { hasText: '思想汇报' }).nth(1).waitFor();
  await page.getByRole('status').filter({ hasText: '已登记“思想汇报”' }).waitFor({ state: 'attached' });

  assert.deepEqual(pageErrors, []);
});
