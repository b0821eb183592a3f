// The tools of a document pane that act on the document as a whole: the
// print view, the approval record (printable and as a signed JSON file),
// voiding (作废) and issuing (分发) a signed-off document as a notice.

import { api } from '../api.js';
import { announce, dialogForm, field, h, openDialog } from '../dom.js';
import { t } from '../i18n.js';
import { createTargetPicker } from './targetpicker.js';

const VOID_REASON_MAX_CHARS = 500;

/** Notices issued from this browser tab, by document id, newest last. */
const issuedNotices = new Map();

/** Loads the organizations the caller may write (manage), or none when the request fails. */
export async function loadWritableOrgs() {
  try {
    const orgs = await api.get('/api/orgs');
    return orgs.filter((org) => org.can_write);
  } catch {
    return [];
  }
}

/** Checks whether a document has a number and is not void, so it may be issued or voided. */
function isSignedOff(document) {
  return Boolean(document.number) && document.status !== 'voided';
}

/** Renders the "已作废" banner of a voided document, or nothing. */
export function voidedNotice(view, reason) {
  // TODO: the document view carries no void reason, so a page opened after
  // the void shows the reason only in the number register.
  if (view.document.status !== 'voided') return null;
  return h(
    'div',
    { class: 'voided-banner', role: 'status', 'data-testid': 'doc-voided' },
    h('strong', {}, t('doc.voided')),
    h('span', {}, reason ? t('doc.voidedReason', { reason }) : t('doc.voidedHint')),
  );
}

/**
 * Renders the tool row of a document. `writableOrgs` are the organizations
 * the caller manages. `onVoided(view, reason)` runs with the server's new
 * view after a void, and `onIssued(notice)` after an issue.
 */
export function documentTools(view, { writableOrgs, onVoided, onIssued }) {
  const doc = view.document;
  const base = `/api/documents/${doc.id}`;
  const link = (href, label, extra = {}) =>
    h('a', { href, class: 'button button-small', target: '_blank', rel: 'noopener', ...extra }, label);
  const tools = [
    link(`${base}/print`, t('doc.print')),
    link(`${base}/record/print`, t('doc.recordPrint')),
    h('a', { href: `${base}/record`, class: 'button button-small', download: `record-${doc.id}.json` }, t('doc.recordDownload')),
    h('a', { href: `${base}/record/pdf`, class: 'button button-small', download: `record-${doc.id}.pdf` }, t('doc.recordPdf')),
  ];
  if (isSignedOff(doc) && writableOrgs.length > 0) {
    tools.push(h('button', { type: 'button', class: 'button button-small', onclick: () => issueDialog(doc, onIssued) }, t('doc.issue')));
  }
  if (isSignedOff(doc) && writableOrgs.some((org) => org.id === doc.org_id)) {
    tools.push(h('button', { type: 'button', class: 'button button-small button-danger-outline', onclick: () => voidDialog(doc, onVoided) }, t('doc.void')));
  }
  const issued = issuedNotices.get(doc.id) || [];
  return h(
    'div',
    { class: 'doc-tools', 'data-testid': 'doc-tools' },
    h('div', { class: 'action-row' }, tools),
    doc.number ? null : h('p', { class: 'hint' }, t('doc.printHint')),
    issued.map((noticeId) =>
      h('p', { class: 'hint' }, h('a', { href: `/notices/sent/${noticeId}`, 'data-link': true }, t('doc.issuedProgress'))),
    ),
  );
}

async function voidDialog(doc, onVoided) {
  const reason = h('textarea', { name: 'reason', rows: '3', maxlength: String(VOID_REASON_MAX_CHARS) });
  const result = await openDialog(t('doc.voidTitle'), (close) =>
    dialogForm(
      close,
      [h('p', {}, t('doc.voidWarning', { number: doc.number })), field(t('doc.voidReason'), reason)],
      t('doc.void'),
      async () => {
        const text = reason.value.trim();
        if (!text) throw { field: 'reason', message: t('doc.voidReasonRequired') };
        const voided = await api.post(`/api/documents/${doc.id}/void`, { reason: text });
        return { voided, reason: text };
      },
    ),
  );
  if (result) onVoided(result.voided, result.reason);
}

async function issueDialog(doc, onIssued) {
  const picker = createTargetPicker({ members: false });
  const confirm = h('input', { type: 'checkbox', name: 'require_confirm' });
  const notice = await openDialog(
    t('doc.issueTitle'),
    (close) =>
      dialogForm(
        close,
        [
          h('p', { class: 'hint' }, t('doc.issueHint', { number: doc.number })),
          picker.element,
          h('label', { class: 'checkbox' }, confirm, t('doc.issueConfirm')),
        ],
        t('doc.issue'),
        async () => {
          const orgIds = picker.value().org_ids;
          if (orgIds.length === 0) throw { field: 'targets', message: t('doc.issueTargetsRequired') };
          try {
            return await api.post(`/api/documents/${doc.id}/issue`, { org_ids: orgIds, require_confirm: confirm.checked });
          } catch (error) {
            // The server names the rejected organization as `org_ids[N]`.
            const position = /^org_ids\[(\d+)\]/.exec(error.field || '');
            if (position) throw { field: 'targets', message: `${picker.nameOf('org_ids', Number(position[1]))}：${error.message}` };
            throw error;
          }
        },
      ),
    { wide: true },
  );
  if (!notice) return;
  issuedNotices.set(doc.id, [...(issuedNotices.get(doc.id) || []), notice.id]);
  announce(t('doc.issueDone'));
  onIssued(notice);
}
