// Organization page journeys with the demo province.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiSession, login, setup } from '../lib/harness.js';

/** Returns the tree item of an organization, named by its row only. */
function treeItem(page, name) {
  return page.getByRole('treeitem', { name: new RegExp(`^${name} `) });
}

test('city secretary browses tree and assigns role', async (t) => {
  const { server, page, pageErrors } = await setup(t);

  // Pick a member of 和平街道第二党支部 who has no role there yet.
  const call = await apiSession(server.url, 'qingchuan');
  const orgs = await call('GET', '/api/orgs');
  const branch = orgs.find((org) => org.name === '和平街道第二党支部');
  assert.ok(branch, 'the demo tree has 和平街道第二党支部');
  const holders = await call('GET', `/api/orgs/${branch.id}/roles`);
  const members = await call('GET', `/api/orgs/${branch.id}/members`);
  const candidate = members.items.find((member) => !holders.some((holder) => holder.member_id === member.id));
  assert.ok(candidate, 'the branch has a member without a role');

  await login(page, server.url, 'qingchuan');
  await page.waitForURL(/\/org\/\d+$/);
  const root = treeItem(page, '青川市委');
  await root.waitFor();
  assert.equal(await root.getAttribute('aria-selected'), 'true');
  assert.equal(await root.getAttribute('aria-expanded'), 'true');
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), '青川市委');

  // Collapse and expand with the keyboard, then open the branch by clicking.
  const district = treeItem(page, '青川市东城区委');
  await district.focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await district.getAttribute('aria-expanded'), 'true');
  await page.keyboard.press('ArrowLeft');
  assert.equal(await district.getAttribute('aria-expanded'), 'false');
  await district.click();
  await treeItem(page, '东城区和平街道党总支').click();
  await treeItem(page, '和平街道第二党支部').click();
  await page.waitForURL(new RegExp(`/org/${branch.id}$`));
  await page.getByRole('heading', { level: 1, name: '和平街道第二党支部' }).waitFor();

  // Open the member: the identity number is masked until revealed, and
  // this secretary is no officer of that branch, so there is no reveal.
  const table = page.getByTestId('members');
  await table.getByRole('link', { name: candidate.name, exact: true }).click();
  await page.waitForURL(new RegExp(`/org/${branch.id}/member/${candidate.id}$`));
  const pane = page.locator('.member-pane');
  await pane.getByRole('heading', { name: candidate.name }).waitFor();
  const masked = await pane.getByTestId('id-number').textContent();
  assert.match(masked, /^\d\*{16}[\dX]$/);
  assert.equal(await pane.getByRole('button', { name: '查看完整号码' }).count(), 0);
  await pane.getByRole('button', { name: '关闭' }).click();
  await page.waitForURL(new RegExp(`/org/${branch.id}$`));

  // Assign 纪检委员 and see it in the officer list.
  await page.getByRole('button', { name: '+ 任命职务' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('searchbox').fill(candidate.name);
  await dialog.getByRole('radio', { name: new RegExp(`^${candidate.name}`) }).check();
  await dialog.getByLabel('职务').selectOption('discipline_member');
  await dialog.getByRole('button', { name: '保存' }).click();
  await dialog.waitFor({ state: 'detached' });
  const officer = page.getByTestId('officers').locator('li', { hasText: candidate.name });
  await officer.waitFor();
  assert.equal(await officer.locator('.role-tag').textContent(), '纪检委员');
  await page.getByRole('status').filter({ hasText: `已任命${candidate.name}为纪检委员` }).waitFor({ state: 'attached' });

  // The server stored it.
  const after = await call('GET', `/api/orgs/${branch.id}/roles`);
  assert.ok(after.some((holder) => holder.member_id === candidate.id && holder.role === 'discipline_member'));
  assert.deepEqual(pageErrors, []);
});

test('branch secretary reveals identity number', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'zhibu');
  await page.getByRole('heading', { level: 1, name: '东城区机关第一党支部' }).waitFor();
  const firstMember = page.getByTestId('members').getByRole('link').nth(2);
  const name = await firstMember.textContent();
  await firstMember.click();
  const pane = page.locator('.member-pane');
  await pane.getByRole('heading', { name }).waitFor();
  const value = pane.getByTestId('id-number');
  assert.match(await value.textContent(), /^\d\*{16}[\dX]$/);
  await pane.getByRole('button', { name: '查看完整号码' }).click();
  await pane.getByRole('button', { name: '隐藏' }).waitFor();
  assert.match(await value.textContent(), /^\d{17}[\dX]$/);
  await pane.getByRole('button', { name: '隐藏' }).click();
  assert.match(await value.textContent(), /^\d\*{16}[\dX]$/);
  assert.deepEqual(pageErrors, []);
});

test('member sees only own organization', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'dangyuan');
  await page.getByRole('heading', { level: 1, name: '东城区机关第一党支部' }).waitFor();
  const items = page.getByRole('treeitem');
  assert.equal(await items.count(), 1);
  assert.equal(await items.first().getAttribute('aria-labelledby') !== null, true);
  assert.match(await items.first().textContent(), /东城区机关第一党支部/);
  for (const label of ['+ 新建下级组织', '重命名', '移动', '撤销', '+ 任命职务']) {
    assert.equal(await page.getByRole('button', { name: label }).count(), 0, `no "${label}" button`);
  }
  await page.getByText('只读').waitFor();
  assert.equal(await page.getByRole('link', { name: '账号' }).count(), 0);

  // A path to another organization falls back to the member's own.
  await page.goto(`${server.url}/org/1`);
  await page.getByRole('heading', { level: 1, name: '东城区机关第一党支部' }).waitFor();
  assert.doesNotMatch(page.url(), /\/org\/1$/);
  assert.deepEqual(pageErrors, []);
});

test('system administrator creates and dissolves organization', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'sysadmin');
  await treeItem(page, '江南省委').waitFor();
  await treeItem(page, '临江市委').click();
  await page.getByRole('heading', { level: 1, name: '临江市委' }).waitFor();

  await page.getByRole('button', { name: '+ 新建下级组织' }).click();
  let dialog = page.getByRole('dialog');
  await dialog.getByLabel('组织名称').fill('临江市测试党支部');
  await dialog.getByLabel('组织类型').selectOption('branch');
  await dialog.getByRole('button', { name: '新建' }).click();
  await page.getByRole('heading', { level: 1, name: '临江市测试党支部' }).waitFor();
  assert.equal(await treeItem(page, '临江市测试党支部').getAttribute('aria-selected'), 'true');

  await page.getByRole('button', { name: '重命名' }).click();
  dialog = page.getByRole('dialog');
  await dialog.getByLabel('组织名称').fill('');
  await dialog.getByRole('button', { name: '保存' }).click();
  await dialog.getByText('此项为必填项').waitFor();
  await dialog.getByLabel('组织名称').fill('临江市试点党支部');
  await dialog.getByRole('button', { name: '保存' }).click();
  await page.getByRole('heading', { level: 1, name: '临江市试点党支部' }).waitFor();

  await page.getByRole('button', { name: '撤销' }).click();
  await page.getByRole('dialog').getByRole('button', { name: '撤销' }).click();
  await page.getByRole('heading', { level: 1, name: '临江市委' }).waitFor();
  assert.equal(await treeItem(page, '临江市试点党支部').count(), 0);

  // A committee with members below it cannot be dissolved; the server's
  // message is shown.
  await page.getByRole('button', { name: '撤销' }).click();
  await page.getByRole('dialog').getByRole('button', { name: '撤销' }).click();
  await page.getByRole('alert').filter({ hasText: '只能撤销空组织' }).waitFor({ state: 'attached' });
  assert.deepEqual(pageErrors, []);
});
