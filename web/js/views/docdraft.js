// The drafting page: issuing organization, title, type, security level,
// urgency, approval template (with its steps shown), the rich-text body, the
// organizations the document is copied to (抄送机关) and attachments.
// "Save draft" stores the document; "Save and submit" also sends it along
// the template's route, and an unresolvable route is shown on the draft.
//
// Route: /approvals/new.

import { api, query } from '../api.js';
import { announce, clearFormErrors, debounce, field, h, replace, showFormError } from '../dom.js';
import { t } from '../i18n.js';
import { DOC_TYPES, SECURITY_LEVELS, URGENCIES, approvalsHeader, createNameBook, templateSteps } from './approvalparts.js';
import { setDocumentProblem } from './docdetail.js';
import { createRichText } from './richtext.js';
import { createAttachments } from './uploads.js';

const TITLE_MAX_CHARS = 200;
const ORG_SEARCH_LIMIT = 8;

/**
 * Builds the 抄送机关 chooser: a name search over every organization of the
 * deployment and the chosen ones as removable chips, in the order chosen.
 * `ids()` returns the chosen ids for `cc_org_ids`.
 */
function createCcChooser() {
  const chosen = [];
  const search = h('input', { type: 'search', name: 'cc_org_ids', placeholder: t('approvals.ccSearch'), autocomplete: 'off' });
  const results = h('ul', { class: 'search-results', 'aria-live': 'polite' });
  const chips = h('ul', { class: 'chips', 'aria-label': t('approvals.ccChosen') });

  function drawChips() {
    replace(
      chips,
      chosen.map((org, index) =>
        h(
          'li',
          { class: 'chip' },
          org.name,
          h('button', {
            type: 'button',
            class: 'icon-button icon-button-small',
            'aria-label': t('approvals.ccRemove', { name: org.name }),
            onclick: () => {
              chosen.splice(index, 1);
              drawChips();
              search.focus();
            },
          }, '×'),
        ),
      ),
    );
  }

  async function runSearch() {
    const text = search.value.trim();
    if (!text) {
      replace(results);
      return;
    }
    let found;
    try {
      found = await api.get(`/api/orgs/search${query({ q: text, limit: ORG_SEARCH_LIMIT })}`);
    } catch (error) {
      replace(results, h('li', { class: 'field-error' }, error.message));
      return;
    }
    if (text !== search.value.trim()) return;
    replace(
      results,
      found.length === 0
        ? h('li', { class: 'muted' }, t('approvals.ccNoMatch'))
        : found.map((org) => {
          const label = org.parent_name ? `${org.name}（${org.parent_name}）` : org.name;
          return h('li', {}, h('button', {
            type: 'button',
            class: 'button button-small',
            disabled: chosen.some((other) => other.id === org.id),
            'aria-label': t('approvals.ccAdd', { name: org.name }),
            onclick: () => {
              chosen.push(org);
              drawChips();
              search.value = '';
              replace(results);
              search.focus();
            },
          }, label));
        }),
    );
  }

  search.addEventListener('input', debounce(runSearch, 200));
  // Enter searches instead of submitting the form.
  search.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      runSearch();
    }
  });
  return {
    element: h('div', {}, field(t('approvals.fieldCc'), search, t('approvals.ccHint')), results, chips),
    ids: () => chosen.map((org) => org.id),
  };
}

function choices(name, values, labelOf, selected) {
  return h('select', { name }, values.map((value) => h('option', { value, selected: value === selected }, labelOf(value))));
}

export function mountDraft(outlet, context) {
  const { navigate } = context;
  let closed = false;
  let templates = [];
  const book = createNameBook();
  const section = h('section', { class: 'page' }, approvalsHeader('new'), h('p', { class: 'muted' }, t('common.loading')));
  replace(outlet, section);

  const orgSelect = h('select', { name: 'org_id' });
  const title = h('input', { name: 'title', maxlength: String(TITLE_MAX_CHARS), autocomplete: 'off', required: true });
  const docType = choices('doc_type', DOC_TYPES, (value) => value, '请示');
  const security = choices('security_level', SECURITY_LEVELS, (value) => t(`security.${value}`), 'internal');
  const urgency = choices('urgency', URGENCIES, (value) => t(`urgency.${value}`), 'normal');
  const templateSelect = h('select', { name: 'template_id' });
  const templatePreview = h('div', { class: 'template-preview', 'aria-live': 'polite' });
  const prefix = h('input', { name: 'number_prefix', maxlength: '60', autocomplete: 'off' });
  const editor = createRichText({ name: 'body_html', label: t('approvals.fieldBody') });
  const cc = createCcChooser();
  const attachments = createAttachments();
  const saveButton = h('button', { type: 'submit', class: 'button', value: 'save' }, t('approvals.saveDraft'));
  const submitButton = h('button', { type: 'submit', class: 'button button-primary', value: 'submit' }, t('approvals.saveSubmit'));

  const form = h(
    'form',
    { class: 'card card-body compose-form', novalidate: true },
    field(t('approvals.fieldTitle'), title),
    h(
      'div',
      { class: 'draft-grid' },
      field(t('approvals.fieldOrg'), orgSelect),
      field(t('approvals.fieldType'), docType),
      field(t('approvals.fieldSecurity'), security),
      field(t('approvals.fieldUrgency'), urgency),
    ),
    field(t('approvals.fieldTemplate'), templateSelect),
    templatePreview,
    editor.element,
    field(t('approvals.fieldPrefix'), prefix, t('approvals.prefixHint')),
    cc.element,
    attachments.element,
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'form-actions' }, h('a', { href: '/approvals/drafts', class: 'button', 'data-link': true }, t('common.cancel')), saveButton, submitButton),
  );

  function showTemplate() {
    const chosen = templates.find((template) => String(template.id) === templateSelect.value);
    if (!chosen) {
      replace(templatePreview, templates.length === 0 ? h('p', { class: 'muted' }, t('approvals.noTemplates')) : null);
      return;
    }
    replace(templatePreview, h('p', { class: 'hint' }, `${chosen.name} · ${t('templates.version', { version: chosen.version })}`), templateSteps(chosen.definition, book));
  }

  async function loadTemplates() {
    const orgId = Number(orgSelect.value);
    try {
      templates = await api.get(`/api/approvals/templates${query({ org_id: orgId })}`);
    } catch (error) {
      templates = [];
      announce(error.message, 'error');
    }
    if (closed) return;
    replace(
      templateSelect,
      h('option', { value: '' }, t('approvals.chooseTemplate')),
      templates.map((template) => h('option', { value: String(template.id) }, `${template.name}（${t('templates.version', { version: template.version })}）`)),
    );
    if (templates.length === 1) templateSelect.value = String(templates[0].id);
    showTemplate();
    await book.loadOrg(orgId);
    if (!closed) showTemplate();
  }

  orgSelect.addEventListener('change', loadTemplates);
  templateSelect.addEventListener('change', showTemplate);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const submitting = event.submitter === submitButton;
    clearFormErrors(form);
    saveButton.disabled = true;
    submitButton.disabled = true;
    let created = null;
    try {
      const titleText = title.value.trim();
      if (!titleText) throw { field: 'title', message: t('common.required') };
      if (!templateSelect.value) throw { field: 'template_id', message: t('approvals.chooseTemplate') };
      if (attachments.pending() > 0) throw { field: 'attachments', message: t('notices.uploadsPending') };
      if (attachments.failed() > 0) throw { field: 'attachments', message: t('notices.uploadsFailed') };
      created = await api.post('/api/documents', {
        org_id: Number(orgSelect.value),
        title: titleText,
        doc_type: docType.value,
        security_level: security.value,
        urgency: urgency.value,
        template_id: Number(templateSelect.value),
        body_html: editor.html(),
        number_prefix: prefix.value.trim() || undefined,
        cc_org_ids: cc.ids(),
        attachments: attachments.files(),
      });
    } catch (error) {
      showFormError(form, error);
      saveButton.disabled = false;
      submitButton.disabled = false;
      return;
    }
    const id = created.document.id;
    if (!submitting) {
      announce(t('approvals.saved'));
      navigate(`/approvals/drafts/${id}`);
      return;
    }
    try {
      await api.post(`/api/documents/${id}/actions`, { action: 'submit', based_on_version: created.document.workflow_version });
      announce(t('approvals.submitted'));
      navigate(`/approvals/involved/${id}`);
    } catch (error) {
      // The draft is saved either way; its page shows why submitting failed.
      const message = error.field === 'route'
        ? `${t('approvals.routeProblem', { message: error.message })} ${t('approvals.routeHint')}`
        : error.message;
      setDocumentProblem(id, message);
      announce(message, 'error', { toast: false });
      navigate(`/approvals/drafts/${id}`);
    }
  });

  (async () => {
    let orgs;
    try {
      orgs = await api.get('/api/orgs');
    } catch (error) {
      replace(section, approvalsHeader('new'), h('p', { class: 'field-error' }, error.message));
      return;
    }
    if (closed) return;
    if (orgs.length === 0) {
      replace(section, approvalsHeader('new'), h('div', { class: 'empty-state' }, t('approvals.noOrgs')));
      return;
    }
    replace(orgSelect, orgs.map((org) => h('option', { value: String(org.id) }, org.name)));
    replace(section, approvalsHeader('new'), h('h2', { class: 'section-title' }, t('approvals.new')), form);
    title.focus();
    await loadTemplates();
  })();

  return {
    unmount() {
      closed = true;
    },
  };
}
