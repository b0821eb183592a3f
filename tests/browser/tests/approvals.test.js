// Document approval: two approvers watching one document see each other's
// action live, and a full route through the pages: drafting and submitting,
// a countersign member returning it to the drafter, an edit with a reason,
// resubmission and the final sign-off with its document number.
//
// Demo accounts of 东城区机关第一党支部: zhibu (secretary), dy002
// (organization member), dy003 (propaganda member), dangyuan and dy005.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEMO_PASSWORD, apiSession, launchBrowser, login, setup } from '../lib/harness.js';

const BRANCH = '东城区机关第一党支部';
const TEMPLATE_NAME = '支部请示';

/** Opens another browser for a second person, closed after the test. */
async function secondPage(t) {
  const chrome = await launchBrowser();
  t.after(() => chrome.close());
  const page = chrome.context.pages()[0] || (await chrome.context.newPage());
  page.setDefaultTimeout(15_000);
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  return { page, pageErrors };
}

async function markPage(page) {
  await page.evaluate(() => {
    window.dangwuTestMarker = 'unchanged';
  });
}

async function assertNotReloaded(page) {
  assert.equal(await page.evaluate(() => window.dangwuTestMarker), 'unchanged', 'the page was reloaded');
}

/** Returns the member id of a demo account. */
async function memberIdOf(url, username) {
  const call = await apiSession(url, username);
  const me = await call('GET', '/api/auth/me');
  return me.account.member_id;
}

/**
 * Saves, as zhibu, the template 部门审核 (the organization member, dy002) →
 * 会签 (dy003 and dy005, all of) → 书记签发 (the branch secretary, zhibu);
 * returns `{ branchId, templateId }`.
 */
async function saveTemplate(url) {
  const call = await apiSession(url, 'zhibu');
  const branch = (await call('GET', '/api/orgs')).find((org) => org.name === BRANCH);
  const roles = await call('GET', `/api/orgs/${branch.id}/roles`);
  const holder = (role) => roles.find((entry) => entry.role === role).member_id;
  assert.equal(holder('organization_member'), await memberIdOf(url, 'dy002'), 'dy002 is the organization member');
  assert.equal(holder('propaganda_member'), await memberIdOf(url, 'dy003'), 'dy003 is the propaganda member');
  const countersigners = [await memberIdOf(url, 'dy003'), await memberIdOf(url, 'dy005')];
  const saved = await call('POST', '/api/approvals/templates', {
    org_id: branch.id,
    definition: {
      name: TEMPLATE_NAME,
      steps: [
        { id: 'review', name: '部门审核', kind: { type: 'single' }, assignees: [{ role: { role: 'organization_member', org: 'issuing' } }] },
        { id: 'countersign', name: '会签', kind: { type: 'all_of' }, assignees: [{ members: countersigners }] },
        { id: 'signoff', name: '书记签发', kind: { type: 'single' }, assignees: [{ role: { role: 'secretary', org: 'issuing' } }] },
      ],
    },
  });
  return { branchId: branch.id, templateId: saved.id };
}

/** Logs in from Node and returns the headers of a state-changing request. */
async function sessionHeaders(url, username) {
  const response = await fetch(`${url}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password: DEMO_PASSWORD }),
  });
  const cookie = response.headers.getSetCookie().map((value) => value.split(';')[0]).join('; ');
  const { csrf_token: csrf } = await response.json();
  return { Cookie: cookie, 'X-CSRF-Token': csrf };
}

async function openDocument(page, url, id) {
  await page.goto(`${url}/approvals/${id}`);
  await page.getByTestId('doc-detail').waitFor();
}

test('second approver sees the first approval live', async (t) => {
  const { server, page: first, pageErrors } = await setup(t);
  const { page: second, pageErrors: secondErrors } = await secondPage(t);
  const { branchId, templateId } = await saveTemplate(server.url);
  const drafter = await apiSession(server.url, 'dangyuan');
  const created = await drafter('POST', '/api/documents', {
    org_id: branchId,
    title: '关于调整党费收缴时间的请示',
    doc_type: '请示',
    security_level: 'internal',
    urgency: 'normal',
    template_id: templateId,
    body_html: '<p>拟将党费收缴时间调整为每月5日。</p>',
  });
  const id = created.document.id;
  await drafter('POST', `/api/documents/${id}/actions`, { action: 'submit', based_on_version: 0 });
  const reviewer = await apiSession(server.url, 'dy002');
  await reviewer('POST', `/api/documents/${id}/actions`, { action: 'approve', based_on_version: 1, opinion: '同意', body_version: 1 });

  // Both countersigners open the document.
  await login(first, server.url, 'dy003');
  await first.getByRole('navigation', { name: '主导航' }).waitFor();
  await login(second, server.url, 'dy005');
  await second.getByRole('navigation', { name: '主导航' }).waitFor();
  await openDocument(first, server.url, id);
  await openDocument(second, server.url, id);
  const turnBefore = await second.getByTestId('doc-turn').textContent();
  assert.match(turnBefore, /^会签/);
  await markPage(second);

  await first.getByLabel('意见').fill('会签同意，建议提前通知');
  await first.getByRole('button', { name: '同意', exact: true }).click();
  await first.getByText('您有待办理的任务').waitFor({ state: 'detached' });

  const timeline = second.getByTestId('timeline');
  await timeline.getByText('会签同意，建议提前通知').waitFor();
  await second.waitForFunction((before) => document.querySelector('[data-testid="doc-turn"]').textContent !== before, turnBefore);
  const turnAfter = await second.getByTestId('doc-turn').textContent();
  assert.ok(!turnAfter.includes(await first.evaluate(() => document.querySelector('.account-name').textContent)), `turn still names the first approver: ${turnAfter}`);
  assert.match(await second.getByTestId('doc-live').textContent(), /同意/);
  assert.equal(await timeline.locator('.signed-mark').count(), 3);
  await assertNotReloaded(second);

  // The second approver signs too; the secretary's turn shows on the first page.
  await second.getByRole('button', { name: '同意', exact: true }).click();
  await first.getByTestId('doc-turn').getByText(/^书记签发/).waitFor();
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(secondErrors, []);
});

test('drafter routes a document to sign-off', async (t) => {
  const { server, page: drafter, pageErrors } = await setup(t);
  const { page: other, pageErrors: otherErrors } = await secondPage(t);
  await saveTemplate(server.url);
  const title = '关于开展主题党日活动的请示';

  // Drafting through the form.
  await login(drafter, server.url, 'dangyuan');
  await drafter.getByRole('navigation', { name: '主导航' }).getByRole('link', { name: /^审批/ }).click();
  await drafter.getByRole('link', { name: '+ 起草公文' }).click();
  await drafter.waitForURL(/\/approvals\/new$/);
  await drafter.getByLabel('标题').fill(title);
  await drafter.getByLabel('紧急程度').selectOption('urgent');
  await drafter.getByLabel('审批模板').selectOption({ label: `${TEMPLATE_NAME}（第 1 版）` });
  await drafter.locator('.template-preview').getByText('会签（全部同意）').waitFor();
  await drafter.getByRole('textbox', { name: '正文' }).click();
  await drafter.keyboard.type('拟于下月开展主题党日活动。');
  // The district committee above the branch is copied, found by name.
  await drafter.getByRole('searchbox', { name: '抄送机关' }).fill('东城区委');
  await drafter.getByRole('button', { name: '抄送 青川市东城区委' }).click();
  await drafter.getByRole('list', { name: '已选抄送机关' }).getByText('青川市东城区委').waitFor();
  await drafter.locator('input[type=file]').setInputFiles({ name: '活动方案.txt', mimeType: 'text/plain', buffer: Buffer.from('活动方案') });
  await drafter.locator('.upload-row progress').waitFor({ state: 'hidden' });
  await drafter.getByRole('button', { name: '保存并提交' }).click();
  await drafter.waitForURL(/\/approvals\/involved\/\d+$/);
  const id = Number(drafter.url().match(/(\d+)$/)[1]);
  await drafter.getByTestId('doc-turn').getByText(/^部门审核/).waitFor();
  assert.equal(await drafter.getByTestId('doc-cc').textContent(), '青川市东城区委');
  assert.equal(await drafter.getByTestId('doc-attachments').getByRole('link', { name: '活动方案.txt' }).count(), 1);
  await markPage(drafter);

  // The organization member approves in another browser.
  await login(other, server.url, 'dy002');
  await other.getByRole('navigation', { name: '主导航' }).getByRole('link', { name: /^审批/ }).click();
  await other.getByTestId('approvals-todo').getByRole('link', { name: new RegExp(title) }).click();
  await other.getByLabel('意见').fill('同意');
  await other.getByRole('button', { name: '同意', exact: true }).click();
  await drafter.getByTestId('doc-turn').getByText(/^会签/).waitFor();

  // A countersign member returns it to the drafter.
  const countersigner = 'dy003';
  await other.getByRole('button', { name: /账号菜单/ }).click();
  await other.getByRole('menuitem', { name: '退出登录' }).click();
  // The next login must not start before the logout has ended the session.
  await other.getByRole('heading', { name: '登录党务' }).waitFor();
  await login(other, server.url, countersigner);
  await other.getByRole('navigation', { name: '主导航' }).waitFor();
  await openDocument(other, server.url, id);
  await other.getByLabel('意见').fill('请补充活动预算');
  await other.getByLabel('退回到').selectOption({ label: '起草人' });
  await other.getByRole('button', { name: '退回', exact: true }).click();
  await drafter.getByTestId('timeline').getByText('请补充活动预算').waitFor();
  await drafter.getByTestId('doc-turn').getByText(/等待起草人/).waitFor();
  await assertNotReloaded(drafter);

  // The drafter edits with a reason, sees the difference and resubmits.
  await drafter.getByRole('button', { name: '修改正文' }).click();
  const editor = drafter.getByRole('textbox', { name: '正文' });
  await editor.click();
  await drafter.keyboard.press('End');
  await drafter.keyboard.type('预算两千元。');
  await drafter.getByLabel('修改原因').fill('补充预算');
  await drafter.getByRole('button', { name: '保存正文' }).click();
  await drafter.getByTestId('body-version').getByText('第 2 版').waitFor();
  await drafter.getByRole('button', { name: '版本记录' }).click();
  await drafter.getByTestId('versions').getByText('原因：补充预算').waitFor();
  await drafter.getByRole('button', { name: '查看差异' }).click();
  assert.equal(await drafter.getByTestId('diff').locator('ins').first().textContent(), '预算两千元。');
  await drafter.getByRole('button', { name: '提交审批' }).click();
  await drafter.getByTestId('doc-turn').getByText(/^部门审核/).waitFor();

  // The rest of the route over the API, then the secretary signs off in the page.
  const sessions = {
    dy002: await apiSession(server.url, 'dy002'),
    a: await apiSession(server.url, countersigner),
    b: await apiSession(server.url, 'dy005'),
  };
  for (const call of [sessions.dy002, sessions.a, sessions.b]) {
    const view = await call('GET', `/api/documents/${id}`);
    await call('POST', `/api/documents/${id}/actions`, {
      action: 'approve',
      based_on_version: view.document.workflow_version,
      opinion: '同意',
      body_version: view.document.body_version,
    });
  }
  await other.getByRole('button', { name: /账号菜单/ }).click();
  await other.getByRole('menuitem', { name: '退出登录' }).click();
  // The next login must not start before the logout has ended the session.
  await other.getByRole('heading', { name: '登录党务' }).waitFor();
  await login(other, server.url, 'zhibu');
  await other.getByRole('navigation', { name: '主导航' }).waitFor();
  await openDocument(other, server.url, id);
  await other.getByLabel('意见').fill('同意，签发');
  await other.getByRole('button', { name: '同意', exact: true }).click();
  const year = new Date().getFullYear();
  await other.getByTestId('doc-number').getByText(`${BRANCH}〔${year}〕1号`).waitFor();
  await drafter.getByTestId('doc-number').getByText(`${BRANCH}〔${year}〕1号`).waitFor();
  assert.match(await drafter.getByTestId('doc-detail').locator('.doc-status').first().textContent(), /已签发/);
  await assertNotReloaded(drafter);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(otherErrors, []);
});

/**
 * Drafts a document as dangyuan with a one-step template (书记签发 by the
 * branch secretary), circulated afterwards to the accounts in `readers`, and
 * signs it off as zhibu over the API. Returns `{ branchId, id, number }`.
 */
async function signedOffDocument(url, title, { readers = [] } = {}) {
  const secretary = await apiSession(url, 'zhibu');
  const branch = (await secretary('GET', '/api/orgs')).find((org) => org.name === BRANCH);
  const circulation = readers.length > 0 ? [{ members: await Promise.all(readers.map((name) => memberIdOf(url, name))) }] : [];
  const template = await secretary('POST', '/api/approvals/templates', {
    org_id: branch.id,
    definition: {
      name: readers.length > 0 ? '书记审批后传阅' : '书记审批',
      steps: [{ id: 'sign', name: '书记签发', kind: { type: 'single' }, assignees: [{ role: { role: 'secretary', org: 'issuing' } }] }],
      circulation,
    },
  });
  const drafter = await apiSession(url, 'dangyuan');
  const created = await drafter('POST', '/api/documents', {
    org_id: branch.id,
    title,
    doc_type: '通知',
    security_level: 'public',
    urgency: 'normal',
    template_id: template.id,
    body_html: '<p>请各党小组于本月底前完成学习。</p>',
  });
  const id = created.document.id;
  await drafter('POST', `/api/documents/${id}/actions`, { action: 'submit', based_on_version: 0 });
  const view = await secretary('GET', `/api/documents/${id}`);
  const signed = await secretary('POST', `/api/documents/${id}/actions`, {
    action: 'approve',
    based_on_version: view.document.workflow_version,
    opinion: '同意',
    body_version: view.document.body_version,
  });
  return { branchId: branch.id, id, number: signed.document.number };
}

test('signed-off document prints, issues and voids', async (t) => {
  const { server, page: secretary, context, pageErrors } = await setup(t);
  const { page: drafter, pageErrors: drafterErrors } = await secondPage(t);
  const title = '关于开展专题学习的通知';
  const { id, number } = await signedOffDocument(server.url, title);
  assert.match(number, new RegExp(`^${BRANCH}〔\\d{4}〕1号$`));

  await login(secretary, server.url, 'zhibu');
  await secretary.getByRole('navigation', { name: '主导航' }).waitFor();
  await openDocument(secretary, server.url, id);
  await login(drafter, server.url, 'dangyuan');
  await drafter.getByRole('navigation', { name: '主导航' }).waitFor();
  await openDocument(drafter, server.url, id);
  assert.equal(await drafter.getByRole('button', { name: '作废' }).count(), 0, 'a member who is no officer cannot void');
  assert.equal(await drafter.getByRole('button', { name: '分发' }).count(), 0, 'a member who manages nothing cannot issue');

  // The print view opens in a new tab with the number and the issuer line.
  const [printTab] = await Promise.all([context.waitForEvent('page'), secretary.getByRole('link', { name: '打印公文' }).click()]);
  await printTab.waitForLoadState();
  const printed = await printTab.locator('body').textContent();
  assert.ok(printed.includes(number), `print view lacks the number: ${printed.slice(0, 200)}`);
  assert.ok(printed.includes('文件'), 'print view lacks the issuer line');
  await printTab.close();

  // Issue to the branch; the notice reaches the drafter's inbox.
  await secretary.getByRole('button', { name: '分发' }).click();
  const issueDialog = secretary.getByRole('dialog', { name: '分发公文' });
  await issueDialog.getByTestId('target-tree').getByRole('checkbox', { name: new RegExp(BRANCH) }).check();
  await issueDialog.getByRole('button', { name: '分发', exact: true }).click();
  await issueDialog.waitFor({ state: 'detached' });
  const progressLink = secretary.getByRole('link', { name: '查看分发通知的签收情况' });
  assert.match(await progressLink.getAttribute('href'), /^\/notices\/sent\/\d+$/);
  await markPage(drafter);

  // Void with a reason; the drafter's page shows it live.
  await secretary.getByRole('button', { name: '作废' }).click();
  const voidDialog = secretary.getByRole('dialog', { name: '作废公文' });
  await voidDialog.getByRole('button', { name: '作废', exact: true }).click();
  await voidDialog.getByText('请填写作废原因').waitFor();
  await voidDialog.getByLabel('作废原因').fill('文号登记错误');
  await voidDialog.getByRole('button', { name: '作废', exact: true }).click();
  await secretary.getByTestId('doc-voided').waitFor();
  await drafter.getByTestId('doc-voided').getByText('文号登记错误').waitFor();
  assert.match(await drafter.getByTestId('doc-voided').textContent(), /已作废/);
  assert.match(await drafter.getByTestId('doc-detail').locator('.doc-status').first().textContent(), /已作废/);
  assert.equal(await secretary.getByRole('button', { name: '作废' }).count(), 0, 'a void document cannot be voided again');
  assert.equal(await secretary.getByRole('button', { name: '分发' }).count(), 0, 'a void document cannot be issued');
  await assertNotReloaded(drafter);

  // The register lists the number as void.
  await secretary.getByRole('link', { name: '登记簿' }).click();
  await secretary.waitForURL(/\/approvals\/register$/);
  await secretary.getByLabel('组织').selectOption({ label: BRANCH });
  const row = secretary.getByTestId('register').getByRole('row', { name: new RegExp(number.replace(/[〔〕]/g, '.')) });
  await row.waitFor();
  assert.match(await row.textContent(), /已作废/);
  assert.match(await row.textContent(), /文号登记错误/);

  // The issued notice is in the drafter's inbox.
  await drafter.getByRole('navigation', { name: '主导航' }).getByRole('link', { name: /^通知/ }).click();
  await drafter.getByTestId('inbox').getByText(`${number} ${title}`).waitFor();
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(drafterErrors, []);
});

test('circulation progress shows live', async (t) => {
  const { server, page: drafter, pageErrors } = await setup(t);
  const { page: reader, pageErrors: readerErrors } = await secondPage(t);
  const { id } = await signedOffDocument(server.url, '关于学习贯彻会议精神的通知', { readers: ['dy002', 'dy003'] });

  await login(drafter, server.url, 'dangyuan');
  await drafter.getByRole('navigation', { name: '主导航' }).waitFor();
  await openDocument(drafter, server.url, id);
  const circulation = drafter.getByTestId('circulation');
  await circulation.getByText('已阅 0 / 2').waitFor();
  assert.equal(await circulation.getByText('未阅').count(), 2);
  await markPage(drafter);

  await login(reader, server.url, 'dy002');
  await reader.getByRole('navigation', { name: '主导航' }).waitFor();
  await openDocument(reader, server.url, id);
  await reader.getByRole('button', { name: '标记已阅' }).click();
  await reader.getByTestId('circulation').getByText('已阅 1 / 2').waitFor();

  // The drafter's open page follows without a reload.
  await circulation.getByText('已阅 1 / 2').waitFor();
  assert.equal(await circulation.getByText('未阅').count(), 1);
  assert.equal(await circulation.getByText(/已阅$/).count(), 1);
  await assertNotReloaded(drafter);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(readerErrors, []);
});

test('deadline, copies and attachments show', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  const secretary = await apiSession(server.url, 'zhibu');
  const branch = (await secretary('GET', '/api/orgs')).find((org) => org.name === BRANCH);
  const reviewer = await memberIdOf(server.url, 'dy002');
  const template = await secretary('POST', '/api/approvals/templates', {
    org_id: branch.id,
    definition: {
      name: '限时审核',
      steps: [{ id: 'check', name: '审核', kind: { type: 'single' }, assignees: [{ members: [reviewer] }], deadline_working_days: 2 }],
    },
  });
  const drafter = await apiSession(server.url, 'dangyuan');
  const upload = await fetch(`${server.url}/api/files?name=${encodeURIComponent('年度工作总结.pdf')}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream', ...(await sessionHeaders(server.url, 'dangyuan')) },
    body: '%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n',
  });
  assert.equal(upload.status, 201, await upload.clone().text());
  const uploaded = await upload.json();
  const title = '关于报送年度工作总结的请示';
  const created = await drafter('POST', '/api/documents', {
    org_id: branch.id,
    title,
    doc_type: '请示',
    security_level: 'internal',
    urgency: 'normal',
    template_id: template.id,
    body_html: '<p>请审核。</p>',
    cc_org_ids: [branch.id],
    attachments: [{ sha256: uploaded.sha256, name: '年度工作总结.pdf' }],
  });
  const submitted = await drafter('POST', `/api/documents/${created.document.id}/actions`, { action: 'submit', based_on_version: 0 });
  const dueAt = submitted.deadlines[0].due_at;
  assert.ok(dueAt > Date.now(), 'the deadline lies ahead');

  await login(page, server.url, 'dy002');
  await page.getByRole('navigation', { name: '主导航' }).getByRole('link', { name: /^审批/ }).click();
  const item = page.getByTestId('approvals-todo').getByRole('link', { name: new RegExp(title) });
  const due = await item.getByTestId('due-tag').textContent();
  assert.match(due, /^\d{4}年\d{1,2}月\d{1,2}日前办结$/);
  await item.click();
  const deadlines = page.getByTestId('doc-deadlines');
  await deadlines.waitFor();
  assert.match(await deadlines.textContent(), /前办结/);
  assert.equal(await page.getByTestId('doc-cc').textContent(), BRANCH);
  assert.equal(await page.getByTestId('doc-attachments').getByRole('link', { name: '年度工作总结.pdf' }).count(), 1);
  assert.equal(await page.locator('.due-overdue').count(), 0);
  assert.deepEqual(pageErrors, []);
});

test('system administrator edits working-day calendar', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  const year = new Date().getFullYear();
  await login(page, server.url, 'sysadmin');
  await page.getByRole('navigation', { name: '主导航' }).getByRole('link', { name: /^审批/ }).click();
  await page.getByRole('link', { name: '工作日历' }).click();
  await page.waitForURL(/\/approvals\/calendar$/);
  await page.getByRole('button', { name: '+ 添加日期' }).click();
  await page.getByLabel('第 1 行日期').fill(`${year}-10-01`);
  await page.getByLabel('第 1 行名称').fill('国庆节');
  await page.getByRole('button', { name: '+ 添加日期' }).click();
  await page.getByLabel('第 2 行日期').fill(`${year + 1}-01-01`);
  await page.getByRole('button', { name: '保存本年度' }).click();
  // A date of another year is refused and names its row; nothing is saved.
  await page.getByRole('alert').filter({ hasText: '第 2 行' }).waitFor();
  const stored = await (await apiSession(server.url, 'dangyuan'))('GET', `/api/calendar/${year}`);
  assert.deepEqual(stored.days, []);

  await page.getByRole('button', { name: '删除第 2 行' }).click();
  await page.getByLabel('第 1 行类型').selectOption('holiday');
  await page.getByRole('button', { name: '保存本年度' }).click();
  await page.getByText(`已保存 ${year} 年的工作日历`).first().waitFor();

  // A member reads the same year without controls.
  const member = await (await apiSession(server.url, 'dangyuan'))('GET', `/api/calendar/${year}`);
  assert.deepEqual(member.days, [{ day: `${year}-10-01`, kind: 'holiday', name: '国庆节' }]);
  const { page: reader, pageErrors: readerErrors } = await secondPage(t);
  await login(reader, server.url, 'dangyuan');
  await reader.getByRole('navigation', { name: '主导航' }).waitFor();
  await reader.goto(`${server.url}/approvals/calendar`);
  const row = reader.getByTestId('calendar').getByRole('row', { name: /国庆节/ });
  await row.waitFor();
  assert.match(await row.textContent(), /放假/);
  assert.equal(await reader.getByRole('button', { name: '保存本年度' }).count(), 0);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(readerErrors, []);
});
