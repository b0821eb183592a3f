// One document in approval: header with number (文号), tags, status and
// whose turn it is, the route with each seat, the body with its versions
// and differences, the signed timeline, and the action bar for the
// caller's open task. Everyone viewing follows the `document:ID` hub topic,
// so each action and body edit appears live and is announced.

import { api, query } from '../api.js';
import { announce, confirmDialog, dialogForm, errorState, field, h, openDialog, replace } from '../dom.js';
import { hub } from '../hub.js';
import { formatDateMinutes, t } from '../i18n.js';
import { session } from '../session.js';
import { bodyText, createNameBook, describeKind, diffTexts, documentTags, dueTag, renderDiff, statusTag } from './approvalparts.js';
import { documentTools, loadWritableOrgs, voidedNotice } from './doctools.js';
import { createRichText } from './richtext.js';

const OPINION_MAX_CHARS = 1000;
/** Maximum results of the member directory search, which allows 1 to 20. */
const MEMBER_SEARCH_LIMIT = 20;

/** Messages to show on a document's next opening, by document id. */
const pendingProblems = new Map();

/** Stores a problem (such as an unresolvable route) to show when the document opens. */
export function setDocumentProblem(id, message) {
  pendingProblems.set(id, message);
}

/**
 * Draws document `id` into `container`; returns `{ reload, close }`.
 * `onChanged` runs after the caller acted, `onBack` when the phone layout's
 * back button is pressed.
 */
export function renderDocumentDetail(container, id, { onBack, onChanged }) {
  let closed = false;
  let view = null;
  let unsubscribe = null;
  const book = createNameBook();
  /** Text kept across redraws, so a live update never discards typing. */
  const drafts = { opinion: '', comment: '', returnTarget: 'previous' };
  let problem = pendingProblems.get(id) || null;
  pendingProblems.delete(id);
  let versions = null;
  let versionsOpen = false;
  let comparison = null;
  let editor = null;
  let busy = false;
  /** Organizations the caller may write (manage), from GET /api/orgs. */
  let writableOrgs = [];
  /** The reason of a void seen live or returned by this page's own void request. */
  let voidReason = null;
  const liveRegion = h('p', { class: 'visually-hidden', 'aria-live': 'polite', 'data-testid': 'doc-live' });

  replace(container, h('p', { class: 'muted pane-body' }, t('common.loading')));

  const me = () => session.account.member_id;
  const isDrafter = () => view && view.document.drafter_member === me();
  const routeSteps = () => (view.workflow.route ? view.workflow.route.steps : []);
  const stepName = (stepId) => {
    const step = routeSteps().find((candidate) => candidate.id === stepId);
    return step ? step.name : stepId;
  };
  const stepTask = () => view.my_tasks.find((task) => task.work.type === 'step');
  const readingTask = () => view.my_tasks.find((task) => task.work.type === 'reading');

  function rememberNames() {
    book.addAll(view.members);
    book.add(view.document.drafter_member, view.document.drafter_name);
  }

  // ----- header, turn and route -----

  function turnText() {
    const turn = view.turn;
    if (turn.turn === 'drafter') return t('doc.turnDrafter', { name: book.name(turn.drafter) });
    if (turn.turn === 'approvers') return t('doc.turnApprovers', { step: stepName(turn.step), names: book.list(turn.members) });
    if (turn.turn === 'readers') return t('doc.turnReaders', { names: book.list(turn.members) });
    return t('doc.turnNobody');
  }

  function header() {
    const doc = view.document;
    return h(
      'header',
      { class: 'notice-article-header doc-header' },
      h('button', { type: 'button', class: 'button button-small back-button', onclick: onBack }, `‹ ${t('approvals.back')}`),
      doc.number ? h('p', { class: 'doc-number', 'data-testid': 'doc-number' }, h('span', { class: 'visually-hidden' }, `${t('doc.number')}：`), doc.number) : null,
      h('h2', { tabindex: '-1' }, doc.title),
      h('p', { class: 'notice-meta' }, documentTags(doc), statusTag(doc.status)),
      h(
        'dl',
        { class: 'doc-facts' },
        h('dt', {}, t('doc.org')),
        h('dd', {}, doc.org_name),
        h('dt', {}, t('doc.drafter')),
        h('dd', {}, `${doc.drafter_name} · ${formatDateMinutes(doc.created_at)}`),
        h('dt', {}, t('doc.turn')),
        h('dd', { 'data-testid': 'doc-turn' }, turnText()),
        view.attachments.length > 0 ? h('dt', {}, t('doc.attachments')) : null,
        view.attachments.length > 0
          ? h(
            'dd',
            { 'data-testid': 'doc-attachments' },
            view.attachments.map((file) =>
              h('a', { class: 'doc-attachment', href: `/api/documents/${view.document.id}/attachments/${file.position}`, download: file.name }, file.name),
            ),
          )
          : null,
        view.cc_orgs.length > 0 ? h('dt', {}, t('doc.cc')) : null,
        view.cc_orgs.length > 0 ? h('dd', { 'data-testid': 'doc-cc' }, view.cc_orgs.map((org) => org.name).join('、')) : null,
        view.deadlines.length > 0 ? h('dt', {}, t('doc.deadlines')) : null,
        view.deadlines.length > 0
          ? h(
            'dd',
            { 'data-testid': 'doc-deadlines' },
            view.deadlines.map((deadline) =>
              h(
                'span',
                { class: 'doc-deadline' },
                `${deadline.member_name} `,
                dueTag(deadline.due_at),
                deadline.escalated_at ? h('span', { class: 'muted' }, ` ${t('doc.escalated')}`) : null,
              ),
            ),
          )
          : null,
      ),
    );
  }

  function seatsOf(progress) {
    const seats = [];
    for (const stage of progress.stages) {
      for (const slot of stage.slots) seats.push(...slot.seats);
    }
    return seats;
  }

  function routeSection() {
    const route = view.workflow.route;
    if (!route) return h('section', { class: 'doc-section' }, h('h3', {}, t('doc.route')), h('p', { class: 'muted' }, t('doc.routeNotStarted')));
    const progressById = new Map(view.workflow.steps.map((step) => [step.id, step]));
    return h(
      'section',
      { class: 'doc-section' },
      h('h3', {}, t('doc.route')),
      h(
        'ol',
        { class: 'route-steps route-progress' },
        route.steps.map((step) => {
          const progress = progressById.get(step.id);
          const phase = progress ? progress.phase : 'not_reached';
          const seats = progress ? seatsOf(progress) : [];
          const people = seats.length > 0
            ? seats.map((seat) => h('span', { class: `seat seat-${seat.state.state}` }, `${book.name(seat.member)} ${t(`seat.${seat.state.state}`)}`))
            : h('span', { class: 'muted' }, book.list(step.assignees));
          return h(
            'li',
            { class: `route-step phase-${phase}` },
            h('strong', {}, step.name),
            h('span', { class: 'muted' }, `${describeKind(step.kind)} · ${t(`stepPhase.${phase}`)}`),
            h('span', { class: 'seats' }, people),
          );
        }),
      ),
    );
  }

  /** Readers of a signed-off document (传阅) and who has read it. */
  function circulationSection() {
    const readers = view.workflow.readers || [];
    if (readers.length === 0) return null;
    const read = readers.filter((reader) => reader.read_at).length;
    const progressText = t('doc.circulationProgress', { read, total: readers.length });
    return h(
      'section',
      { class: 'doc-section', 'data-testid': 'circulation' },
      h('h3', {}, t('doc.circulation'), ' ', h('span', { class: 'muted' }, progressText)),
      h('progress', { max: String(readers.length), value: String(read), 'aria-label': progressText }),
      h(
        'ul',
        { class: 'reader-list' },
        readers.map((reader) =>
          h(
            'li',
            { class: reader.read_at ? 'seat seat-approved' : 'seat seat-open' },
            `${book.name(reader.member)} `,
            h('span', { class: 'muted' }, reader.read_at ? t('doc.readAt', { time: formatDateMinutes(Date.parse(reader.read_at)) }) : t('doc.unread')),
          ),
        ),
      ),
    );
  }

  // ----- body, versions and differences -----

  function bodySection() {
    const section = h('section', { class: 'doc-section' });
    const heading = h(
      'div',
      { class: 'doc-section-head' },
      h('h3', {}, t('doc.body'), ' ', h('span', { class: 'muted doc-version', 'data-testid': 'body-version' }, t('doc.bodyVersion', { version: view.document.body_version }))),
      h('button', { type: 'button', class: 'button button-small', 'aria-expanded': String(versionsOpen), onclick: toggleVersions }, versionsOpen ? t('doc.versionsHide') : t('doc.versions')),
      view.can.edit_body && !editor ? h('button', { type: 'button', class: 'button button-small', onclick: startEdit }, t('doc.editBody')) : null,
    );
    section.append(heading);
    if (editor) {
      section.append(editor.form);
    } else {
      const body = h('div', { class: 'notice-body doc-body', 'data-testid': 'doc-body' });
      // The server sanitizes every saved body.
      body.innerHTML = view.body_html;
      section.append(body);
    }
    if (versionsOpen) section.append(versionsPanel());
    return section;
  }

  async function toggleVersions() {
    versionsOpen = !versionsOpen;
    if (versionsOpen) await loadVersions();
    draw();
  }

  async function loadVersions() {
    try {
      versions = await api.get(`/api/documents/${id}/versions`);
    } catch (error) {
      announce(error.message, 'error');
      versions = [];
    }
  }

  function versionsPanel() {
    if (!versions) return h('p', { class: 'muted' }, t('common.loading'));
    const options = (selected) => versions.map((entry) => h('option', { value: String(entry.version), selected: entry.version === selected }, t('doc.bodyVersion', { version: entry.version })));
    const newest = versions.length ? versions[versions.length - 1].version : 1;
    const fromSelect = h('select', { id: `compare-from-${id}`, name: 'from' }, options(comparison ? comparison.from : Math.max(1, newest - 1)));
    const toSelect = h('select', { id: `compare-to-${id}`, name: 'to' }, options(comparison ? comparison.to : newest));
    const compareForm = h(
      'form',
      { class: 'compare-form' },
      h('label', { for: fromSelect.id }, t('doc.compareFrom')),
      fromSelect,
      h('label', { for: toSelect.id }, t('doc.compareTo')),
      toSelect,
      h('button', { type: 'submit', class: 'button button-small' }, t('doc.compare')),
    );
    compareForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      await compare(Number(fromSelect.value), Number(toSelect.value));
    });
    return h(
      'div',
      { class: 'versions-panel' },
      h(
        'ol',
        { class: 'version-list', 'data-testid': 'versions' },
        versions.map((entry) =>
          h(
            'li',
            {},
            h('span', {}, t('doc.versionLine', { version: entry.version, author: entry.author_name, time: formatDateMinutes(entry.created_at) })),
            entry.reason ? h('span', { class: 'muted' }, t('doc.versionReason', { reason: entry.reason })) : null,
          ),
        ),
      ),
      versions.length > 1 ? compareForm : null,
      comparison ? comparisonView() : null,
    );
  }

  async function compare(from, to) {
    try {
      const [before, after] = await Promise.all([
        api.get(`/api/documents/${id}/versions/${from}`),
        api.get(`/api/documents/${id}/versions/${to}`),
      ]);
      comparison = { from, to, parts: diffTexts(bodyText(before.body_html), bodyText(after.body_html)) };
    } catch (error) {
      announce(error.message, 'error');
      return;
    }
    draw();
  }

  function comparisonView() {
    const changed = comparison.parts.some((part) => part.kind !== 'same');
    return h(
      'section',
      { class: 'diff-box', 'aria-label': t('doc.diffLabel', { from: comparison.from, to: comparison.to }), 'data-testid': 'diff' },
      h('h4', {}, t('doc.diffLabel', { from: comparison.from, to: comparison.to })),
      changed ? h('p', { class: 'hint' }, t('doc.diffLegend')) : h('p', { class: 'muted' }, t('doc.diffNone')),
      changed ? renderDiff(comparison.parts) : null,
    );
  }

  function startEdit() {
    const richText = createRichText({ name: 'body_html', label: t('doc.body'), initialHtml: view.body_html });
    const reason = h('input', { name: 'reason', maxlength: '200', autocomplete: 'off' });
    const basedOn = view.document.body_version;
    const form = h(
      'form',
      { class: 'body-editor', novalidate: true },
      richText.element,
      field(t('doc.editReason'), reason),
      h('p', { class: 'form-error', role: 'alert', hidden: true }),
      h(
        'div',
        { class: 'form-actions' },
        h('button', { type: 'button', class: 'button', onclick: () => { editor = null; draw(); } }, t('common.cancel')),
        h('button', { type: 'submit', class: 'button button-primary' }, t('doc.saveBody')),
      ),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const general = form.querySelector('.form-error');
      general.hidden = true;
      const reasonText = reason.value.trim();
      if (!reasonText) {
        general.textContent = t('doc.editReasonRequired');
        general.hidden = false;
        reason.focus();
        return;
      }
      try {
        const saved = await api.put(`/api/documents/${id}/body`, { body_html: richText.html(), reason: reasonText, based_on_body_version: basedOn });
        editor = null;
        versions = null;
        comparison = null;
        versionsOpen = false;
        announce(t('doc.bodySaved', { version: saved.version }));
        await load();
      } catch (error) {
        general.textContent = error.status === 409 ? t('doc.staleVersion', { message: error.message }) : error.message;
        general.hidden = false;
      }
    });
    editor = { form };
    draw();
    reason.scrollIntoView({ block: 'nearest' });
    form.querySelector('[contenteditable]').focus();
  }

  // ----- timeline -----

  function returnTargetText(target) {
    if (target.to === 'previous') return t('doc.returnPrevious');
    if (target.to === 'drafter') return t('doc.returnDrafter');
    return stepName(target.step);
  }

  function actionText(action) {
    switch (action.action) {
      case 'return':
        return t('action.returnTo', { target: returnTargetText(action.target) });
      case 'delegate':
        return t('action.delegateTo', { name: book.name(action.to) });
      case 'add_signer':
        return t('action.addSignerDetail', { name: book.name(action.member), placement: t(`doc.placement.${action.placement}`) });
      case 'urge':
        return action.member ? t('action.urgeMember', { name: book.name(action.member) }) : t('action.urge');
      default:
        return t(`action.${action.action}`);
    }
  }

  function timelineSection() {
    const entries = view.timeline;
    return h(
      'section',
      { class: 'doc-section' },
      h('h3', {}, t('doc.timeline')),
      entries.length === 0
        ? h('p', { class: 'muted' }, t('doc.timelineEmpty'))
        : h(
          'ol',
          { class: 'timeline', 'data-testid': 'timeline' },
          entries.map((entry) => {
            const action = entry.action;
            const note = action.opinion || action.text || '';
            return h(
              'li',
              { class: `timeline-entry action-${action.action}` },
              h(
                'div',
                { class: 'timeline-head' },
                h('strong', {}, entry.actor_name),
                h('span', { class: 'timeline-action' }, actionText(action)),
                h('time', { class: 'muted', datetime: new Date(entry.at).toISOString() }, formatDateMinutes(entry.at)),
                entry.signature
                  ? h('span', { class: 'signed-mark', title: t('doc.signedTitle', { signature: `${entry.signature.slice(0, 16)}…` }) }, `✓ ${t('doc.signed')}`)
                  : null,
              ),
              note ? h('p', { class: 'timeline-opinion' }, note) : null,
              action.action === 'approve' || action.action === 'reject'
                ? h('p', { class: 'hint' }, t('doc.appliesTo', { version: entry.body_version }))
                : null,
            );
          }),
        ),
    );
  }

  // ----- actions -----

  function showProblem(message) {
    problem = message;
    draw();
    const box = container.querySelector('.action-problem');
    if (box) box.focus();
  }

  async function act(action, extra = {}) {
    if (busy) return;
    busy = true;
    problem = null;
    const label = actionText({ action, ...extra });
    try {
      view = await api.post(`/api/documents/${id}/actions`, { action, based_on_version: view.document.workflow_version, ...extra });
      if (action === 'comment') drafts.comment = '';
      else drafts.opinion = '';
      rememberNames();
      announce(t('doc.done', { action: label }));
      busy = false;
      draw();
      if (onChanged) onChanged();
    } catch (error) {
      busy = false;
      if (error.status === 409) {
        await load();
        showProblem(t('doc.staleVersion', { message: error.message }));
      } else if (error.field === 'route') {
        showProblem(`${t('approvals.routeProblem', { message: error.message })} ${t('approvals.routeHint')}`);
      } else {
        showProblem(error.message);
      }
    }
  }

  /** Returns the steps a return may go to: previous, passed steps, drafter. */
  function returnTargets(currentStep) {
    const steps = routeSteps();
    const currentIndex = steps.findIndex((step) => step.id === currentStep);
    const progressById = new Map(view.workflow.steps.map((step) => [step.id, step]));
    const targets = [];
    if (currentIndex > 0) targets.push({ value: 'previous', label: t('doc.returnPrevious') });
    steps.slice(0, Math.max(0, currentIndex)).forEach((step) => {
      const progress = progressById.get(step.id);
      if (progress && progress.phase === 'approved') targets.push({ value: `step:${step.id}`, label: t('doc.returnStep', { step: step.name }) });
    });
    targets.push({ value: 'drafter', label: t('doc.returnDrafter') });
    return targets;
  }

  function targetFromValue(value) {
    if (value === 'previous') return { to: 'previous' };
    if (value === 'drafter') return { to: 'drafter' };
    return { to: 'step', step: value.slice('step:'.length) };
  }

  function opinionValue(required) {
    const text = drafts.opinion.trim();
    if (required && !text) {
      showProblem(t('doc.opinionRequired'));
      const box = container.querySelector(`#opinion-${id}`);
      if (box) box.focus();
      return null;
    }
    return text;
  }

  function taskBox(task) {
    const opinion = h('textarea', {
      id: `opinion-${id}`,
      rows: '3',
      maxlength: String(OPINION_MAX_CHARS),
      placeholder: t('doc.opinionPlaceholder'),
      oninput: () => {
        drafts.opinion = opinion.value;
      },
    });
    opinion.value = drafts.opinion;
    const targets = returnTargets(task.work.step);
    if (!targets.some((target) => target.value === drafts.returnTarget)) drafts.returnTarget = targets[0].value;
    const targetSelect = h(
      'select',
      { id: `return-target-${id}`, onchange: () => { drafts.returnTarget = targetSelect.value; } },
      targets.map((target) => h('option', { value: target.value, selected: target.value === drafts.returnTarget }, target.label)),
    );
    return h(
      'div',
      { class: 'task-box' },
      h('p', { class: 'task-note' }, t('doc.myTask', { step: stepName(task.work.step) })),
      field(t('doc.opinion'), opinion),
      h(
        'div',
        { class: 'action-row' },
        h('button', { type: 'button', class: 'button button-primary', onclick: () => {
          const text = opinionValue(false);
          if (text !== null) act('approve', { opinion: text, body_version: view.document.body_version });
        } }, t('doc.approve')),
        h('button', { type: 'button', class: 'button button-danger-outline', onclick: () => {
          const text = opinionValue(true);
          if (text !== null) act('reject', { opinion: text, body_version: view.document.body_version });
        } }, t('doc.reject')),
        h(
          'span',
          { class: 'return-group' },
          h('label', { for: targetSelect.id }, t('doc.returnTo')),
          targetSelect,
          h('button', { type: 'button', class: 'button', onclick: () => {
            const text = opinionValue(true);
            if (text !== null) act('return', { target: targetFromValue(targetSelect.value), opinion: text });
          } }, t('doc.return')),
        ),
      ),
      h(
        'div',
        { class: 'action-row' },
        h('button', { type: 'button', class: 'button button-small', onclick: () => chooseMember('delegate') }, t('doc.delegate')),
        h('button', { type: 'button', class: 'button button-small', onclick: () => chooseMember('add_signer') }, t('doc.addSigner')),
      ),
    );
  }

  /** Asks for a member (and a placement when adding a signer), then acts. */
  async function chooseMember(action) {
    let chosen = null;
    const results = h('div', { class: 'member-results', role: 'radiogroup', 'aria-label': t('doc.member') });
    const search = h('input', { name: 'member', type: 'search', autocomplete: 'off', placeholder: t('doc.memberSearch') });
    let ticket = 0;
    async function runSearch() {
      ticket += 1;
      const mine = ticket;
      const text = search.value.trim();
      if (!text) {
        chosen = null;
        replace(results, h('p', { class: 'muted' }, t('doc.memberSearchHint')));
        return;
      }
      let found;
      try {
        found = await api.get(`/api/members/search${query({ q: text, limit: MEMBER_SEARCH_LIMIT })}`);
      } catch (error) {
        if (mine === ticket) replace(results, h('p', { class: 'field-error' }, error.message));
        return;
      }
      if (mine !== ticket) return;
      chosen = null;
      const members = found.filter((member) => member.id !== me());
      if (members.length === 0) {
        replace(results, h('p', { class: 'muted' }, t('doc.memberNone')));
        return;
      }
      replace(
        results,
        members.map((member) => {
          book.add(member.id, member.name);
          return h(
            'label',
            { class: 'checkbox' },
            h('input', { type: 'radio', name: 'member_choice', value: String(member.id), onchange: () => { chosen = member.id; } }),
            `${member.name}（${member.org_name}）`,
          );
        }),
      );
    }
    let searchTimer = null;
    search.addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(runSearch, 200);
    });
    runSearch();
    const placement = action === 'add_signer'
      ? h(
        'fieldset',
        { class: 'field inline-choices' },
        h('legend', {}, t('doc.placement')),
        ['after', 'before', 'parallel'].map((value, index) =>
          h('label', { class: 'checkbox' }, h('input', { type: 'radio', name: 'placement', value, checked: index === 0 }), t(`doc.placement.${value}`)),
        ),
      )
      : null;
    const title = action === 'delegate' ? t('doc.delegate') : t('doc.addSigner');
    const picked = await openDialog(title, (close) =>
      dialogForm(close, [field(t('doc.member'), search), results, placement], title, async (form) => {
        if (!chosen) throw { field: 'member', message: t('doc.memberRequired') };
        return { member: chosen, placement: new FormData(form).get('placement') };
      }),
    );
    if (!picked) return;
    if (action === 'delegate') await act('delegate', { to: picked.member });
    else await act('add_signer', { member: picked.member, placement: picked.placement });
  }

  function actionBar() {
    const doc = view.document;
    const parts = [];
    const task = stepTask();
    if (task && view.can.decide) parts.push(taskBox(task));
    if (readingTask()) {
      parts.push(h('div', { class: 'action-row' }, h('button', { type: 'button', class: 'button button-primary', onclick: () => act('mark_read') }, t('doc.markRead'))));
    }
    const small = [];
    if (view.can.submit) {
      small.push(h('button', { type: 'button', class: 'button button-primary', onclick: () => act('submit') }, t('doc.submit')));
    }
    if (isDrafter() && doc.status === 'in_progress') {
      small.push(h('button', { type: 'button', class: 'button', onclick: () => act('urge', {}) }, t('doc.urge')));
    }
    if (view.can.withdraw) {
      small.push(h('button', { type: 'button', class: 'button', onclick: async () => {
        if (await confirmDialog(t('doc.withdraw'), t('doc.withdrawConfirm'), t('doc.withdraw'))) act('withdraw');
      } }, t('doc.withdraw')));
    }
    if (small.length) parts.push(h('div', { class: 'action-row' }, small));

    const comment = h('textarea', {
      id: `comment-${id}`,
      rows: '2',
      maxlength: String(OPINION_MAX_CHARS),
      placeholder: t('doc.commentPlaceholder'),
      oninput: () => {
        drafts.comment = comment.value;
      },
    });
    comment.value = drafts.comment;
    parts.push(
      h(
        'div',
        { class: 'comment-box' },
        field(t('doc.comment'), comment),
        h('div', { class: 'action-row' }, h('button', { type: 'button', class: 'button button-small', onclick: () => {
          const text = drafts.comment.trim();
          if (!text) showProblem(t('doc.commentRequired'));
          else act('comment', { text });
        } }, t('doc.comment'))),
      ),
    );
    return h(
      'section',
      { class: 'doc-section action-bar', 'aria-label': t('doc.actionsLabel'), 'data-testid': 'action-bar' },
      problem ? h('p', { class: 'action-problem', role: 'alert', tabindex: '-1' }, problem) : null,
      parts,
    );
  }

  // ----- void and issue -----

  function afterVoid(voided, reason) {
    view = voided;
    voidReason = reason;
    rememberNames();
    announce(t('doc.voidDone'));
    draw();
    if (onChanged) onChanged();
  }

  function afterIssue() {
    // The hub's `document.issued` event may have redrawn the page before
    // the reply arrived, so draw again to show the new notice's link.
    draw();
    if (onChanged) onChanged();
  }

  // ----- drawing and loading -----

  function draw() {
    if (closed || !view) return;
    // Keep focus and scroll on the same control across a live redraw.
    const focusedId = container.contains(document.activeElement) ? document.activeElement.id : null;
    const scroll = container.scrollTop;
    const article = h(
      'article',
      { class: 'card notice-article doc-article', 'data-testid': 'doc-detail' },
      header(),
      voidedNotice(view, voidReason),
      documentTools(view, { writableOrgs, onVoided: afterVoid, onIssued: afterIssue }),
      bodySection(),
      actionBar(),
      timelineSection(),
      routeSection(),
      circulationSection(),
      liveRegion,
    );
    replace(container, article);
    container.scrollTop = scroll;
    if (focusedId) {
      const again = document.getElementById(focusedId);
      if (again) again.focus({ preventScroll: true });
    }
  }

  function onDocumentEvent(event) {
    const data = event.data || {};
    let message = null;
    if (event.kind === 'document.action') {
      message = t('doc.liveAction', { actor: data.actor_name, action: actionText(data.action) });
    } else if (event.kind === 'document.voided') {
      voidReason = data.reason || voidReason;
      message = t('doc.liveVoided', { by: data.by, reason: data.reason });
    } else if (event.kind === 'document.issued') {
      message = t('doc.liveIssued', { by: data.by });
    } else if (event.kind === 'document.overdue') {
      message = t('doc.liveOverdue', { name: data.member_name });
    } else if (event.kind === 'document.edited') {
      message = t('doc.liveEdited', { author: data.author, version: data.body_version, reason: data.reason });
      // An open version list keeps its entries until the new list arrives.
      if (versionsOpen) loadVersions().then(draw);
      else versions = null;
    }
    if (message) {
      liveRegion.textContent = message;
      announce(message, 'info', { toast: true });
    }
    load();
  }

  async function load() {
    let next;
    try {
      next = await api.get(`/api/documents/${id}`);
    } catch (error) {
      if (!closed) replace(container, errorState(error, load));
      return;
    }
    if (closed) return;
    const first = !view;
    view = next;
    rememberNames();
    draw();
    if (first) {
      container.querySelector('h2').focus({ preventScroll: true });
      unsubscribe = hub.subscribe(`document:${id}`, { onEvent: onDocumentEvent, onReset: load }, { since: view.seq });
      loadWritableOrgs().then((orgs) => {
        writableOrgs = orgs;
        draw();
      });
    }
  }

  load();
  return {
    reload: load,
    close() {
      closed = true;
      if (unsubscribe) unsubscribe();
    },
  };
}
