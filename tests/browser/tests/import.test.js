// Spreadsheet import by the system administrator: the dry-run report of
// rejected rows, the import itself, the refreshed organization tree and the
// CSV template.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { apiSession, login, setup } from '../lib/harness.js';

const DISTRICT_PATH = '江南省委/青川市委/青川市东城区委';
const NEW_BRANCH = '东城区机关第三党支部';
const HEADERS = '所在组织,姓名,性别,民族,出生日期,学历,入党日期,党员状态,联系电话,身份证号';

/**
 * Returns a valid identity number (GB 11643) for a birth date and a
 * three-digit sequence, so only the rows meant to fail are rejected.
 */
function idNumber(birthDate, sequence) {
  const body = `110101${birthDate.replaceAll('-', '')}${String(sequence).padStart(3, '0')}`;
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = [...body].reduce((total, digit, i) => total + Number(digit) * weights[i], 0);
  return body + '10X98765432'[sum % 11];
}

/** A roster with two good rows and four bad ones; the header is row 1. */
function roster() {
  const branch = `${DISTRICT_PATH}/${NEW_BRANCH}`;
  const rows = [
    HEADERS,
    `${branch},林晓雯,女,汉族,1990-05-01,大学本科,2015-07-01,正式党员,13800000001,${idNumber('1990-05-01', 11)}`,
    `${branch},周立强,未知,汉族,1988-02-03,大学本科,,正式党员,13800000002,${idNumber('1988-02-03', 13)}`,
    `${branch},吴建刚,男,回族,1985-11-20,硕士研究生,,预备党员,13800000003,${idNumber('1985-11-20', 15)}`,
    `${branch},郑小红,女,汉族,1992-01-01,大专,,正式党员,13800000004,110101199201010000`,
    `江南省委/不存在的单位,王五一,男,汉族,1991-03-03,大学本科,,正式党员,13800000005,${idNumber('1991-03-03', 17)}`,
    `${branch},赵六平,男,汉族,1990/01/01,大学本科,,正式党员,13800000006,${idNumber('1990-01-01', 19)}`,
  ];
  return Buffer.from(`\uFEFF${rows.join('\r\n')}\r\n`);
}

function treeItem(page, name) {
  return page.getByRole('treeitem', { name: new RegExp(`^${name} `) });
}

test('import reports bad rows and adds good', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'sysadmin');
  await page.waitForURL(/\/org\/\d+$/);
  await treeItem(page, '江南省委').waitFor();
  assert.equal(await treeItem(page, NEW_BRANCH).count(), 0);

  await page.getByRole('link', { name: '从表格导入' }).click();
  await page.waitForURL(/\/org\/import$/);
  await page.getByRole('heading', { level: 1, name: '从表格导入组织和党员' }).waitFor();

  // Choosing the file runs the dry run: nothing is stored yet.
  await page.locator('input[type="file"]').setInputFiles({ name: '花名册.csv', mimeType: 'text/csv', buffer: roster() });
  const report = page.getByTestId('import-report');
  await report.getByRole('heading', { name: '检查结果：花名册.csv' }).waitFor();
  assert.equal(await report.getByTestId('import-rows').textContent(), '6');
  assert.equal(await report.getByTestId('import-ready').textContent(), '2');
  assert.equal(await report.getByTestId('import-orgs').textContent(), '1');
  assert.equal(await report.getByTestId('import-rejected-count').textContent(), '4');
  const rejected = report.getByTestId('rejected');
  const expected = [
    ['3', '性别', /未知/],
    ['5', '身份证号', /身份证号码无效/],
    ['6', '所在组织', /不存在的单位/],
    ['7', '出生日期', /1990\/01\/01/],
  ];
  assert.equal(await rejected.locator('tbody tr').count(), expected.length);
  for (const [row, column, reason] of expected) {
    const cells = await rejected.locator(`tbody tr[data-row="${row}"]`).locator('th, td').allTextContents();
    assert.equal(cells[0], row);
    assert.equal(cells[1], column, `column of row ${row}`);
    assert.match(cells[2], reason, `reason of row ${row}`);
  }
  const call = await apiSession(server.url, 'sysadmin');
  const before = await call('GET', '/api/orgs');
  assert.equal(before.some((org) => org.name === NEW_BRANCH), false, 'the dry run created no organization');

  // The import stores the two good rows and the tree shows the new branch.
  await report.getByRole('button', { name: '导入 2 行' }).click();
  await report.getByRole('heading', { name: '导入结果：花名册.csv' }).waitFor();
  assert.equal(await report.getByTestId('import-imported').textContent(), '2');
  assert.equal(await report.getByTestId('import-rejected-count').textContent(), '4');
  await report.getByText('已导入 2 名党员，新建 1 个组织').waitFor();
  await treeItem(page, NEW_BRANCH).waitFor();
  assert.equal(await page.url().endsWith('/org/import'), true);

  await report.getByTestId('created-orgs').getByRole('link', { name: NEW_BRANCH }).click();
  await page.getByRole('heading', { level: 1, name: NEW_BRANCH }).waitFor();
  assert.equal(await treeItem(page, NEW_BRANCH).getAttribute('aria-selected'), 'true');
  const members = page.getByTestId('members');
  await members.getByRole('link', { name: '林晓雯', exact: true }).waitFor();
  await members.getByRole('link', { name: '吴建刚', exact: true }).waitFor();
  assert.equal(await members.getByRole('link', { name: '赵六平', exact: true }).count(), 0);
  assert.equal(await members.getByRole('link', { name: '郑小红', exact: true }).count(), 0);
  assert.deepEqual(pageErrors, []);
});

test('import rejects unsupported file type', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'sysadmin');
  await page.waitForURL(/\/org\/\d+$/);
  await page.goto(`${server.url}/org/import`);
  await page.locator('input[type="file"]').setInputFiles({ name: '花名册.xls', mimeType: 'application/vnd.ms-excel', buffer: Buffer.from('old') });
  await page.getByRole('alert').filter({ hasText: '不支持的文件类型：花名册.xls' }).waitFor();

  // A CSV without a required column is rejected as a whole by the server.
  await page.locator('input[type="file"]').setInputFiles({ name: '缺列.csv', mimeType: 'text/csv', buffer: Buffer.from('姓名,性别\n张三,男\n') });
  await page.getByRole('alert').filter({ hasText: '缺少列：所在组织' }).waitFor();
  assert.equal(await page.getByTestId('import-report').count(), 0);
  assert.deepEqual(pageErrors, []);
});

test('import template downloads as csv', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'sysadmin');
  await page.waitForURL(/\/org\/\d+$/);
  await page.goto(`${server.url}/org/import`);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: '下载 CSV 模板' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), '党员导入模板.csv');
  const bytes = await readFile(await download.path());
  assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'the file starts with a UTF-8 byte order mark');
  assert.equal(bytes.subarray(3).toString('utf8'), `${HEADERS}\r\n`);
  assert.deepEqual(pageErrors, []);
});

test('import hidden from branch secretary', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'zhibu');
  await page.getByRole('heading', { level: 1, name: '东城区机关第一党支部' }).waitFor();
  assert.equal(await page.getByRole('link', { name: '从表格导入' }).count(), 0);
  await page.goto(`${server.url}/org/import`);
  await page.getByText('只有系统管理员可以导入组织和党员。').waitFor();
  assert.equal(await page.locator('input[type="file"]').count(), 0);
  assert.deepEqual(pageErrors, []);
});
