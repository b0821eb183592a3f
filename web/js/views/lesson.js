// The lesson player: a video, a reading text or a PDF file shown by the
// browser's own viewer in a same-origin frame, with study time reported
// over the hub (docs/protocol.md, "Learning: study time"). The server
// decides what counts; this page only reports what the person does.
//
// Route: /learning/lessons/{id}.

import { api } from '../api.js';
import { announce, errorState, h, openDialog, replace } from '../dom.js';
import { hub } from '../hub.js';
import { t } from '../i18n.js';
import { formatHours } from './learning.js';

/** Interval between progress reports, in milliseconds. */
const REPORT_MS = 1000;

export function mountLesson(outlet, context) {
  const lessonId = Number(context.params[0]);
  const body = h('div', { class: 'card-body' }, h('p', { class: 'muted' }, t('common.loading')));
  replace(outlet, h('section', { class: 'page' }, body));

  let lesson = null;
  let media = null;
  let reading = { seconds: 0 };
  let session = null;
  let seq = 0;
  let timer = null;
  let playedSinceReport = false;
  let alive = true;
  const removers = [];
  const status = h('p', { class: 'learn-status', 'aria-live': 'polite', 'data-testid': 'study-status' });
  const counted = h('strong', { 'data-testid': 'study-counted' });
  const credited = h('p', { class: 'learn-credited', hidden: true, 'data-testid': 'study-credited' });
  const startButton = h('button', { type: 'button', class: 'button button-primary', onclick: () => begin(true) }, t('learn.startStudy'));

  async function load() {
    try {
      lesson = await api.get(`/api/learning/lessons/${lessonId}`);
    } catch (error) {
      replace(body, errorState(error, load));
      return;
    }
    if (!alive) return;
    render();
    removers.push(hub.onMessageOfType('study_check', onCheck));
    removers.push(hub.onMessageOfType('study_paused', onPaused));
    removers.push(hub.onStatus((connected) => connected && session && begin(false)));
    document.addEventListener('visibilitychange', onVisibility);
    timer = setInterval(report, REPORT_MS);
  }

  function render() {
    const back = h('a', { href: `/learning/courses/${lesson.course_id}`, 'data-link': true }, `← ${t('learn.backToCourse')}`);
    const facts = h('p', { class: 'muted' }, t('learn.lessonFacts', { hours: lesson.credit_hours, rate: lesson.max_rate }));
    let content;
    if (lesson.kind === 'video') {
      media = h('video', { controls: true, preload: 'metadata', class: 'learn-video', src: `/api/learning/lessons/${lessonId}/video`, 'data-testid': 'lesson-video' });
      media.addEventListener('loadedmetadata', () => {
        const resume = Math.min(lesson.position_s, lesson.watched_until_s);
        if (resume > 0 && resume < media.duration) media.currentTime = resume;
      });
      media.addEventListener('ratechange', () => {
        if (media.playbackRate > lesson.max_rate) {
          media.playbackRate = lesson.max_rate;
          announce(t('learn.rateCapped', { rate: lesson.max_rate }));
        }
      });
      media.addEventListener('playing', () => {
        playedSinceReport = true;
        if (!session) begin(false);
      });
      media.addEventListener('ended', () => {
        playedSinceReport = true;
        report();
      });
      content = media;
    } else if (lesson.has_pdf) {
      const src = `/api/learning/lessons/${lessonId}/pdf`;
      content = h(
        'div',
        {},
        h('iframe', { src, title: lesson.title, class: 'learn-pdf', 'data-testid': 'lesson-pdf' }),
        h('p', {}, h('a', { href: src, target: '_blank', rel: 'noopener' }, t('learn.openPdf'))),
      );
    } else {
      content = h('article', { class: 'learn-reading rich-text' });
      content.innerHTML = lesson.body_html;
    }
    const notes = lesson.kind === 'video' && lesson.body_html ? h('article', { class: 'rich-text' }) : null;
    if (notes) notes.innerHTML = lesson.body_html;
    replace(
      body,
      back,
      h('h1', {}, lesson.title),
      facts,
      content,
      notes,
      h('div', { class: 'learn-study-bar' }, startButton, h('span', {}, t('learn.counted'), ' ', counted), status),
      credited,
    );
    showProgress(lesson.watched_until_s);
    if (lesson.completed) showCompleted(null);
  }

  function showProgress(seconds) {
    counted.textContent = t('learn.progressOf', { done: Math.floor(seconds), total: Math.round(lesson.duration_s) });
  }

  function showCompleted(hours) {
    credited.hidden = false;
    credited.textContent = hours ? t('learn.creditedNow', { hours: formatHours(hours) }) : t('learn.lessonDone');
  }

  /** Starts (or restarts) the study session; with `play`, also plays the video. */
  async function begin(play) {
    const position = media ? media.currentTime : reading.seconds;
    try {
      const started = await hub.request({ type: 'study_start', lesson_id: lessonId, position, visible: document.visibilityState === 'visible' });
      session = started.nonce;
      seq = 0;
      startButton.hidden = true;
      status.textContent = t('learn.studying');
      if (!media) reading.seconds = Math.min(started.watched_until, started.duration);
      if (play && media) await media.play();
    } catch (error) {
      status.textContent = error.message;
    }
  }

  async function report() {
    if (!session || !alive) return;
    const visible = document.visibilityState === 'visible';
    let position;
    let playing;
    if (media) {
      position = media.currentTime;
      playing = playedSinceReport || !media.paused;
      playedSinceReport = !media.paused;
    } else {
      if (visible) reading.seconds = Math.min(reading.seconds + REPORT_MS / 1000, lesson.duration_s);
      position = reading.seconds;
      playing = visible;
    }
    seq += 1;
    try {
      const ack = await hub.request({ type: 'study_progress', lesson_id: lessonId, nonce: session, seq, position, playing, visible });
      showProgress(ack.watched_until);
      status.textContent = t(`learn.status.${ack.status}`);
      if (ack.credited_hours) {
        showCompleted(ack.credited_hours);
        announce(t('learn.creditedNow', { hours: formatHours(ack.credited_hours) }));
      } else if (ack.completed && credited.hidden) {
        showCompleted(null);
      }
    } catch (error) {
      if (error.code === 'study_paused' || error.code === 'study_not_active') onPaused();
      else status.textContent = error.message;
    }
  }

  function onVisibility() {
    if (document.visibilityState === 'hidden' && media && !media.paused) media.pause();
  }

  function onPaused() {
    session = null;
    if (media && !media.paused) media.pause();
    startButton.hidden = false;
    startButton.textContent = t('learn.continueHere');
    status.textContent = t('learn.pausedElsewhere');
  }

  function onCheck(message) {
    if (message.lesson_id !== lessonId || !session) return;
    showAttentionCheck(lessonId, session, message);
  }

  load();
  return {
    unmount() {
      alive = false;
      clearInterval(timer);
      for (const remove of removers) remove();
      document.removeEventListener('visibilitychange', onVisibility);
      if (session) hub.send({ type: 'study_stop', lesson_id: lessonId, nonce: session });
      if (media) media.pause();
    },
  };
}

/**
 * Shows an attention check (`study_check`) and sends the answer of the
 * session with `nonce` when the person confirms it; the live lecture page
 * uses it too.
 */
export function showAttentionCheck(lessonId, nonce, message) {
  openDialog(t('learn.checkTitle'), (close) =>
    h(
      'div',
      { class: 'dialog-body' },
      h('p', {}, t('learn.checkBody')),
      h('p', { class: 'learn-check-code' }, message.code),
      h(
        'div',
        { class: 'dialog-actions' },
        h(
          'button',
          {
            type: 'button',
            class: 'button button-primary',
            autofocus: true,
            onclick: async () => {
              try {
                await hub.request({ type: 'study_check_answer', lesson_id: lessonId, nonce, check_id: message.check_id, code: message.code });
                close(true);
              } catch (error) {
                announce(error.message, 'error');
              }
            },
          },
          t('learn.checkConfirm'),
        ),
      ),
    ),
  );
}
