// Meetings, the record side: scheduling through the form, the list, and a
// leave request decided live by the host. The host opens a motion and an
// election, two members cast them, and every page shows the results after
// the close. The recorder writes the minutes and the host approves them.
//
// Demo accounts of 云溪市委机关党支部: shengwei (胡丽娟, secretary and
// host of the demo meetings), dy026 (邓玉兰, recorder), dy027 (李春花) and
// dy028 (孙军). 十二月支委会 next week is its committee's meeting.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiSession, launchBrowser, login, setup } from '../lib/harness.js';

const BRANCH = '云溪市委机关党支部';

/** Opens another browser for another person, closed after the test. */
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

/**
 * Joins the meeting's media from the page with a listen-only offer, as the
 * meeting room will, so the meeting goes live with the caller present. The
 * socket stays open in `window.dangwuTestMedia`.
 */
async function joinMedia(page, meetingId) {
  return page.evaluate(async (id) => {
    const socket = new WebSocket(`ws://${location.host}/ws?v=1`);
    await new Promise((resolve, reject) => {
      socket.addEventListener('open', resolve);
      socket.addEventListener('error', reject);
    });
    const peer = new RTCPeerConnection();
    peer.addTransceiver('audio', { direction: 'recvonly' });
    await peer.setLocalDescription(await peer.createOffer());
    const reply = new Promise((resolve) => {
      socket.addEventListener('message', (message) => {
        const data = JSON.parse(message.data);
        if (data.id === 'join') resolve(data);
      });
    });
    socket.send(JSON.stringify({ type: 'meeting_join', id: 'join', meeting_id: id, sdp: peer.localDescription.sdp }));
    const answer = await reply;
    window.dangwuTestMedia = { socket, peer };
    return answer.type;
  }, meetingId);
}

test('scheduling and a leave approved live', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  await login(page, server.url, 'shengwei');
  await page.getByRole('link', { name: '会议', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: '会议' }).waitFor();
  await page.getByRole('link', { name: '十二月支委会' }).waitFor();
  await page.getByRole('link', { name: /安排会议/ }).click();
  await page.waitForURL(/\/meetings\/new$/);

  const form = page.locator('form.meeting-form');
  await form.getByLabel('组织', { exact: true }).selectOption({ label: BRANCH });
  await form.getByLabel('会议类型').selectOption({ label: '党员大会' });
  await form.getByLabel('地点').fill('机关三楼会议室');
  await form.getByLabel('议程 1', { exact: true }).fill('表决年度工作总结');
  await form.getByLabel('主持人').selectOption({ label: '胡丽娟' });
  await form.getByLabel('记录人').selectOption({ label: '邓玉兰' });
  await form.getByLabel('搜索党员').fill('孙永刚');
  await form.getByRole('button', { name: '邀请 孙永刚（和平街道第一党支部）' }).click();
  await form.getByTestId('invitees').getByText('孙永刚').waitFor();

  // The server's error appears next to its field, and nothing typed is lost.
  await form.getByRole('button', { name: '安排会议并发送通知' }).click();
  const titleField = form.locator('.field', { has: page.locator('[name="title"]') });
  await titleField.locator('.field-error').waitFor();
  assert.equal(await form.getByLabel('地点').inputValue(), '机关三楼会议室');
  await form.getByLabel('会议名称').fill('年终党员大会');
  await form.getByRole('button', { name: '安排会议并发送通知' }).click();
  await page.waitForURL(/\/meetings\/\d+$/);
  await page.getByRole('heading', { level: 1, name: '年终党员大会' }).waitFor();
  await page.getByText('表决年度工作总结').waitFor();
  await page.getByTestId('participant').filter({ hasText: '孙永刚' }).waitFor();
  const meetingPath = new URL(page.url()).pathname;
  const icsHref = await page.getByRole('link', { name: '下载日历文件' }).getAttribute('href');
  const ics = await page.evaluate((href) => fetch(href).then((response) => response.text()), icsHref);
  assert.match(ics, /BEGIN:VCALENDAR/);
  assert.match(ics, /SUMMARY:年终党员大会/);
  assert.equal(await page.getByRole('link', { name: '进入会议室' }).getAttribute('href'), `${meetingPath}/room`);
  await markPage(page);

  const member = await secondPage(t);
  await login(member.page, server.url, 'dy028');
  await member.page.getByRole('link', { name: '会议', exact: true }).click();
  const row = member.page.getByTestId('meeting-row').filter({ hasText: '年终党员大会' });
  await row.waitFor();
  assert.match(await row.textContent(), /党员大会.*云溪市委机关党支部.*主持人：胡丽娟/);
  assert.match(await row.getByTestId('meeting-status').textContent(), /待召开/);
  await row.getByRole('link', { name: '年终党员大会' }).click();
  await member.page.waitForURL(new RegExp(`${meetingPath}$`));
  await member.page.getByRole('button', { name: '请假' }).click();
  const dialog = member.page.getByRole('dialog');
  await dialog.getByLabel('请假事由').fill('外出培训');
  await dialog.getByRole('button', { name: '请假' }).click();
  await member.page.getByTestId('leave-request').filter({ hasText: '请假待批' }).waitFor();
  await markPage(member.page);

  // The request arrives on the host's page without a reload; the host approves it.
  const request = page.getByTestId('leave-request').filter({ hasText: '孙军' });
  await request.getByText('外出培训').waitFor();
  await request.getByText('请假待批').waitFor();
  await request.getByRole('button', { name: '批准孙军请假', exact: true }).click();
  await request.getByText('请假已批准').waitFor();

  // The member's page follows live.
  await member.page.getByTestId('leave-request').filter({ hasText: '请假已批准' }).waitFor();
  await member.page.getByTestId('participant').filter({ hasText: '孙军' }).getByText('请假已批准').waitFor();
  await assertNotReloaded(page);
  await assertNotReloaded(member.page);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(member.pageErrors, []);
});

test('votes cast by two members', async (t) => {
  const { server, page, pageErrors } = await setup(t);
  const host = await apiSession(server.url, 'shengwei');
  const meetings = await host('GET', '/api/meetings');
  const meeting = meetings.items.find((item) => item.title === '十二月支委会');
  const meetingPath = `/meetings/${meeting.id}`;

  await login(page, server.url, 'shengwei');
  await page.getByRole('link', { name: '会议', exact: true }).waitFor();
  await page.goto(`${server.url}${meetingPath}`);
  await page.getByRole('heading', { level: 1, name: '十二月支委会' }).waitFor();
  await page.getByTestId('quorum').getByText('应到 3 人，实到 0 人。').waitFor();

  const voters = [];
  for (const username of ['dy026', 'dy027']) {
    const voter = await secondPage(t);
    await login(voter.page, server.url, username);
    await voter.page.getByRole('link', { name: '会议', exact: true }).waitFor();
    await voter.page.goto(`${server.url}${meetingPath}`);
    await voter.page.getByRole('heading', { level: 1, name: '十二月支委会' }).waitFor();
    voters.push(voter);
  }
  await markPage(page);

  // The host entering the media starts the meeting; the page follows live.
  assert.equal(await joinMedia(page, meeting.id), 'meeting_joined');
  await page.getByTestId('meeting-status').getByText('进行中').waitFor();
  await page.getByRole('button', { name: '标记邓玉兰到场' }).click();
  await page.getByRole('button', { name: '取消邓玉兰到场' }).waitFor();
  await page.getByRole('button', { name: '标记李春花到场' }).click();
  await page.getByRole('button', { name: '取消李春花到场' }).waitFor();
  // Marked in person too, so the election's four-fifths quorum does not
  // depend on the media connection staying up.
  await page.getByRole('button', { name: '标记胡丽娟到场' }).click();
  await page.getByRole('button', { name: '取消胡丽娟到场' }).waitFor();
  await page.getByTestId('quorum').getByText('已过半数').waitFor();

  await page.getByRole('button', { name: '发起表决' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('表决事项').fill('通过全年工作总结');
  await dialog.getByLabel('对应议程').selectOption({ label: '总结全年工作' });
  await dialog.getByRole('button', { name: '发起表决' }).click();
  await page.getByTestId('vote').filter({ hasText: '通过全年工作总结' }).getByText('已有 0 人投票').waitFor();

  for (const voter of voters) {
    const vote = voter.page.getByTestId('vote').filter({ hasText: '通过全年工作总结' });
    await vote.getByRole('button', { name: '赞成' }).click();
    await vote.getByText('您已投票').waitFor();
  }
  const hostVote = page.getByTestId('vote').filter({ hasText: '通过全年工作总结' });
  await hostVote.getByText('已有 2 人投票').waitFor();
  assert.equal(await hostVote.getByTestId('vote-result').count(), 0, 'counts stay hidden while the vote is open');

  await hostVote.getByRole('button', { name: '结束表决' }).click();
  const result = /赞成 2，反对 0，弃权 0（应到 3）：通过/;
  await hostVote.getByTestId('vote-result').getByText(result).waitFor();
  for (const voter of voters) {
    await voter.page.getByTestId('vote').filter({ hasText: '通过全年工作总结' }).getByTestId('vote-result').getByText(result).waitFor();
    await voter.page.getByTestId('vote').getByText('邓玉兰：赞成；李春花：赞成').waitFor();
  }

  // An election by secret ballot: one seat, two candidates.
  await page.getByRole('button', { name: '发起表决' }).click();
  await dialog.getByLabel('表决类型').selectOption({ label: '选举' });
  await dialog.getByLabel('表决事项').fill('增补支部委员');
  await dialog.getByLabel('表决方式').selectOption({ label: '无记名投票' });
  await dialog.getByLabel('应选人数').fill('1');
  await dialog.getByLabel('邓玉兰').check();
  await dialog.getByLabel('李春花').check();
  await dialog.getByRole('button', { name: '发起表决' }).click();
  for (const voter of voters) {
    const election = voter.page.getByTestId('vote').filter({ hasText: '增补支部委员' });
    await election.getByLabel('李春花').check();
    await election.getByRole('button', { name: '投票' }).click();
    await election.getByText('您已投票').waitFor();
  }
  const hostElection = page.getByTestId('vote').filter({ hasText: '增补支部委员' });
  await hostElection.getByText('已有 2 人投票').waitFor();
  await hostElection.getByRole('button', { name: '结束表决' }).click();
  await hostElection.getByTestId('vote-result').getByText('邓玉兰 0 票；李春花 2 票 当选 · 选出').waitFor();
  await voters[1].page.getByTestId('vote').filter({ hasText: '增补支部委员' }).getByText('李春花 2 票 当选').waitFor();

  // The recorder saves the minutes, which reach the host's page live for approval.
  const recorder = voters[0].page;
  await recorder.getByRole('textbox', { name: '编辑纪要' }).fill('会议表决通过全年工作总结。');
  await recorder.getByRole('button', { name: '保存纪要' }).click();
  await page.getByTestId('minutes').getByText('会议表决通过全年工作总结。').waitFor();
  await page.getByRole('button', { name: '批准纪要' }).click();
  await recorder.getByText('胡丽娟 已批准').waitFor();
  assert.equal(await recorder.getByRole('button', { name: '保存纪要' }).count(), 0, 'approved minutes are frozen');
  await assertNotReloaded(page);
  assert.deepEqual(pageErrors, []);
  for (const voter of voters) assert.deepEqual(voter.pageErrors, []);
});
