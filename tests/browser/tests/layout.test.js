// Phone layout and keyboard use.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEMO_PASSWORD, login, setup } from '../lib/harness.js';

test('phone layout uses bottom navigation', async (t) => {
  const { server, page, pageErrors } = await setup(t, { viewport: { width: 390, height: 844 } });
  await login(page, server.url, 'qingchuan');
  await page.getByRole('heading', { level: 1, name: '青川市委' }).waitFor();

  const nav = page.getByRole('navigation', { name: '主导航' });
  const box = await nav.boundingBox();
  assert.ok(box.y + box.height >= 844 - 1, `navigation ends at the bottom edge, got y=${box.y} height=${box.height}`);
  assert.ok(box.width >= 389, `navigation spans the width, got ${box.width}`);

  // The tree folds away after a choice and opens again from its summary.
  const summary = page.getByText('选择组织');
  await summary.waitFor();
  const tree = page.getByRole('tree');
  assert.equal(await tree.isVisible(), false);
  await summary.click();
  await tree.waitFor();
  await page.getByRole('treeitem', { name: /^青川市东城区委 / }).click();
  await page.getByRole('heading', { level: 1, name: '青川市东城区委' }).waitFor();
  assert.equal(await tree.isVisible(), false);

  // The member pane covers the page on a phone.
  await page.getByTestId('members').getByRole('link').first().click();
  const pane = page.locator('.member-pane');
  await pane.getByTestId('member-detail').waitFor();
  const paneBox = await pane.boundingBox();
  assert.ok(paneBox.width >= 389, `member pane spans the width, got ${paneBox.width}`);
  await page.keyboard.press('Escape');
  await pane.waitFor({ state: 'hidden' });
  assert.deepEqual(pageErrors, []);
});

test('keyboard alone logs in and navigates', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await page.goto(`${server.url}/`);
  await page.waitForURL(/\/login$/);
  const username = page.getByLabel('用户名');
  await username.waitFor();
  assert.equal(await username.evaluate((element) => element === document.activeElement), true);
  await page.keyboard.type('zhibu');
  await page.keyboard.press('Tab');
  await page.keyboard.type(DEMO_PASSWORD);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: '东城区机关第一党支部' }).waitFor();

  // Focus moves to the page content, so Tab continues inside it.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), '筛选组织');
  const meetings = page.getByRole('link', { name: '会议', exact: true });
  await meetings.focus();
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: '会议' }).waitFor();

  // The account menu opens, moves with arrows and closes with Escape.
  const menuButton = page.getByRole('button', { name: /账号菜单/ });
  await menuButton.focus();
  await page.keyboard.press('Enter');
  const first = page.getByRole('menuitem', { name: '修改密码' });
  await first.waitFor();
  assert.equal(await first.evaluate((element) => element === document.activeElement), true);
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.getByRole('menuitem', { name: '退出登录' }).evaluate((element) => element === document.activeElement), true);
  await page.keyboard.press('Escape');
  await first.waitFor({ state: 'hidden' });
  assert.equal(await menuButton.evaluate((element) => element === document.activeElement), true);
  assert.deepEqual(pageErrors, []);
});
