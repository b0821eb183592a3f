// Member development journey with the demo branch 东城区机关第一党支部:
// the secretary opens the pipeline board, tries to make an activist of
// seven months a development candidate today, sees the step rejected with
// the date it opens, and records a thought report instead. The secretary
// also imports a pipeline sheet, first with a rejected row. A host officer
// forms and dissolves a temporary branch of mobile members, and a member
// who is no officer gets only their own record.

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

/** Builds a valid 18-character identity number for a test person from a serial. */
function idNumber(serial) {
  const body = `1101051995060${String(serial).padStart(4, '0')}`;
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = [...body].reduce((total, digit, index) => total + Number(digit) * weights[index], 0);
  return body + '10X98765432'[sum % 11];
}

const IMPORT_HEADER = '姓名,性别,民族,出生日期,学历,联系电话,身份证号,申请入党日期,谈话日期,确定积极分子日期';

test('pipeline import rejects a bad row then lands', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'zhibu');
  await page.getByRole('link', { name: '党员' }).click();
  await page.waitForURL(/\/membership$/);
  await page.getByRole('button', { name: '批量导入' }).click();
  const card = page.getByRole('region', { name: '批量导入发展党员名单' });
  await card.getByRole('link', { name: '下载模板（XLSX）' }).waitFor();

  const good = [
    `导入测试甲,女,汉族,1996-04-02,大学本科,13800002222,${idNumber(1)},2024-02-01,,`,
    `导入测试乙,男,汉族,1995-08-15,研究生,13800003333,${idNumber(2)},2024-02-01,2024-02-20,2024-05-06`,
  ];
  // The activist date comes before the talk.
  const bad = `导入测试丙,男,汉族,1995-08-15,研究生,13800004444,${idNumber(3)},2024-02-01,2024-02-20,2024-02-10`;
  const picker = card.locator('input[type="file"]');
  const sheet = (rows) => Buffer.from(`${IMPORT_HEADER}\n${rows.join('\n')}\n`);
  await picker.setInputFiles({ name: '发展党员.csv', mimeType: 'text/csv', buffer: sheet([...good, bad]) });
  const rejected = page.getByTestId('import-rejected');
  await rejected.waitFor();
  const row = rejected.locator('tr[data-row="4"]');
  assert.equal(await row.locator('td').first().textContent(), '确定积极分子日期');
  assert.match(await row.locator('td').nth(1).textContent(), /2024年2月20日/);
  await card.getByRole('alert').filter({ hasText: '整个文件未导入' }).waitFor();
  const activists = page.getByRole('region', { name: '入党积极分子' });
  assert.equal(await activists.getByRole('link', { name: '导入测试乙' }).count(), 0);

  await picker.setInputFiles({ name: '发展党员.csv', mimeType: 'text/csv', buffer: sheet(good) });
  await card.getByRole('status').filter({ hasText: '已导入 2 人' }).waitFor();
  await activists.getByRole('link', { name: '导入测试乙' }).waitFor();
  await page.getByRole('region', { name: '入党申请人' }).getByRole('link', { name: '导入测试甲' }).waitFor();
  assert.deepEqual(pageErrors, []);
});

test('plain member sees only own record', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'dangyuan');
  await page.getByRole('link', { name: '党员' }).click();
  await page.waitForURL(/\/membership$/);
  await page.getByTestId('my-dues').waitFor();
  await page.getByTestId('my-timeline').waitFor();
  const tabs = page.getByRole('navigation', { name: '党员工作分区' });
  assert.deepEqual(await tabs.getByRole('link').allTextContents(), ['我的党员信息']);
  assert.equal(await page.getByRole('button', { name: '批量导入' }).count(), 0);

  await page.goto(`${server.url}/membership/dues`);
  await page.getByTestId('my-dues').waitFor();
  assert.equal(await page.getByTestId('dues').count(), 0);
  assert.deepEqual(pageErrors, []);
});

test('host forms and dissolves a temporary branch', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  const call = await apiSession(server.url, 'zhibu');
  const orgs = await call('GET', '/api/orgs');
  const branch = orgs.find((org) => org.name === '东城区机关第一党支部');
  const hostCall = await apiSession(server.url, 'qingchuan');
  const hostOrg = (await hostCall('GET', '/api/orgs')).find((org) => org.name === '和平街道第一党支部');
  const members = await call('GET', `/api/orgs/${branch.id}/members?limit=200`);
  const mobile = members.items.filter((member) => member.roles.length === 0).slice(0, 3);
  for (const member of mobile) {
    await call('POST', '/api/membership/mobile', {
      member_id: member.id, host_org_id: hostOrg.id, starts_on: chinaToday(), reason: '驻点帮扶',
    });
  }

  await login(page, server.url, 'qingchuan');
  await page.getByRole('link', { name: '党员' }).click();
  await page.getByRole('link', { name: '组织关系转接' }).click();
  await page.waitForURL(/\/membership\/transfers$/);
  await page.getByLabel('组织', { exact: true }).selectOption({ label: '和平街道第一党支部' });
  const form = page.getByRole('form', { name: '成立临时党支部' });
  await form.getByLabel('名称').fill('和平街道驻点临时党支部');
  for (const member of mobile) await form.getByRole("checkbox", { name: new RegExp(`${member.name}（`) }).check();
  await form.getByLabel('负责人').selectOption({ label: mobile[0].name });
  const ends = new Date(Date.now() + 90 * 86400 * 1000).toISOString().slice(0, 10);
  await form.getByLabel('撤销日期').fill(ends);
  await form.getByRole('button', { name: '成立临时党支部' }).click();

  const list = page.getByTestId('temporary-branches');
  const line = list.locator('li', { hasText: '和平街道驻点临时党支部' });
  await line.getByText('运行中').waitFor();
  assert.match(await line.textContent(), new RegExp(`负责人${mobile[0].name}，3 人`));
  await line.getByRole('button', { name: '撤销' }).click();
  await line.getByText('已撤销').waitFor();
  assert.deepEqual(pageErrors, []);
});
