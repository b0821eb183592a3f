// The exam page (start an attempt, answer against the server's clock,
// submit, see the result) and the certificate of a passed attempt.
//
// Routes: /learning/exams/{id} and /learning/certificates/{attemptId}.

import { api } from '../api.js';
import { announce, errorState, h, replace } from '../dom.js';
import { formatDate, formatDateMinutes, t } from '../i18n.js';
import { learningHeader } from './learning.js';

export function mountExam(outlet, context) {
  const examId = Number(context.params[0]);
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  replace(outlet, h('section', { class: 'page' }, learningHeader('home'), body));
  let countdown = null;
  let alive = true;

  async function load() {
    try {
      const exam = await api.get(`/api/learning/exams/${examId}`);
      if (alive) renderExam(exam);
    } catch (error) {
      if (alive) replace(body, errorState(error, load));
    }
  }

  function renderExam(exam) {
    clearInterval(countdown);
    const passed = exam.attempts.find((attempt) => attempt.passed);
    const used = exam.attempts.length;
    const start = h('button', { type: 'button', class: 'button button-primary', onclick: begin }, t('learn.startExam'));
    replace(
      body,
      h('a', { href: `/learning/courses/${exam.course_id}`, 'data-link': true }, `← ${exam.course_title}`),
      h('h2', {}, exam.title),
      h('p', {}, t('learn.examRules', { count: exam.question_count, minutes: Math.ceil(exam.duration_s / 60), pass: exam.pass_pct, attempts: exam.max_attempts, hours: exam.credit_hours })),
      exam.attempts.length
        ? h(
            'ul',
            {},
            exam.attempts.map((attempt) =>
              h(
                'li',
                {},
                t('learn.attemptLine', { number: attempt.number, score: attempt.score ?? '—', total: attempt.total }),
                ' ',
                attempt.passed ? h('a', { href: `/learning/certificates/${attempt.id}`, 'data-link': true }, t('learn.certificate')) : null,
              ),
            ),
          )
        : null,
      passed ? h('p', { class: 'tag' }, t('learn.examPassed')) : used >= exam.max_attempts ? h('p', { class: 'muted' }, t('learn.noAttemptsLeft')) : start,
    );
  }

  async function begin() {
    try {
      const attempt = await api.post(`/api/learning/exams/${examId}/attempts`);
      renderPaper(attempt);
    } catch (error) {
      announce(error.message, 'error');
    }
  }

  function renderPaper(attempt) {
    const clock = h('p', { class: 'learn-clock', 'aria-live': 'off' });
    const offset = Date.now() - attempt.started_at;
    const tick = () => {
      const left = Math.max(0, attempt.deadline_at - (Date.now() - offset));
      clock.textContent = t('learn.timeLeft', { minutes: Math.floor(left / 60000), seconds: String(Math.floor((left % 60000) / 1000)).padStart(2, '0') });
      if (left === 0) submit();
    };
    const form = h(
      'form',
      { class: 'learn-paper' },
      attempt.questions.map((question, index) => questionField(question, index)),
      h('button', { type: 'submit', class: 'button button-primary' }, t('learn.submitExam')),
    );
    let submitting = false;
    async function submit(event) {
      if (event) event.preventDefault();
      if (submitting) return;
      submitting = true;
      clearInterval(countdown);
      const answers = attempt.questions.map((question) => ({ question_id: question.id, answer: readAnswer(form, question) }));
      try {
        const result = await api.post(`/api/learning/attempts/${attempt.id}/submit`, { answers });
        announce(result.passed ? t('learn.resultPassed', result) : t('learn.resultFailed', result));
      } catch (error) {
        announce(error.message, 'error');
      }
      load();
    }
    form.addEventListener('submit', submit);
    replace(body, h('h2', {}, attempt.exam_title), clock, form);
    tick();
    countdown = setInterval(tick, 1000);
  }

  load();
  return {
    unmount() {
      alive = false;
      clearInterval(countdown);
    },
  };
}

function questionField(question, index) {
  const name = `q${question.id}`;
  const legend = h('legend', {}, `${index + 1}. ${question.stem} `, h('span', { class: 'muted' }, t('learn.points', { points: question.points })));
  const choice = (type, value, label) => h('label', { class: 'checkbox' }, h('input', { type, name, value }), label);
  let inputs;
  if (question.kind === 'single') inputs = question.options.map((option, i) => choice('radio', i, option));
  else if (question.kind === 'multiple') inputs = question.options.map((option, i) => choice('checkbox', i, option));
  else if (question.kind === 'true_false') inputs = [choice('radio', 'true', t('learn.true')), choice('radio', 'false', t('learn.false'))];
  else inputs = [h('input', { name, 'aria-label': question.stem })];
  return h('fieldset', { class: 'learn-question' }, legend, inputs);
}

function readAnswer(form, question) {
  const name = `q${question.id}`;
  const checked = [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((input) => input.value);
  switch (question.kind) {
    case 'single':
      return checked.length ? Number(checked[0]) : null;
    case 'multiple':
      return checked.map(Number);
    case 'true_false':
      return checked.length ? checked[0] === 'true' : null;
    default:
      return form.querySelector(`input[name="${name}"]`).value;
  }
}

export function mountCertificate(outlet, context) {
  const attemptId = Number(context.params[0]);
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  replace(outlet, h('section', { class: 'page' }, body));
  api.get(`/api/learning/attempts/${attemptId}`).then(
    (attempt) => {
      if (!attempt.passed) {
        replace(body, h('div', { class: 'empty-state' }, t('learn.noCertificate')));
        return;
      }
      replace(
        body,
        h(
          'article',
          { class: 'learn-certificate card' },
          h('h1', {}, t('learn.certificateTitle')),
          h('p', {}, t('learn.certificateText', { name: attempt.member_name, course: attempt.course_title, exam: attempt.exam_title })),
          h('p', {}, t('learn.certificateScore', { score: attempt.score, total: attempt.total, hours: attempt.credit_hours })),
          h('p', { class: 'muted' }, formatDate(attempt.submitted_at), ' · ', t('learn.certificateNumber', { id: attempt.id })),
        ),
        h('p', { class: 'muted' }, t('learn.submittedAt', { time: formatDateMinutes(attempt.submitted_at) })),
        h('button', { type: 'button', class: 'button', onclick: () => window.print() }, t('learn.print')),
      );
    },
    (error) => replace(body, errorState(error, null)),
  );
  return {};
}
