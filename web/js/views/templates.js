// Approval templates of one organization, readable step by step, with a
// JSON editor for officers. The server validates a saved definition, and
// its message (naming the step at fault) is shown under the editor.
//
// Route: /approvals/templates.

import { api, query } from '../api.js';
import { announce, errorState, field, h, replace } from '../dom.js';
import { formatDateMinutes, t } from '../i18n.js';
import { approvalsHeader, createNameBook, templateSteps } from './approvalparts.js';

/** Starting definition for a new template. */
const NEW_TEMPLATE = {
  name: '支部请示',
  steps: [
    { id: 'review', name: '部门审核', kind: { type: 'single' }, assignees: [{ role: { role: 'organization_member', org: 'issuing' } }] },
    { id: 'signoff', name: '书记签发', kind: { type: 'single' }, assignees: [{ role: { role: 'secretary', org: 'issuing' } }] },
  ],
  circulation: [],
};

export function mountTemplates(outlet) {
  let closed = false;
  let orgs = [];
  let templates = [];
  const book = createNameBook();
  const orgSelect = h('select', { name: 'org' });
  const listBody = h('div', { class: 'template-list' }, h('p', { class: 'muted' }, t('common.loading')));
  const editorBox = h('div', { class: 'template-editor-box' });
  const newButton = h('button', { type: 'button', class: 'button', hidden: true, onclick: () => openEditor(NEW_TEMPLATE) }, `+ ${t('templates.new')}`);
  replace(
    outlet,
    h(
      'section',
      { class: 'page' },
      approvalsHeader('templates'),
      h('div', { class: 'toolbar template-toolbar' }, field(t('templates.orgLabel'), orgSelect), newButton),
      editorBox,
      listBody,
    ),
  );

  const currentOrg = () => orgs.find((org) => String(org.id) === orgSelect.value);

  function openEditor(definition) {
    const textarea = h('textarea', {
      name: 'definition',
      class: 'json-editor',
      rows: '18',
      spellcheck: 'false',
      'aria-describedby': 'template-editor-hint',
    });
    textarea.value = JSON.stringify(definition, null, 2);
    const error = h('p', { class: 'field-error', id: 'template-editor-error', role: 'alert', hidden: true });
    const save = h('button', { type: 'submit', class: 'button button-primary' }, t('templates.save'));
    const form = h(
      'form',
      { class: 'card card-body', novalidate: true, 'aria-label': t('templates.editorTitle') },
      h('h2', { class: 'section-title' }, t('templates.editorTitle')),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'template-json' }, t('templates.editorLabel')),
        textarea,
        h('p', { class: 'hint', id: 'template-editor-hint' }, t('templates.editorHint')),
        error,
      ),
      h(
        'div',
        { class: 'form-actions' },
        h('button', { type: 'button', class: 'button', onclick: () => replace(editorBox) }, t('common.cancel')),
        save,
      ),
    );
    textarea.id = 'template-json';

    function fail(message) {
      error.textContent = message;
      error.hidden = false;
      textarea.setAttribute('aria-invalid', 'true');
      textarea.setAttribute('aria-describedby', 'template-editor-error template-editor-hint');
      textarea.focus();
    }

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.hidden = true;
      textarea.removeAttribute('aria-invalid');
      textarea.setAttribute('aria-describedby', 'template-editor-hint');
      let parsed;
      try {
        parsed = JSON.parse(textarea.value);
      } catch (problem) {
        fail(t('templates.invalidJson', { message: problem.message }));
        return;
      }
      save.disabled = true;
      try {
        const saved = await api.post('/api/approvals/templates', { org_id: Number(orgSelect.value), definition: parsed });
        announce(t('templates.saved', { name: saved.name, version: saved.version }));
        replace(editorBox);
        await load();
      } catch (problem) {
        fail(problem.message);
      } finally {
        save.disabled = false;
      }
    });
    replace(editorBox, form);
    textarea.focus();
  }

  function draw() {
    const canWrite = Boolean(currentOrg() && currentOrg().can_write);
    newButton.hidden = !canWrite;
    if (templates.length === 0) {
      replace(listBody, h('p', { class: 'empty-state' }, t('templates.empty')));
      return;
    }
    replace(
      listBody,
      h(
        'ul',
        { class: 'template-cards', 'data-testid': 'templates' },
        templates.map((template) =>
          h(
            'li',
            { class: 'card card-body template-card' },
            h(
              'div',
              { class: 'template-card-head' },
              h('h3', {}, template.name),
              h('span', { class: 'tag' }, t('templates.version', { version: template.version })),
              h('span', { class: 'muted' }, formatDateMinutes(template.created_at)),
              h('div', { class: 'page-header-spacer' }),
              canWrite && template.org_id === currentOrg().id
                ? h('button', { type: 'button', class: 'button button-small', onclick: () => openEditor(template.definition) }, t('templates.newVersion'))
                : null,
            ),
            templateSteps(template.definition, book),
          ),
        ),
      ),
    );
  }

  async function load() {
    const orgId = Number(orgSelect.value);
    try {
      templates = await api.get(`/api/approvals/templates${query({ org_id: orgId })}`);
    } catch (error) {
      if (!closed) replace(listBody, errorState(error, load));
      return;
    }
    if (closed) return;
    draw();
    book.loadOrg(orgId).then(() => {
      if (!closed) draw();
    });
  }

  orgSelect.addEventListener('change', () => {
    replace(editorBox);
    load();
  });

  (async () => {
    try {
      orgs = await api.get('/api/orgs');
    } catch (error) {
      replace(listBody, errorState(error, null));
      return;
    }
    if (closed) return;
    if (orgs.length === 0) {
      replace(listBody, h('p', { class: 'empty-state' }, t('approvals.noOrgs')));
      return;
    }
    replace(orgSelect, orgs.map((org) => h('option', { value: String(org.id) }, org.name)));
    await load();
  })();

  return {
    unmount() {
      closed = true;
    },
  };
}
