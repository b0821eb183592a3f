// Editing and cancelling a scheduled meeting from its page, and the
// meeting archive of one organization and year with the JSON export of a
// record and the excusals from attendance.
//
// Demo accounts of 云溪市委机关党支部: shengwei (胡丽娟, its secretary and
// host of the demo meetings) and dy028 (孙军). The branch held three demo
// meetings in the past month and has 十二月支委会 scheduled next week.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiSession, login, setup } from '../lib/harness.js';

const BRANCH = '云溪市委机关党支部';

test('meeting edited then cancelled', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  const api = await apiSession(server.url, 'shengwei');
  const meeting = (await api('GET', '/api/meetings')).items.find((item) => item.title === '十二月支委会');
  await login(page, server.url, 'shengwei');
  await page.getByRole('link', { name: '会议', exact: true }).waitFor();
  await page.goto(`${server.url}/meetings/${meeting.id}`);
  await page.getByRole('heading', { level: 1, name: '十二月支委会' }).waitFor();

  await page.getByRole('link', { name: '修改会议' }).click();
  await page.waitForURL(new RegExp(`/meetings/${meeting.id}/edit$`));
  const form = page.locator('form.meeting-form');
  const title = form.getByLabel('会议名称');
  await title.waitFor();
  assert.equal(await title.inputValue(), '十二月支委会');
  assert.equal(await form.getByLabel('议程 1', { exact: true }).inputValue(), '总结全年工作');
  assert.equal(await form.getByLabel('组织', { exact: true }).isDisabled(), true);
  await title.fill('十二月支委会（调整）');
  await form.getByLabel('地点').fill('机关二楼会议室');
  await form.getByRole('button', { name: '保存修改并通知参会人' }).click();
  await page.waitForURL(new RegExp(`/meetings/${meeting.id}$`));
  await page.getByRole('heading', { level: 1, name: '十二月支委会（调整）' }).waitFor();
  await page.getByText('机关二楼会议室').waitFor();
  assert.equal((await api('GET', `/api/meetings/${meeting.id}`)).meeting.revision, meeting.revision + 1);

  // An empty reason is rejected next to its field, and the dialog stays.
  await page.getByRole('button', { name: '取消会议' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: '取消会议' }).click();
  await dialog.locator('.field-error').waitFor();
  await dialog.getByLabel('取消原因').fill('上级临时安排集中学习');
  await dialog.getByRole('button', { name: '取消会议' }).click();
  await page.getByTestId('meeting-status').getByText('已取消').waitFor();
  await page.getByText('上级临时安排集中学习').waitFor();
  assert.equal(await page.getByRole('link', { name: '进入会议室' }).count(), 0, 'a cancelled meeting has no room link');
  assert.equal(await page.getByRole('link', { name: '修改会议' }).count(), 0, 'a cancelled meeting cannot be edited');
  assert.deepEqual(pageErrors, []);
});

test('archive export and excusals', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  const api = await apiSession(server.url, 'shengwei');
  const held = (await api('GET', '/api/meetings')).items.find((item) => item.title === '第四季度党员大会');
  // The archive's year is the China Standard Time year of the start.
  const year = new Date(held.starts_at + 8 * 3600 * 1000).getUTCFullYear();

  await login(page, server.url, 'shengwei');
  await page.getByRole('link', { name: '会议', exact: true }).click();
  await page.getByRole('link', { name: '会议档案' }).click();
  await page.waitForURL(/\/meetings\/archive/);
  await page.getByLabel('组织', { exact: true }).selectOption({ label: BRANCH });
  await page.getByLabel('年度').selectOption(String(year));
  const row = page.getByTestId('archive-meeting').filter({ hasText: '第四季度党员大会' });
  await row.waitFor();
  assert.match(page.url(), new RegExp(`year=${year}`));
  const counts = await page.getByTestId('archive-counts').textContent();
  assert.match(counts, /1党员大会/);
  assert.match(counts, /1党课/);

  const href = await row.getByRole('link', { name: '导出“第四季度党员大会”的记录（JSON）' }).getAttribute('href');
  const record = await page.evaluate((url) => fetch(url).then((response) => response.json()), href);
  assert.equal(record.meeting.title, '第四季度党员大会');
  assert.ok(record.participants.length > 0, 'the record lists the roll');
  assert.ok(record.votes.length > 0, 'the record lists the votes');

  // An excusal recorded for 孙军, then revoked.
  await page.getByLabel('党员', { exact: true }).selectOption({ label: '孙军' });
  await page.getByRole('button', { name: '记录免于出席' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('原因').fill('长期患病');
  await dialog.getByLabel('结束日期').fill(`${year + 1}-06-30`);
  await dialog.getByRole('button', { name: '记录免于出席' }).click();
  const excusal = page.getByTestId('excusal').filter({ hasText: '长期患病' });
  await excusal.waitFor();
  await excusal.getByText('胡丽娟 记录于').waitFor();
  await excusal.getByRole('button', { name: '撤销' }).click();
  await page.getByRole('dialog').getByRole('button', { name: '撤销' }).click();
  await excusal.getByText(/已于 .* 撤销/).waitFor();
  assert.equal(await excusal.getByRole('button', { name: '撤销' }).count(), 0);
  assert.deepEqual(pageErrors, []);
});
