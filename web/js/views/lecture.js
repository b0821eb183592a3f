// The live lecture page (直播党课): the lecture's meeting in lecture mode,
// with questions, raised hands and the floor, quick polls, chat and study
// time (docs/protocol.md, "Live lectures"). Viewers watch receive-only.
// Presenters publish their camera and microphone and run the lecture, and
// presenters and organizers also get the dashboard.
//
// Route: /learning/lectures/{id}.

import { api } from '../api.js';
import { announce, errorState, h, replace } from '../dom.js';
import { hub } from '../hub.js';
import { t } from '../i18n.js';
import { session as currentSession } from '../session.js';
import { RoomConnection, RoomState } from './roomconnection.js';
import { showAttentionCheck } from './lesson.js';
import { createChat } from './roompanels.js';

/** Interval between study reports, in milliseconds. */
const REPORT_MS = 1000;

export function mountLecture(outlet, context) {
  const lessonId = Number(context.params[0]);
  const body = h('div', { class: 'card-body' }, h('p', { class: 'muted' }, t('common.loading')));
  replace(outlet, h('section', { class: 'page lecture' }, body));

  let lecture = null;
  let connection = null;
  let localStream = null;
  let floorSender = null;
  let studyNonce = null;
  let studySeq = 0;
  let studyTimer = null;
  let unsubscribe = null;
  let alive = true;
  const removers = [];
  const participants = new Map();
  const tiles = new Map();

  const stage = h('div', { class: 'lecture-stage', 'data-testid': 'lecture-stage' });
  const stateLine = h('p', { class: 'muted', 'aria-live': 'polite', 'data-testid': 'lecture-state' });
  const stats = h('p', { class: 'lecture-stats', 'data-testid': 'lecture-stats' });
  const studyLine = h('p', { class: 'learn-status', 'aria-live': 'polite', 'data-testid': 'study-status' });
  const credited = h('p', { class: 'learn-credited', 'data-testid': 'lecture-credited' });
  const controls = h('div', { class: 'lecture-controls' });
  const questionList = h('ol', { class: 'lecture-questions', 'data-testid': 'lecture-questions' });
  const pollList = h('div', { class: 'lecture-polls', 'data-testid': 'lecture-polls' });
  const handList = h('ul', { class: 'lecture-hands', 'data-testid': 'lecture-hands' });
  const dashboard = h('dl', { class: 'lecture-dashboard', 'data-testid': 'lecture-dashboard' });
  const chat = createChat(async (text) => {
    if (!connection || connection.state !== RoomState.joined) throw new Error(t('room.chatNeedsRoom'));
    await connection.call('meeting_chat', { text }, t('room.offline'));
  });

  const me = () => currentSession.account && currentSession.account.id;
  const staff = () => lecture && lecture.role !== 'viewer';
  const presenter = () => lecture && lecture.role === 'presenter';

  async function load() {
    try {
      lecture = await api.get(`/api/learning/lectures/${lessonId}`);
    } catch (error) {
      replace(body, errorState(error, load));
      return;
    }
    if (!alive) return;
    render();
  }

  function render() {
    const names = [lecture.lecturer, ...lecture.co_presenters].map((p) => p.name).join('、');
    const back = h('a', { href: `/learning/courses/${lecture.course_id}`, 'data-link': true }, `← ${t('learn.backToCourse')}`);
    const when = new Date(lecture.starts_at).toLocaleString();
    const ended = lecture.ended_at !== null;
    credited.textContent = lecture.credited
      ? t('lecture.credited', { minutes: Math.floor(lecture.counted_s / 60) })
      : ended
        ? t('lecture.notCredited', { minutes: Math.floor(lecture.counted_s / 60) })
        : '';
    const side = [
      section(t('lecture.questions'), questionForm(), questionList),
      section(t('lecture.polls'), presenter() ? pollForm() : null, pollList),
      section(t('room.panel.chat'), chat.element),
    ];
    if (staff()) side.unshift(section(t('lecture.dashboard'), dashboard), section(t('lecture.hands'), handList));
    replace(
      body,
      back,
      h('h1', {}, lecture.title),
      h('p', { class: 'muted' }, t('lecture.facts', { when, names, role: t(`lecture.role.${lecture.role}`) })),
      credited,
      ended ? null : controls,
      stateLine,
      stats,
      studyLine,
      h('div', { class: 'lecture-layout' }, stage, h('div', { class: 'lecture-side' }, ...side)),
    );
    renderQuestions(lecture.questions);
    renderPolls();
    if (!ended) renderControls();
  }

  function section(title, ...children) {
    return h('section', { class: 'lecture-section' }, h('h2', {}, title), ...children);
  }

  function renderControls() {
    const joined = connection && connection.state === RoomState.joined;
    const buttons = [];
    if (!joined) {
      buttons.push(h('button', { type: 'button', class: 'button button-primary', 'data-testid': 'lecture-join', onclick: join }, presenter() ? t('lecture.startPresenting') : t('lecture.watch')));
    } else {
      if (!presenter()) {
        const raised = participants.get(me())?.hand_raised_at;
        buttons.push(h('button', { type: 'button', class: 'button', onclick: () => connection.request('meeting_hand', { raised: !raised }) }, raised ? t('room.lowerHand') : t('room.raiseHand')));
      }
      buttons.push(h('button', { type: 'button', class: 'button', onclick: leave }, t('lecture.leave')));
      if (lecture.lecturer.account_ids.includes(me())) {
        buttons.push(h('button', { type: 'button', class: 'button button-danger', 'data-testid': 'lecture-end', onclick: end }, t('lecture.end')));
      }
    }
    replace(controls, ...buttons);
  }

  async function join() {
    connection = new RoomConnection(lecture.meeting_id, {
      onState,
      onMessage,
      onTrack,
      onTrackEnded: ({ participant, mid }) => removeTile(`${participant}-${mid}`),
      onError: (error) => announce(error.message || String(error), 'error'),
    });
    let microphone = null;
    let camera = null;
    if (presenter()) {
      try {
        localStream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
        [microphone] = localStream.getAudioTracks();
        [camera] = localStream.getVideoTracks();
        const preview = h('video', { class: 'lecture-video lecture-self', autoplay: true, muted: true, playsinline: true });
        preview.srcObject = localStream;
        tiles.set('self', preview);
        stage.prepend(preview);
      } catch (error) {
        announce(t('lecture.noDevices', { message: error.message }), 'error');
        return;
      }
    }
    stateLine.textContent = t('lecture.joining');
    await connection.join({ microphone, camera });
  }

  function onState(state, message) {
    if (state === RoomState.joined) {
      const snapshot = message.snapshot;
      participants.clear();
      for (const entry of snapshot.participants) participants.set(entry.account_id, entry);
      if (snapshot.lecture) showStats(snapshot.lecture);
      stateLine.textContent = t('lecture.live');
      if (presenter()) connection.reportMedia({ microphone: true, camera: true, screen: false });
      if (!unsubscribe) {
        unsubscribe = hub.subscribe(`meeting:${lecture.meeting_id}`, { onEvent: onMeetingEvent, onReset: () => {} }, { since: snapshot.seq });
      }
      startStudy();
      renderHands();
    } else if (state === RoomState.left) {
      stopStudy();
      if (message.reason === 'ended') {
        stateLine.textContent = t('lecture.ended');
        setTimeout(load, 500);
      } else if (message.reason === 'error' && message.error) {
        stateLine.textContent = message.error.message;
      } else {
        stateLine.textContent = t('lecture.left');
      }
    }
    renderControls();
  }

  function onMessage(message) {
    switch (message.type) {
      case 'meeting_participant':
        participants.set(message.participant.account_id, message.participant);
        renderHands();
        if (message.participant.account_id === me()) renderControls();
        break;
      case 'meeting_participant_left':
        participants.delete(message.account_id);
        renderHands();
        break;
      case 'lecture_stats':
        showStats(message.stats);
        break;
      case 'lecture_dashboard':
        showDashboard(message.dashboard);
        break;
      case 'lecture_floor':
        onFloor(message.account_id);
        break;
      case 'lecture_question':
        upsert(lecture.questions, message.question);
        renderQuestions(lecture.questions);
        break;
      case 'lecture_poll':
        upsertPoll(message.poll);
        break;
      default:
    }
  }

  function onMeetingEvent(event) {
    if (event.kind === 'chat.message') chat.add(event);
  }

  function onTrack({ participant, mid, track }) {
    const key = `${participant}-${mid}`;
    const element = track.kind === 'video'
      ? h('video', { class: 'lecture-video', autoplay: true, playsinline: true, muted: true, 'data-testid': 'lecture-video' })
      : h('audio', { autoplay: true });
    element.srcObject = new MediaStream([track]);
    removeTile(key);
    tiles.set(key, element);
    stage.append(element);
  }

  function removeTile(key) {
    const element = tiles.get(key);
    if (!element) return;
    element.srcObject = null;
    element.remove();
    tiles.delete(key);
  }

  function showStats(next) {
    if (lecture.floor !== next.floor) {
      lecture.floor = next.floor;
      renderHands();
    }
    stats.textContent = t('lecture.stats', { viewers: next.viewers, hands: next.hands });
  }

  function showDashboard(data) {
    const rows = [
      ['lecture.dash.viewers', data.viewers],
      ['lecture.dash.connected', data.connected],
      ['lecture.dash.counting', data.counting],
      ['lecture.dash.checks', t('lecture.dash.checksValue', { sent: data.checks_sent, passed: data.checks_passed, missed: data.checks_missed })],
      ['lecture.dash.questions', t('lecture.dash.questionsValue', { open: data.open_questions, all: data.questions })],
    ];
    replace(dashboard, ...rows.flatMap(([key, value]) => [h('dt', {}, t(key)), h('dd', {}, String(value))]));
  }

  function renderHands() {
    if (!staff()) return;
    const raised = [...participants.values()].filter((p) => p.hand_raised_at).sort((a, b) => a.hand_raised_at - b.hand_raised_at);
    const floorHolder = participants.get(lecture.floor);
    const items = raised.map((p) =>
      h('li', {}, p.name, presenter() ? h('button', { type: 'button', class: 'button button-small', onclick: () => setFloor(p.account_id) }, t('lecture.giveFloor')) : null),
    );
    if (floorHolder && presenter()) {
      items.unshift(h('li', {}, t('lecture.hasFloor', { name: floorHolder.name }), h('button', { type: 'button', class: 'button button-small', onclick: () => setFloor(null) }, t('lecture.takeFloor'))));
    }
    replace(handList, ...(items.length ? items : [h('li', { class: 'muted' }, t('lecture.noHands'))]));
  }

  async function setFloor(accountId) {
    try {
      await api.post(`/api/learning/lectures/${lessonId}/floor`, { account_id: accountId });
    } catch (error) {
      announce(error.message, 'error');
    }
  }

  async function onFloor(accountId) {
    lecture.floor = accountId;
    renderHands();
    if (presenter() || !connection || !connection.peer) return;
    if (accountId === me() && !floorSender) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        const [track] = stream.getAudioTracks();
        floorSender = connection.peer.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
        await connection.offer();
        announce(t('lecture.youHaveFloor'));
      } catch (error) {
        announce(t('lecture.noDevices', { message: error.message }), 'error');
      }
    } else if (accountId !== me() && floorSender) {
      floorSender.sender.track?.stop();
      connection.peer.removeTrack(floorSender.sender);
      floorSender = null;
      await connection.offer();
      announce(t('lecture.floorTaken'));
    }
  }

  function questionForm() {
    const input = h('textarea', { name: 'question', rows: 2, maxlength: 500, 'aria-label': t('lecture.askLabel'), 'data-testid': 'lecture-question-input' });
    return h(
      'form',
      {
        class: 'lecture-form',
        onsubmit: async (event) => {
          event.preventDefault();
          const text = input.value.trim();
          if (!text) return;
          try {
            const question = await api.post(`/api/learning/lectures/${lessonId}/questions`, { text });
            upsert(lecture.questions, question);
            renderQuestions(lecture.questions);
            input.value = '';
          } catch (error) {
            announce(error.message, 'error');
          }
        },
      },
      input,
      h('button', { type: 'submit', class: 'button', 'data-testid': 'lecture-ask' }, t('lecture.ask')),
    );
  }

  function renderQuestions(questions) {
    const items = questions.map((q) =>
      h(
        'li',
        { class: q.answered_at ? 'lecture-question answered' : 'lecture-question' },
        h('strong', {}, q.author_name),
        ' ',
        h('span', {}, q.text),
        q.answered_at ? h('span', { class: 'tag' }, t('lecture.answered')) : null,
        !q.answered_at && staff()
          ? h('button', { type: 'button', class: 'button button-small', onclick: () => api.post(`/api/learning/lectures/${lessonId}/questions/${q.id}/answered`, {}).catch((e) => announce(e.message, 'error')) }, t('lecture.markAnswered'))
          : null,
      ),
    );
    replace(questionList, ...items);
  }

  function pollForm() {
    const question = h('input', { name: 'poll-question', maxlength: 200, 'aria-label': t('lecture.pollQuestion') });
    const options = h('textarea', { name: 'poll-options', rows: 3, 'aria-label': t('lecture.pollOptions'), placeholder: t('lecture.pollOptionsHint') });
    return h(
      'form',
      {
        class: 'lecture-form',
        onsubmit: async (event) => {
          event.preventDefault();
          try {
            const lines = options.value.split('\n').map((line) => line.trim()).filter(Boolean);
            const poll = await api.post(`/api/learning/lectures/${lessonId}/polls`, { question: question.value, options: lines });
            upsertPoll(poll);
            question.value = '';
            options.value = '';
          } catch (error) {
            announce(error.message, 'error');
          }
        },
      },
      question,
      options,
      h('button', { type: 'submit', class: 'button' }, t('lecture.openPoll')),
    );
  }

  function upsertPoll(poll) {
    const known = lecture.polls.find((p) => p.id === poll.id);
    const mine = known ? known.my_choice : null;
    upsert(lecture.polls, { ...poll, my_choice: poll.my_choice ?? mine });
    lecture.polls.sort((a, b) => b.id - a.id);
    renderPolls();
  }

  function renderPolls() {
    const cards = lecture.polls.map((poll) => {
      const answered = poll.my_choice !== null && poll.my_choice !== undefined;
      const showResults = answered || staff() || poll.closed;
      const rows = poll.options.map((option, index) => {
        if (!showResults) {
          return h('button', { type: 'button', class: 'button', 'data-testid': 'lecture-poll-option', onclick: () => answerPoll(poll, index) }, option);
        }
        const count = poll.counts[index] || 0;
        const share = poll.total ? Math.round((count * 100) / poll.total) : 0;
        return h('p', { class: index === poll.my_choice ? 'lecture-poll-row mine' : 'lecture-poll-row' }, `${option}：${count}（${share}%）`);
      });
      return h(
        'div',
        { class: 'lecture-poll', 'data-testid': 'lecture-poll' },
        h('p', {}, h('strong', {}, poll.question), poll.closed ? h('span', { class: 'tag' }, t('lecture.pollClosed')) : null),
        ...rows,
        h('p', { class: 'muted', 'data-testid': 'lecture-poll-total' }, t('lecture.pollTotal', { total: poll.total })),
        presenter() && !poll.closed
          ? h('button', { type: 'button', class: 'button button-small', onclick: () => api.post(`/api/learning/lectures/${lessonId}/polls/${poll.id}/close`, {}).catch((e) => announce(e.message, 'error')) }, t('lecture.closePoll'))
          : null,
      );
    });
    replace(pollList, ...cards);
  }

  async function answerPoll(poll, choice) {
    try {
      upsertPoll(await api.post(`/api/learning/lectures/${lessonId}/polls/${poll.id}/answer`, { choice }));
    } catch (error) {
      announce(error.message, 'error');
    }
  }

  function upsert(list, item) {
    const index = list.findIndex((entry) => entry.id === item.id);
    if (index >= 0) list[index] = item;
    else list.push(item);
  }

  async function startStudy() {
    if (presenter() || studyNonce || !currentSession.account?.member_id) return;
    try {
      const started = await hub.request({ type: 'study_start', lesson_id: lessonId, position: 0, visible: document.visibilityState === 'visible' });
      studyNonce = started.nonce;
      studySeq = 0;
      studyTimer = setInterval(report, REPORT_MS);
    } catch (error) {
      studyLine.textContent = error.message;
    }
  }

  function stopStudy() {
    clearInterval(studyTimer);
    studyTimer = null;
    if (studyNonce) hub.send({ type: 'study_stop', lesson_id: lessonId, nonce: studyNonce });
    studyNonce = null;
  }

  async function report() {
    if (!studyNonce || !alive) return;
    studySeq += 1;
    const visible = document.visibilityState === 'visible';
    try {
      const ack = await hub.request({ type: 'study_progress', lesson_id: lessonId, nonce: studyNonce, seq: studySeq, position: studySeq, playing: true, visible });
      studyLine.textContent = `${t(`learn.status.${ack.status}`)} · ${t('lecture.countedMinutes', { minutes: Math.floor(ack.counted / 60) })}`;
    } catch (error) {
      if (error.code === 'study_paused' || error.code === 'study_not_active' || error.code === 'lecture_ended') {
        studyNonce = null;
        clearInterval(studyTimer);
      }
      studyLine.textContent = error.message;
    }
  }

  function onCheck(message) {
    if (message.lesson_id !== lessonId || !studyNonce) return;
    showAttentionCheck(lessonId, studyNonce, message);
  }

  function leave() {
    stopStudy();
    if (connection) connection.leave();
    releaseDevices();
    renderControls();
  }

  async function end() {
    try {
      await api.post(`/api/meetings/${lecture.meeting_id}/live/end`, {});
    } catch (error) {
      announce(error.message, 'error');
    }
  }

  function releaseDevices() {
    if (localStream) for (const track of localStream.getTracks()) track.stop();
    localStream = null;
    if (floorSender) floorSender.sender.track?.stop();
    floorSender = null;
    for (const key of [...tiles.keys()]) removeTile(key);
  }

  function onStudyStopped(message) {
    if (message.lesson_id !== lessonId) return;
    studyNonce = null;
    clearInterval(studyTimer);
  }

  removers.push(hub.onMessageOfType('study_check', onCheck));
  removers.push(hub.onMessageOfType('study_stopped', onStudyStopped));
  load();
  return {
    unmount() {
      alive = false;
      stopStudy();
      for (const remove of removers) remove();
      if (unsubscribe) unsubscribe();
      if (connection) connection.dispose();
      releaseDevices();
    },
  };
}
