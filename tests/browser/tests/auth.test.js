// Login, language switch, password change, administrator pages.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEMO_PASSWORD, apiSession, login, setup } from '../lib/harness.js';

test('wrong password shows error', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'zhibu', 'not-the-password');
  const alert = page.locator('form [role="alert"]');
  await alert.filter({ hasText: '用户名或密码错误' }).waitFor();
  assert.equal(await alert.isVisible(), true);
  assert.match(page.url(), /\/login$/);
  assert.equal(await page.getByLabel('用户名').inputValue(), 'zhibu');
  assert.equal(await page.getByLabel(/^密码$/).inputValue(), '');
  assert.deepEqual(pageErrors, []);
});

test('english switch changes interface', async (t) => {
  const { server, page, context, pageErrors } = await setup(t);
  await page.goto(`${server.url}/login`);
  await page.getByRole('heading', { name: '登录党务' }).waitFor();
  await page.getByRole('button', { name: '切换为英文界面' }).click();
  await page.getByRole('heading', { name: 'Log in to Dangwu' }).waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');
  const cookies = await context.cookies(server.url);
  assert.equal(cookies.find((cookie) => cookie.name === 'lang')?.value, 'en');

  // The server returns error messages in the language of the cookie.
  await login(page, server.url, 'zhibu', 'not-the-password');
  await page.locator('form [role="alert"]').filter({ hasText: 'wrong username or password' }).waitFor();

  await login(page, server.url, 'zhibu');
  const nav = page.getByRole('navigation', { name: 'Main navigation' });
  for (const label of ['Meetings', 'Approvals', 'Notices', 'Learning', 'Organization']) {
    await nav.getByRole('link', { name: label }).waitFor();
  }
  await page.getByRole('heading', { name: 'Officers' }).waitFor();
  await page.getByRole('columnheader', { name: 'Joined' }).waitFor();
  assert.match(await page.getByTestId('members').locator('tbody tr td').nth(3).textContent(), /^\d{1,2} [A-Z][a-z]{2} \d{4}$/);

  // And back to Chinese without a reload.
  await page.getByRole('button', { name: 'Switch to Chinese' }).click();
  await page.getByRole('navigation', { name: '主导航' }).getByRole('link', { name: '组织' }).waitFor();
  assert.match(await page.getByTestId('members').locator('tbody tr td').nth(3).textContent(), /^\d{4}年\d{1,2}月\d{1,2}日$/);
  assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
  assert.deepEqual(pageErrors, []);
});

test('main pages and to-do count', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'dangyuan');
  await page.getByRole('heading', { level: 1, name: '东城区机关第一党支部' }).waitFor();
  assert.equal(await page.getByTestId('todo-count').textContent(), '0');
  await page.getByRole('link', { name: '会议', exact: true }).click();
  await page.waitForURL(/\/meetings$/);
  await page.getByRole('heading', { level: 1, name: '会议' }).waitFor();
  await page.getByRole('link', { name: '学习', exact: true }).click();
  await page.waitForURL(/\/learning$/);
  await page.getByRole('heading', { level: 2, name: '课程' }).waitFor();
  assert.equal(await page.getByRole('link', { name: '学习', exact: true }).getAttribute('aria-current'), 'page');
  await page.getByRole('link', { name: '审批', exact: true }).click();
  await page.waitForURL(/\/approvals$/);
  await page.getByText('没有待办的公文').waitFor();
  await page.goBack();
  await page.getByRole('heading', { level: 2, name: '课程' }).waitFor();
  assert.deepEqual(pageErrors, []);
});

test('new account must change password', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'sysadmin');
  await page.getByRole('link', { name: '账号', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: '账号管理' }).waitFor();
  await page.getByTestId('accounts').getByRole('cell', { name: 'zhibu', exact: true }).waitFor();

  await page.getByRole('button', { name: '+ 新建账号' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('用户名', { exact: true }).fill('zhang.wei');
  await dialog.getByLabel('姓名', { exact: true }).fill('张伟');
  await dialog.getByLabel('初始密码').fill('Start-2026-x');
  await dialog.getByRole('button', { name: '新建' }).click();
  await dialog.waitFor({ state: 'detached' });
  const row = page.getByTestId('accounts').locator('tr', { hasText: 'zhang.wei' });
  await row.waitFor();

  // A taken username is reported next to the username field.
  await page.getByRole('button', { name: '+ 新建账号' }).click();
  await dialog.getByLabel('用户名', { exact: true }).fill('zhang.wei');
  await dialog.getByLabel('姓名', { exact: true }).fill('张伟');
  await dialog.getByRole('button', { name: '新建' }).click();
  await dialog.locator('.field-error').filter({ hasText: '用户名已被使用' }).waitFor();
  assert.equal(await dialog.getByLabel('用户名', { exact: true }).getAttribute('aria-invalid'), 'true');
  await dialog.getByRole('button', { name: '取消' }).click();

  await page.getByRole('button', { name: /账号菜单/ }).click();
  await page.getByRole('menuitem', { name: '退出登录' }).click();
  await page.getByRole('heading', { name: '登录党务' }).waitFor();

  await login(page, server.url, 'zhang.wei', 'Start-2026-x');
  await page.getByRole('heading', { name: '首次登录请修改密码' }).waitFor();
  await page.getByLabel('当前密码').fill('Start-2026-x');
  await page.getByLabel('新密码', { exact: true }).fill('Mine-2026-secret');
  await page.getByLabel('确认新密码').fill('Mine-2026-other');
  await page.getByRole('button', { name: '修改密码' }).click();
  await page.locator('.field-error').filter({ hasText: '两次输入的新密码不一致' }).waitFor();
  assert.equal(await page.getByLabel('确认新密码').getAttribute('aria-invalid'), 'true');
  await page.getByLabel('确认新密码').fill('Mine-2026-secret');
  await page.getByRole('button', { name: '修改密码' }).click();
  await page.locator('.topbar').waitFor();
  await page.getByRole('navigation', { name: '主导航' }).waitFor();

  // The new password works and the flag is gone.
  const response = await page.request.post(`${server.url}/api/auth/login`, {
    data: { username: 'zhang.wei', password: 'Mine-2026-secret' },
  });
  assert.equal(response.status(), 200);
  assert.equal((await response.json()).account.must_change_password, false);
  assert.deepEqual(pageErrors, []);
});

test('security admin sets clearance', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'secadmin');
  await page.getByRole('link', { name: '账号', exact: true }).click();
  const select = page.getByLabel('密级 zhibu');
  await select.selectOption('confidential');
  await page.getByRole('status').filter({ hasText: '已将zhibu的密级设为秘密' }).waitFor({ state: 'attached' });
  assert.equal(await page.getByRole('button', { name: '+ 新建账号' }).count(), 0);

  const response = await page.request.post(`${server.url}/api/auth/login`, {
    data: { username: 'zhibu', password: DEMO_PASSWORD },
  });
  assert.equal((await response.json()).account.clearance, 'confidential');
  assert.deepEqual(pageErrors, []);
});

test('auditor lists and verifies trail', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'auditor');
  await page.waitForURL(/\/audit$/);
  const nav = page.getByRole('navigation', { name: '主导航' });
  assert.deepEqual(await nav.getByRole('link').allTextContents(), ['审计']);
  const table = page.getByTestId('audit');
  await table.getByRole('cell', { name: '登录', exact: true }).first().waitFor();
  await page.getByRole('button', { name: '校验审计链' }).click();
  await page.getByTestId('verify-result').filter({ hasText: /审计链完整：共 \d+ 条记录/ }).waitFor();
  assert.deepEqual(pageErrors, []);
});

test('ended session returns to login', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'dangyuan');
  await page.getByRole('heading', { level: 1, name: '东城区机关第一党支部' }).waitFor();

  // The administrator disables the account, which ends its sessions.
  const call = await apiSession(server.url, 'sysadmin');
  const accounts = await call('GET', '/api/accounts?q=dangyuan');
  const account = accounts.items.find((entry) => entry.username === 'dangyuan');
  await call('PATCH', `/api/accounts/${account.id}`, { disabled: true });

  await page.getByPlaceholder('按姓名搜索').fill('张');
  await page.getByRole('heading', { name: '登录党务' }).waitFor();
  await page.getByRole('alert').filter({ hasText: '登录已过期，请重新登录' }).waitFor({ state: 'attached' });
  assert.match(page.url(), /\/login$/);
  assert.deepEqual(pageErrors, []);
});

/** Appends the ISO 7064 MOD 11-2 check character of a resident ID number. */
function withCheckDigit(first17) {
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = [...first17].reduce((total, digit, index) => total + Number(digit) * weights[index], 0);
  return first17 + '10X98765432'[sum % 11];
}

test('account list searches on server', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  const call = await apiSession(server.url, 'sysadmin');
  const { items: [linked] } = await call('GET', '/api/accounts?q=dangyuan');
  assert.ok(linked.member_name, 'dangyuan is linked to a member');
  // Every demo member has an account, so the branch secretary adds one.
  const secretary = await apiSession(server.url, 'zhibu');
  const branch = (await secretary('GET', '/api/orgs')).find((org) => org.name === '东城区机关第一党支部');
  const free = await secretary('POST', '/api/members', {
    org_id: branch.id,
    name: '欧阳明远',
    gender: 'male',
    ethnicity: '汉族',
    birth_date: '1990-03-07',
    education: '大学本科',
    joined_on: '2015-07-01',
    status: 'full',
    phone: '13800000000',
    id_number: withCheckDigit('11010119900307123'),
  });

  await login(page, server.url, 'sysadmin');
  await page.getByRole('link', { name: '账号', exact: true }).click();
  const table = page.getByTestId('accounts');
  await table.getByRole('cell', { name: 'zhibu', exact: true }).waitFor();

  // The search box queries the server, which also matches member names.
  await page.getByPlaceholder('筛选用户名或姓名').fill(linked.member_name);
  const row = table.locator('tr', { hasText: 'dangyuan' });
  await row.waitFor();
  assert.match(await row.textContent(), new RegExp(`${linked.member_name}${linked.org_name}`));
  await table.getByRole('cell', { name: 'zhibu', exact: true }).waitFor({ state: 'detached' });

  // The member picker of a new account offers only members without one.
  await page.getByRole('button', { name: '+ 新建账号' }).click();
  const dialog = page.getByRole('dialog');
  const search = dialog.getByPlaceholder('搜索党员姓名');
  await search.fill(linked.member_name);
  await dialog.getByText('没有找到匹配的党员').waitFor();
  await search.fill(free.name);
  await dialog.getByRole('radio', { name: new RegExp(free.name) }).first().waitFor();
  assert.deepEqual(pageErrors, []);
});

test('account status filter asks the server', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  const call = await apiSession(server.url, 'sysadmin');
  const { total } = await call('GET', '/api/accounts?limit=1');
  // The newest account sorts last, past the first page of 50 rows, so only
  // a filter on the server can list it.
  assert.ok(total > 50, `the demo has more than one page of accounts, got ${total}`);
  const { items: [last] } = await call('GET', `/api/accounts?limit=1&offset=${total - 1}`);
  await call('PATCH', `/api/accounts/${last.id}`, { disabled: true });

  await login(page, server.url, 'sysadmin');
  await page.getByRole('link', { name: '账号', exact: true }).click();
  const table = page.getByTestId('accounts');
  await table.getByRole('cell', { name: 'zhibu', exact: true }).waitFor();
  assert.equal(await table.getByRole('cell', { name: last.username, exact: true }).count(), 0);

  await page.getByLabel('账号状态').selectOption({ label: '已停用' });
  await table.getByRole('cell', { name: last.username, exact: true }).waitFor();
  assert.equal(await table.locator('tbody tr').count(), 1);

  await page.getByLabel('账号状态').selectOption({ label: '正常' });
  await table.getByRole('cell', { name: 'zhibu', exact: true }).waitFor();
  assert.equal(await table.getByRole('cell', { name: last.username, exact: true }).count(), 0);
  assert.deepEqual(pageErrors, []);
});
