// One course: its lessons with the caller's progress, and its exams.
// Organizers also get forms to add, edit and delete lessons, upload videos
// and PDF files, assign the course, add questions and create exams. The page reloads on each event of
// the `course:ID` hub topic.
//
// Route: /learning/courses/{id}.

import { api, uploadBody, query } from '../api.js';
import { announce, confirmDialog, dialogForm, errorState, field, h, openDialog, replace } from '../dom.js';
import { hub } from '../hub.js';
import { formatDate, t } from '../i18n.js';
import { learningHeader } from './learning.js';

export function mountCourse(outlet, context) {
  const courseId = Number(context.params[0]);
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  replace(outlet, h('section', { class: 'page' }, learningHeader('home'), body));
  let unsubscribe = null;
  let alive = true;

  async function load() {
    let course;
    try {
      course = await api.get(`/api/learning/courses/${courseId}`);
    } catch (error) {
      if (alive) replace(body, errorState(error, load));
      return;
    }
    if (!alive) return;
    render(course);
    if (!unsubscribe) {
      unsubscribe = hub.subscribe(`course:${courseId}`, { onEvent: load, onReset: load }, { since: course.seq });
    }
  }

  function render(course) {
    const lessons = h(
      'ol',
      { class: 'learn-lessons' },
      course.lessons.map((lesson) =>
        h(
          'li',
          {},
          h('a', { href: lesson.kind === 'live' ? `/learning/lectures/${lesson.id}` : `/learning/lessons/${lesson.id}`, 'data-link': true }, lesson.title),
          ' ',
          h('span', { class: 'muted' }, t('learn.lessonLine', { kind: t(`learn.kind.${lesson.kind}`), minutes: Math.ceil(lesson.duration_s / 60), hours: lesson.credit_hours })),
          lesson.completed ? h('span', { class: 'tag' }, t('learn.done')) : null,
          course.can_manage ? lessonActions(lesson, course.lessons.length) : null,
        ),
      ),
    );
    const exams = course.exams.map((exam) =>
      h('li', {}, h('a', { href: `/learning/exams/${exam.id}`, 'data-link': true }, exam.title), ' ', h('span', { class: 'muted' }, t('learn.examLine', exam))),
    );
    replace(
      body,
      h('h2', {}, course.title, ' ', h('span', { class: 'tag' }, t(`learn.category.${course.category}`))),
      h('p', { class: 'muted' }, course.org_name, course.deadline_at ? ` · ${t('learn.deadline', { date: formatDate(course.deadline_at) })}` : ''),
      course.summary ? h('p', {}, course.summary) : null,
      h('section', { class: 'card' }, h('header', { class: 'card-header' }, h('h3', { class: 'card-title' }, t('learn.lessons'))), h('div', { class: 'card-body' }, course.lessons.length ? lessons : h('p', { class: 'muted' }, t('learn.noLessons')))),
      h('section', { class: 'card' }, h('header', { class: 'card-header' }, h('h3', { class: 'card-title' }, t('learn.exams'))), h('div', { class: 'card-body' }, exams.length ? h('ul', {}, exams) : h('p', { class: 'muted' }, t('learn.noExams')))),
      course.can_manage ? organizerTools(course) : null,
    );
  }

  function organizerTools(course) {
    const button = (label, open) => h('button', { type: 'button', class: 'button', onclick: open }, label);
    return h(
      'div',
      { class: 'learn-tools' },
      button(t('learn.addLesson'), () => addLesson()),
      button(t('lecture.add'), () => addLecture(course)),
      button(t('learn.assign'), () => assign()),
      button(t('learn.addQuestion'), () => addQuestion()),
      button(t('learn.createExam'), () => createExam()),
    );
  }

  function lessonActions(lesson, count) {
    const small = (label, onclick) => h('button', { type: 'button', class: 'button button-small', onclick }, label);
    return h(
      'span',
      { class: 'learn-lesson-actions' },
      small(t('learn.editLesson'), () => editLesson(lesson, count)),
      small(t('learn.deleteLesson'), () => deleteLesson(lesson)),
      lesson.kind === 'video' ? uploadButton(lesson) : null,
      lesson.kind === 'reading' ? pdfButton(lesson) : null,
    );
  }

  function uploadButton(lesson) {
    const input = h('input', { type: 'file', accept: 'video/webm,video/mp4', class: 'visually-hidden', 'aria-label': t('learn.uploadVideo') });
    input.addEventListener('change', async () => {
      const file = input.files[0];
      if (!file) return;
      const duration = await measureDuration(file);
      try {
        await uploadBody(`/api/learning/lessons/${lesson.id}/video${query({ name: file.name, duration_s: duration })}`, file).promise;
        announce(t('learn.videoStored'));
      } catch (error) {
        announce(error.message, 'error');
      }
    });
    return h('label', { class: 'button button-small' }, input, lesson.has_video ? t('learn.replaceVideo') : t('learn.uploadVideo'));
  }

  function pdfButton(lesson) {
    const label = lesson.has_pdf ? t('learn.replacePdf') : t('learn.uploadPdf');
    const input = h('input', { type: 'file', accept: 'application/pdf,.pdf', class: 'visually-hidden', 'aria-label': label, 'data-testid': `lesson-pdf-${lesson.id}` });
    input.addEventListener('change', async () => {
      const file = input.files[0];
      if (!file) return;
      try {
        await uploadBody(`/api/learning/lessons/${lesson.id}/pdf${query({ name: file.name })}`, file).promise;
        announce(t('learn.pdfStored'));
      } catch (error) {
        announce(error.message, 'error');
      }
    });
    return h('label', { class: 'button button-small' }, input, label);
  }

  function editLesson(lesson, count) {
    const title = h('input', { name: 'title', required: true, value: lesson.title });
    const position = h('input', { name: 'position', type: 'number', min: 1, max: count, value: lesson.position });
    const minutes = h('input', { name: 'duration_s', type: 'number', min: 1, value: Math.round(lesson.duration_s / 60) || 1 });
    const hours = h('input', { name: 'credit_hours', type: 'number', step: '0.25', min: 0, value: lesson.credit_hours });
    const text = h('textarea', { name: 'body_html', rows: 6 });
    text.value = lesson.body_html;
    openDialog(t('learn.editLessonTitle'), (close) =>
      dialogForm(
        close,
        [
          field(t('learn.lessonTitle'), title),
          field(t('learn.position'), position),
          field(t('learn.minutes'), minutes),
          field(t('learn.creditHours'), hours, t('learn.creditEditHint')),
          field(t('learn.text'), text),
        ],
        t('common.save'),
        () => {
          const input = { title: title.value, position: Number(position.value), body_html: text.value };
          const seconds = Math.round(Number(minutes.value) * 60);
          // An uploaded video's measured length stays unless the organizer changes the minutes.
          if (Math.round(lesson.duration_s / 60) !== Number(minutes.value)) input.duration_s = seconds;
          if (hours.value === '') input.credit_by_length = true;
          else if (Number(hours.value) !== lesson.credit_hours) input.credit_hours = Number(hours.value);
          return api.patch(`/api/learning/lessons/${lesson.id}`, input);
        },
      ),
    ).then((saved) => {
      if (!saved) return;
      announce(t('learn.lessonSaved'));
      load();
    });
  }

  async function deleteLesson(lesson) {
    const confirmed = await confirmDialog(t('learn.deleteLessonTitle'), t('learn.deleteLessonBody', { title: lesson.title }), t('learn.deleteLesson'), true);
    if (!confirmed) return;
    try {
      await api.delete(`/api/learning/lessons/${lesson.id}`);
      announce(t('learn.lessonDeleted'));
      load();
    } catch (error) {
      announce(error.message, 'error');
    }
  }

  function addLesson() {
    const title = h('input', { name: 'title', required: true });
    const kind = h('select', { name: 'kind' }, h('option', { value: 'video' }, t('learn.kind.video')), h('option', { value: 'reading' }, t('learn.kind.reading')));
    const minutes = h('input', { name: 'duration_s', type: 'number', min: 1, value: 30 });
    const hours = h('input', { name: 'credit_hours', type: 'number', step: '0.25', min: 0 });
    const text = h('textarea', { name: 'body_html', rows: 6 });
    openDialog(t('learn.addLesson'), (close) =>
      dialogForm(
        close,
        [field(t('learn.lessonTitle'), title), field(t('learn.lessonKind'), kind), field(t('learn.minutes'), minutes), field(t('learn.creditHours'), hours, t('learn.creditHint')), field(t('learn.text'), text)],
        t('common.save'),
        async () => {
          const input = { title: title.value, kind: kind.value, duration_s: Math.round(Number(minutes.value) * 60), body_html: text.value };
          if (hours.value !== '') input.credit_hours = Number(hours.value);
          return api.post(`/api/learning/courses/${courseId}/lessons`, input);
        },
      ),
    ).then((created) => created && load());
  }

  /** Adds a live lecture; its meeting is scheduled in the course's organization. */
  async function addLecture(course) {
    let members;
    try {
      members = (await api.get(`/api/orgs/${course.org_id}/members${query({ subtree: true, limit: 500 })}`)).items;
    } catch (error) {
      announce(error.message, 'error');
      return;
    }
    const options = () => members.map((member) => h('option', { value: String(member.id) }, member.name));
    const title = h('input', { name: 'title', required: true });
    const start = h('input', { name: 'starts_at', type: 'datetime-local', required: true });
    const minutes = h('input', { name: 'duration_s', type: 'number', min: 1, value: 60 });
    const lecturer = h('select', { name: 'lecturer_member' }, options());
    const co = h('select', { name: 'co_presenters', multiple: true, size: Math.min(6, members.length) }, options());
    const hours = h('input', { name: 'credit_hours', type: 'number', step: '0.25', min: 0 });
    openDialog(t('lecture.add'), (close) =>
      dialogForm(
        close,
        [
          field(t('learn.lessonTitle'), title),
          field(t('lecture.start'), start),
          field(t('learn.minutes'), minutes),
          field(t('lecture.lecturer'), lecturer),
          field(t('lecture.coPresenters'), co, t('lecture.coPresentersHint')),
          field(t('learn.creditHours'), hours, t('lecture.creditHint')),
        ],
        t('common.save'),
        async () => {
          const input = {
            title: title.value,
            starts_at: new Date(start.value).getTime(),
            duration_s: Math.round(Number(minutes.value) * 60),
            lecturer_member: Number(lecturer.value),
            co_presenters: [...co.selectedOptions].map((option) => Number(option.value)),
          };
          if (hours.value !== '') input.credit_hours = Number(hours.value);
          return api.post(`/api/learning/courses/${courseId}/lectures`, input);
        },
      ),
    ).then((created) => created && load());
  }

  async function assign() {
    const orgs = (await api.get('/api/orgs')).filter((org) => org.can_write);
    const select = h('select', { name: 'org_ids', multiple: true, size: Math.min(8, orgs.length) }, orgs.map((org) => h('option', { value: org.id }, org.name)));
    const deadline = h('input', { name: 'deadline_at', type: 'date' });
    openDialog(t('learn.assign'), (close) =>
      dialogForm(close, [field(t('learn.assignOrgs'), select), field(t('learn.deadlineField'), deadline)], t('learn.assign'), async () => {
        const orgIds = [...select.selectedOptions].map((option) => Number(option.value));
        const input = { org_ids: orgIds };
        if (deadline.value) input.deadline_at = new Date(`${deadline.value}T23:59:59`).getTime();
        return api.post(`/api/learning/courses/${courseId}/assignments`, input);
      }),
    ).then((done) => done && announce(t('learn.assigned')));
  }

  function addQuestion() {
    const kind = h('select', { name: 'kind' }, ['single', 'multiple', 'true_false', 'fill'].map((k) => h('option', { value: k }, t(`learn.qkind.${k}`))));
    const stem = h('textarea', { name: 'stem', rows: 2 });
    const options = h('textarea', { name: 'options', rows: 4 });
    const answer = h('input', { name: 'answer' });
    openDialog(t('learn.addQuestion'), (close) =>
      dialogForm(
        close,
        [field(t('learn.qkind'), kind), field(t('learn.stem'), stem), field(t('learn.options'), options, t('learn.optionsHint')), field(t('learn.answer'), answer, t('learn.answerHint'))],
        t('common.save'),
        () => {
          const lines = options.value.split('\n').map((line) => line.trim()).filter(Boolean);
          const raw = answer.value.trim();
          const parsed = {
            single: () => Number(raw) - 1,
            multiple: () => raw.split(/[,，\s]+/).filter(Boolean).map((n) => Number(n) - 1),
            true_false: () => ['true', '对', '正确', '1'].includes(raw.toLowerCase()),
            fill: () => raw.split(/[|｜]/).map((s) => s.trim()).filter(Boolean),
          }[kind.value]();
          const choices = kind.value === 'single' || kind.value === 'multiple';
          return api.post(`/api/learning/courses/${courseId}/questions`, { kind: kind.value, stem: stem.value, options: choices ? lines : [], answer: parsed });
        },
      ),
    ).then((created) => created && announce(t('learn.questionAdded')));
  }

  function createExam() {
    const title = h('input', { name: 'title' });
    const count = h('input', { name: 'question_count', type: 'number', min: 1, value: 10 });
    const minutes = h('input', { name: 'duration_s', type: 'number', min: 1, value: 30 });
    const pass = h('input', { name: 'pass_pct', type: 'number', min: 1, max: 100, value: 60 });
    const attempts = h('input', { name: 'max_attempts', type: 'number', min: 1, max: 10, value: 3 });
    openDialog(t('learn.createExam'), (close) =>
      dialogForm(
        close,
        [field(t('learn.examTitle'), title), field(t('learn.questionCount'), count), field(t('learn.minutes'), minutes), field(t('learn.passPct'), pass), field(t('learn.maxAttempts'), attempts)],
        t('common.save'),
        () =>
          api.post(`/api/learning/courses/${courseId}/exams`, {
            title: title.value,
            question_count: Number(count.value),
            duration_s: Math.round(Number(minutes.value) * 60),
            pass_pct: Number(pass.value),
            max_attempts: Number(attempts.value),
          }),
      ),
    ).then((created) => created && load());
  }

  load();
  return {
    unmount() {
      alive = false;
      if (unsubscribe) unsubscribe();
    },
  };
}

/** Reads a video file's length in seconds in the browser, or null. */
function measureDuration(file) {
  return new Promise((resolve) => {
    const video = document.createElement('video');
    const url = URL.createObjectURL(file);
    video.preload = 'metadata';
    video.onloadedmetadata = () => {
      URL.revokeObjectURL(url);
      resolve(Number.isFinite(video.duration) ? Math.round(video.duration * 1000) / 1000 : null);
    };
    video.onerror = () => {
      URL.revokeObjectURL(url);
      resolve(null);
    };
    video.src = url;
  });
}
