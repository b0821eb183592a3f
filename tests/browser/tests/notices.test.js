// Notices: publishing, live inbox and badges, read and confirmation
// receipts on the sender's progress page, reminders, withdrawal, and the
// composer's checks and uploads. Two browsers stand for two people.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiSession, launchBrowser, login, setup } from '../lib/harness.js';

const BRANCH = '东城区机关第一党支部';

/** Opens a second browser for another person, closed after the test. */
async function secondPage(t) {
  const chrome = await launchBrowser();
  t.after(() => chrome.close());
  const page = chrome.context.pages()[0] || (await chrome.context.newPage());
  page.setDefaultTimeout(15_000);
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  return { page, pageErrors };
}

/** Marks the page so a later check can tell that it was not reloaded. */
async function markPage(page) {
  await page.evaluate(() => {
    window.dangwuTestMarker = 'unchanged';
  });
}

async function assertNotReloaded(page) {
  assert.equal(await page.evaluate(() => window.dangwuTestMarker), 'unchanged', 'the page was reloaded');
}

/** Sends a notice to the branch as zhibu over the API; returns it. */
async function sendToBranch(url, fields) {
  const call = await apiSession(url, 'zhibu');
  const orgs = await call('GET', '/api/orgs');
  const branch = orgs.find((org) => org.name === BRANCH);
  return call('POST', '/api/notices', {
    title: fields.title,
    body_html: fields.body_html || '<p>请按时参加。</p>',
    priority: fields.priority || 'normal',
    require_confirm: Boolean(fields.require_confirm),
    targets: { org_ids: [branch.id], member_ids: [] },
  });
}

async function openInbox(page) {
  await page.getByRole('navigation', { name: '主导航' }).getByRole('link', { name: /^通知/ }).click();
  await page.waitForURL(/\/notices$/);
  await page.getByRole('heading', { level: 1, name: '通知' }).waitFor();
}

test('published notice updates both pages live', async (t) => {
  const { server, page: sender, pageErrors } = await setup(t);
  const { page: member, pageErrors: memberErrors } = await secondPage(t);
  const title = '关于召开12月支部党员大会的通知';

  await login(member, server.url, 'dangyuan');
  await member.getByRole('heading', { level: 1, name: BRANCH }).waitFor();
  await openInbox(member);
  await member.getByText('还没有收到通知').waitFor();
  assert.equal(await member.getByTestId('todo-count').textContent(), '0');
  assert.equal(await member.getByTestId('notices-unread').count(), 0);
  await markPage(member);

  await login(sender, server.url, 'zhibu');
  await sender.getByRole('heading', { level: 1, name: BRANCH }).waitFor();
  await openInbox(sender);
  await sender.getByRole('link', { name: '+ 发通知' }).click();
  await sender.waitForURL(/\/notices\/new$/);
  await sender.getByLabel('标题').fill(title);
  await sender.getByRole('textbox', { name: '正文' }).click();
  await sender.keyboard.type('请全体党员按时参加。');
  await sender.getByRole('checkbox', { name: new RegExp(BRANCH) }).check();
  await sender.getByText('已选 1 个组织、0 名党员').waitFor();
  await sender.getByLabel('要求接收人回执').check();
  await sender.getByRole('button', { name: '发送', exact: true }).click();
  await sender.waitForURL(/\/notices\/sent\/\d+$/);
  await sender.getByRole('heading', { level: 2, name: title }).waitFor();
  const total = Number(await sender.getByTestId('total').textContent());
  assert.ok(total >= 2, `the branch has several members, got ${total}`);
  assert.equal(await sender.getByTestId('read-count').textContent(), '0');
  await markPage(sender);

  // The member's inbox, navigation badge and to-do count change by themselves.
  const item = member.getByTestId('inbox').getByRole('link', { name: new RegExp(title) });
  await item.waitFor();
  await member.getByTestId('notices-unread').filter({ hasText: /^1$/ }).waitFor();
  await member.getByTestId('todo-count').filter({ hasText: /^1$/ }).waitFor();
  await member.locator('#live-status').filter({ hasText: `收到新通知：${title}` }).waitFor({ state: 'attached' });
  await assertNotReloaded(member);

  // Opening it records the read receipt and clears the badges.
  await item.click();
  const detail = member.getByTestId('notice-detail');
  await detail.getByText('请全体党员按时参加。').waitFor();
  await member.getByTestId('notices-unread').waitFor({ state: 'detached' });
  await member.getByTestId('todo-count').filter({ hasText: /^0$/ }).waitFor();

  // The sender's counts follow without a reload.
  await sender.getByTestId('read-count').filter({ hasText: /^1$/ }).waitFor();
  assert.equal(await sender.getByTestId('unread-count').textContent(), String(total - 1));
  const memberName = (await member.locator('.account-name').textContent()).trim();
  await sender.getByTestId('unread-list').getByText(memberName, { exact: true }).waitFor({ state: 'detached' });
  assert.match(await sender.getByTestId('by-org').getByRole('row', { name: new RegExp(BRANCH) }).textContent(), new RegExp(`${total}1 \\(\\d+%\\)0`));
  await sender.locator('.visually-hidden[role="status"]').filter({ hasText: `${memberName}已阅读` }).waitFor({ state: 'attached' });

  // A reply arrives on the sender's page as it is sent.
  assert.equal(await sender.getByTestId('confirmed-count').textContent(), '0');
  await detail.getByLabel('回执内容').fill('收到，按时参加');
  await detail.getByRole('button', { name: '确认回执' }).click();
  await detail.getByTestId('receipt').getByText('已回执').waitFor();
  await sender.getByTestId('replies').getByText('收到，按时参加').waitFor();
  await sender.getByTestId('confirmed-count').filter({ hasText: /^1$/ }).waitFor();
  assert.match(await sender.getByTestId('replies').textContent(), new RegExp(memberName));
  assert.match(await sender.getByTestId('replies').textContent(), new RegExp(BRANCH));
  assert.equal(await sender.getByTestId('read-count').textContent(), '1');
  await assertNotReloaded(sender);
  await assertNotReloaded(member);

  // The sent list shows the counts, and follows a later receipt live.
  await sender.getByRole('link', { name: '‹ 返回我发出的通知' }).click();
  const sentRow = sender.getByTestId('sent').getByRole('row', { name: new RegExp(title) });
  await sentRow.waitFor();
  assert.match(await sentRow.textContent(), new RegExp(`1 / ${total}1 / ${total}$`));
  const other = await apiSession(server.url, 'dy002');
  const { items: [received] } = await other('GET', '/api/notices/inbox?limit=1');
  await other('POST', `/api/notices/${received.id}/read`);
  await sentRow.filter({ hasText: `2 / ${total}` }).waitFor();
  await assertNotReloaded(sender);
  await sender.getByTestId('sent').getByRole('link', { name: title }).click();
  await sender.getByTestId('read-count').filter({ hasText: /^2$/ }).waitFor();

  // A fresh load of the progress page shows the same counts and reply.
  await sender.reload();
  await sender.getByTestId('replies').getByText('收到，按时参加').waitFor();
  assert.equal(await sender.getByTestId('read-count').textContent(), '2');
  assert.equal(await sender.getByTestId('confirmed-count').textContent(), '1');
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(memberErrors, []);
});

test('withdrawal reaches open notice live', async (t) => {
  const { server, page: sender, pageErrors } = await setup(t);
  const { page: member, pageErrors: memberErrors } = await secondPage(t);
  const notice = await sendToBranch(server.url, { title: '关于调整学习时间的通知', body_html: '<p>学习改到周四。</p>' });

  await login(member, server.url, 'dangyuan');
  await member.getByRole('heading', { level: 1, name: BRANCH }).waitFor();
  await member.getByTestId('notices-unread').filter({ hasText: /^1$/ }).waitFor();
  await openInbox(member);
  await member.getByTestId('inbox').getByRole('link', { name: /关于调整学习时间的通知/ }).click();
  await member.getByTestId('notice-detail').getByText('学习改到周四。').waitFor();
  await markPage(member);

  await login(sender, server.url, 'zhibu');
  await sender.getByRole('heading', { level: 1, name: BRANCH }).waitFor();
  await sender.goto(`${server.url}/notices/sent/${notice.id}`);
  await sender.getByTestId('read-count').filter({ hasText: /^1$/ }).waitFor();
  await sender.getByRole('button', { name: '撤回通知' }).click();
  await sender.getByRole('dialog').getByRole('button', { name: '撤回通知' }).click();
  await sender.getByText('已撤回', { exact: true }).waitFor();
  assert.equal(await sender.getByRole('button', { name: '撤回通知' }).isDisabled(), true);
  assert.equal(await sender.getByRole('button', { name: '提醒未读人员' }).isDisabled(), true);

  // The member's open notice loses its body, and the list marks it.
  const detail = member.getByTestId('notice-detail');
  await detail.getByText('发送人已撤回此通知').waitFor();
  assert.equal(await detail.getByText('学习改到周四。').count(), 0);
  await member.getByTestId('inbox').getByText('已撤回', { exact: true }).waitFor();
  await assertNotReloaded(member);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(memberErrors, []);
});

test('reminder reaches member and is rate limited', async (t) => {
  const { server, page: sender, pageErrors } = await setup(t);
  const { page: member, pageErrors: memberErrors } = await secondPage(t);
  const notice = await sendToBranch(server.url, { title: '请尽快报送学习心得' });

  await login(member, server.url, 'dangyuan');
  await member.getByRole('heading', { level: 1, name: BRANCH }).waitFor();
  await login(sender, server.url, 'zhibu');
  await sender.getByRole('heading', { level: 1, name: BRANCH }).waitFor();
  await sender.goto(`${server.url}/notices/sent/${notice.id}`);
  const remind = sender.getByRole('button', { name: '提醒未读人员' });
  await sender.getByTestId('total').filter({ hasText: /^[1-9]\d*$/ }).waitFor();
  const total = await sender.getByTestId('total').textContent();
  await remind.click();
  // The sender is a recipient too, so the reminder's own announcement can
  // replace the result in the live region at once; the toasts keep both.
  await sender.locator('#toasts .toast').filter({ hasText: `已提醒 ${total} 人` }).waitFor();
  await member.locator('#toasts .toast').filter({ hasText: '请及时阅读通知：请尽快报送学习心得' }).waitFor();

  // A second reminder within five minutes is refused with the server's message.
  await remind.click();
  await sender.getByRole('alert').filter({ hasText: '每 5 分钟最多提醒一次' }).waitFor();
  assert.equal(await remind.isDisabled(), false);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(memberErrors, []);
});

test('composer checks fields and uploads files', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'zhibu');
  await page.getByRole('heading', { level: 1, name: BRANCH }).waitFor();
  await page.goto(`${server.url}/notices/new`);
  const send = page.getByRole('button', { name: '发送', exact: true });

  await send.click();
  await page.locator('.field-error').filter({ hasText: '此项为必填项' }).waitFor();
  assert.equal(await page.getByLabel('标题').getAttribute('aria-invalid'), 'true');

  await page.getByLabel('标题').fill('关于报送材料的通知');
  await page.getByRole('textbox', { name: '正文' }).click();
  await page.keyboard.type('请在周五前报送。');
  await send.click();
  await page.locator('.field-error').filter({ hasText: '请至少选择一个组织或党员' }).waitFor();

  // The server rejects a file whose content does not match its name, and
  // stores a text file.
  await page.locator('input[type="file"]').setInputFiles([
    { name: '方案.pdf', mimeType: 'application/pdf', buffer: Buffer.from('not a pdf at all') },
    { name: '名单.txt', mimeType: 'text/plain', buffer: Buffer.from('张三\n李四\n') },
  ]);
  const rows = page.locator('.upload-row');
  await rows.filter({ hasText: '名单.txt' }).getByText(/^\d+ B$/).waitFor();
  await rows.filter({ hasText: '方案.pdf' }).locator('.field-error').waitFor();
  assert.ok((await rows.filter({ hasText: '方案.pdf' }).locator('.field-error').textContent()).length > 0);
  // A finished upload's bar is hidden but keeps its grid column, so the
  // size stays in the status column.
  const finishedBar = rows.filter({ hasText: '名单.txt' }).locator('progress');
  assert.equal(await finishedBar.isVisible(), false);
  const barBox = await finishedBar.boundingBox();
  assert.notEqual(barBox, null, 'the finished bar has no layout box');
  assert.ok(barBox.width > 0, `the finished bar is ${barBox.width}px wide`);

  await page.getByRole('checkbox', { name: new RegExp(BRANCH) }).check();
  await send.click();
  await page.locator('.field-error').filter({ hasText: '请先移除上传失败的附件' }).waitFor();
  await page.getByRole('button', { name: '移除附件方案.pdf' }).click();
  await send.click();
  await page.waitForURL(/\/notices\/sent\/\d+$/);
  const id = page.url().match(/(\d+)$/)[1];

  // The sender is a branch member too, so the notice is in its inbox with
  // the attachment.
  await page.goto(`${server.url}/notices/${id}`);
  const link = page.getByTestId('notice-detail').getByRole('link', { name: '名单.txt' });
  await link.waitFor();
  const response = await page.request.get(new URL(await link.getAttribute('href'), server.url).href);
  assert.equal(response.status(), 200);
  assert.equal(await response.text(), '张三\n李四\n');
  assert.deepEqual(pageErrors, []);
});

test('hub resumes after dropped connection', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  // Every hub connection passes through a route, so the test can drop it
  // and send frames of its own to the page.
  const routes = [];
  const noticeFrames = [];
  await page.routeWebSocket(/\/ws\?v=1$/, (route) => {
    const upstream = route.connectToServer();
    upstream.onMessage((message) => {
      if (typeof message === 'string' && message.includes('"notice.new"')) noticeFrames.push(message);
      route.send(message);
    });
    route.onMessage((message) => upstream.send(message));
    routes.push(route);
  });
  const toasts = (title) => page.locator('.toast').filter({ hasText: `收到新通知：${title}` });

  await login(page, server.url, 'dangyuan');
  await page.getByRole('heading', { level: 1, name: BRANCH }).waitFor();
  await openInbox(page);
  await markPage(page);
  await sendToBranch(server.url, { title: '第一条通知' });
  await page.getByTestId('inbox').getByRole('link', { name: /第一条通知/ }).waitFor();
  assert.equal(routes.length, 1);

  // A slow-consumer close: the client reconnects and the server replays
  // what was sent while it was away.
  routes[0].close({ code: 4008, reason: 'slow consumer' });
  await page.getByText('连接中断，正在重新连接…').waitFor();
  await sendToBranch(server.url, { title: '断线期间的通知' });
  await page.getByTestId('inbox').getByRole('link', { name: /断线期间的通知/ }).waitFor({ timeout: 30_000 });
  await page.getByTestId('notices-unread').filter({ hasText: /^2$/ }).waitFor();
  assert.equal(routes.length, 2);
  await page.getByText('连接中断，正在重新连接…').waitFor({ state: 'hidden' });
  await toasts('断线期间的通知').waitFor();

  // A repeated event is dropped: only the next new one is announced.
  const repeated = noticeFrames.at(-1);
  assert.match(repeated, /断线期间的通知/);
  routes[1].send(repeated);
  await sendToBranch(server.url, { title: '第三条通知' });
  await toasts('第三条通知').waitFor();
  assert.equal(await toasts('断线期间的通知').count(), 1);
  assert.equal(await page.getByTestId('inbox').getByRole('link', { name: /断线期间的通知/ }).count(), 1);
  await page.getByTestId('notices-unread').filter({ hasText: /^3$/ }).waitFor();
  await assertNotReloaded(page);

  // Close code 1008 means the session ended: back to login.
  routes[1].close({ code: 1008, reason: 'session ended' });
  await page.getByRole('heading', { name: '登录党务' }).waitFor();
  await page.getByRole('alert').filter({ hasText: '登录已过期，请重新登录' }).waitFor({ state: 'attached' });
  assert.deepEqual(pageErrors, []);
});

test('phone inbox shows one pane', async (t) => {
  const { server, page, pageErrors } = await setup(t, { viewport: { width: 390, height: 844 } });
  await sendToBranch(server.url, { title: '关于整理党员档案的通知', body_html: '<p>请核对个人信息。</p>' });
  await login(page, server.url, 'dangyuan');
  await page.getByRole('heading', { level: 1, name: BRANCH }).waitFor();
  await page.getByTestId('notices-unread').filter({ hasText: /^1$/ }).waitFor();
  await openInbox(page);
  const list = page.getByTestId('inbox');
  const detail = page.getByTestId('notice-detail');

  await list.getByRole('link', { name: /关于整理党员档案的通知/ }).click();
  await detail.getByText('请核对个人信息。').waitFor();
  assert.equal(await list.isVisible(), false);
  // The read receipt redraws the article, so the width is measured on the
  // section around it, which stays in the page.
  const box = await page.locator('.notice-detail').boundingBox();
  assert.ok(box.width >= 350, `the notice fills the width, got ${box.width}`);

  await detail.getByRole('button', { name: /返回列表/ }).click();
  await page.waitForURL(/\/notices$/);
  await list.waitFor();
  assert.equal(await detail.isVisible(), false);
  assert.equal(await page.getByTestId('notices-unread').count(), 0);
  assert.deepEqual(pageErrors, []);
});

test('urgent filter asks the server', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  // The urgent notice is the oldest, so it is not on the first page of all
  // notices and only a filter on the server finds it.
  await sendToBranch(server.url, { title: '紧急：今晚八点前报送名单', priority: 'urgent' });
  for (let i = 1; i <= 20; i += 1) await sendToBranch(server.url, { title: `例行通知第${i}号` });

  await login(page, server.url, 'dangyuan');
  await page.getByRole('heading', { level: 1, name: BRANCH }).waitFor();
  await openInbox(page);
  const list = page.getByTestId('inbox');
  await list.getByRole('link', { name: /例行通知第20号/ }).waitFor();
  assert.equal(await list.getByRole('link').count(), 20);
  assert.equal(await list.getByRole('link', { name: /紧急：今晚八点前报送名单/ }).count(), 0);

  await page.getByLabel('只看紧急').check();
  const urgent = list.getByRole('link', { name: /紧急：今晚八点前报送名单/ });
  await urgent.waitFor();
  assert.equal(await list.getByRole('link').count(), 1);
  assert.equal(await page.locator('.pager').count(), 0);

  // Read it, then the unread urgent list is empty.
  await urgent.click();
  await page.getByTestId('notice-detail').getByText('请按时参加。').waitFor();
  await page.getByRole('button', { name: /^未读/ }).click();
  await page.getByText('没有未读的紧急通知').waitFor();

  await page.getByLabel('只看紧急').uncheck();
  await list.getByRole('link', { name: /例行通知第20号/ }).waitFor();
  assert.equal(await list.getByRole('link').count(), 20);
  assert.deepEqual(pageErrors, []);
});

test('replies survive progress page reload', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  const notice = await sendToBranch(server.url, { title: '请确认参加组织生活会', require_confirm: true });
  const member = await apiSession(server.url, 'dangyuan');
  await member('POST', `/api/notices/${notice.id}/confirm`, { reply: '收到，准时参加' });
  const memberInfo = await member('GET', '/api/auth/me');

  // Hub events never reach the page, so the reply can only come from the
  // progress snapshot.
  await page.routeWebSocket(/\/ws\?v=1$/, (route) => {
    const upstream = route.connectToServer();
    upstream.onMessage((message) => {
      if (typeof message === 'string' && message.includes('"type":"event"')) return;
      route.send(message);
    });
    route.onMessage((message) => upstream.send(message));
  });
  await login(page, server.url, 'zhibu');
  await page.getByRole('heading', { level: 1, name: BRANCH }).waitFor();
  await page.goto(`${server.url}/notices/sent/${notice.id}`);
  const replies = page.getByTestId('replies');
  await replies.getByText('收到，准时参加').waitFor();
  assert.equal(await page.getByTestId('confirmed-count').textContent(), '1');

  await page.reload();
  await replies.getByText('收到，准时参加').waitFor();
  const text = await replies.textContent();
  assert.match(text, new RegExp(memberInfo.account.display_name));
  assert.match(text, new RegExp(BRANCH));
  assert.equal(await page.getByTestId('confirmed-count').textContent(), '1');
  assert.deepEqual(pageErrors, []);
});
