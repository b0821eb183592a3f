// The votes and elections panel of a meeting: open ballots with buttons to
// cast them, results once a ballot closes, and the host's controls to open
// and close votes. The meeting page and the meeting room both show it.

import { api } from '../api.js';
import { announce, dialogForm, field, h, openDialog } from '../dom.js';
import { t } from '../i18n.js';
import { meetingCard } from './meetings.js';

const CHOICES = ['for', 'against', 'abstain'];

/**
 * Builds the panel for one snapshot of GET /api/meetings/ID, or null when
 * there is nothing to show. `path(suffix)` names the meeting's API routes,
 * `act(run, done)` runs an action and reloads, and `reload()` reloads.
 */
export function votesPanel({ view, path, act, reload }) {
  function resultText(vote) {
    const result = vote.result;
    if (!result) return null;
    const outcome = t(`meet.outcome.${result.outcome}`);
    if (result.kind === 'motion') {
      return t('meet.motionResult', { votes_for: result.votes_for, against: result.against, abstain: result.abstain, required: result.required, outcome });
    }
    const name = (position) => (vote.candidates.find((c) => c.position === position) || {}).name || '';
    const lines = result.candidates.map((c) => {
      let mark = '';
      if (c.elected) mark = ` ${t('meet.elected')}`;
      else if (c.tied) mark = ` ${t('meet.tied')}`;
      return `${t('meet.candidateVotes', { name: name(c.position), votes: c.votes })}${mark}`;
    });
    return `${lines.join('；')} · ${outcome}`;
  }

  /** Names an open ballot's choice: for, against or abstain on a motion, or the marked candidates. */
  function namedChoice(vote, choice) {
    if (!Array.isArray(choice)) return t(`meet.choice.${choice}`);
    if (choice.length === 0) return t('meet.blankBallot');
    return choice.map((position) => (vote.candidates.find((c) => c.position === position) || {}).name || '').join('、');
  }

  /** Builds an election ballot: at most `seats` candidates, none for a blank ballot. */
  function electionBallot(vote, cast) {
    const boxes = vote.candidates.map((candidate) =>
      h('label', { class: 'checkbox' }, h('input', { type: 'checkbox', value: String(candidate.position) }), candidate.name),
    );
    const submit = () => {
      const marked = boxes.map((label) => label.querySelector('input')).filter((box) => box.checked).map((box) => Number(box.value));
      cast({ candidates: marked });
    };
    return h(
      'fieldset',
      { class: 'row-actions election-ballot' },
      h('legend', {}, t('meet.markCandidates', { seats: vote.seats })),
      boxes,
      h('button', { type: 'button', class: 'button button-small button-primary', onclick: submit }, t('meet.castBallot')),
    );
  }

  function voteItem(vote) {
    const open = vote.status === 'open';
    const canCast = open && view.me.voting && view.me.present && !vote.i_voted;
    const cast = (ballot) => act(() => api.post(path(`/votes/${vote.id}/ballot`), ballot), t('meet.cast'));
    return h(
      'li',
      { class: 'vote', 'data-testid': 'vote' },
      h('strong', {}, vote.title),
      ' ',
      h('span', { class: 'tag' }, t(`meet.ballot.${vote.ballot}`)),
      ' ',
      h('span', { class: 'tag tag-muted' }, t(`meet.rule.${vote.pass_rule}`)),
      h('div', { class: 'hint' }, open ? t('meet.voteOpen', { voted: vote.voted }) : t('meet.voteClosed', { voted: vote.voted })),
      vote.i_voted ? h('div', { class: 'hint' }, t('meet.iVoted')) : null,
      canCast && vote.kind === 'motion'
        ? h('div', { class: 'row-actions' }, CHOICES.map((choice) => h('button', { type: 'button', class: 'button button-small', onclick: () => cast({ choice }) }, t(`meet.choice.${choice}`))))
        : null,
      canCast && vote.kind === 'election' ? electionBallot(vote, cast) : null,
      open && view.can.run_votes
        ? h('button', { type: 'button', class: 'button button-small button-danger', onclick: () => act(() => api.post(path(`/votes/${vote.id}/close`)), t('meet.voteClosedNow')) }, t('meet.closeVote'))
        : null,
      vote.result ? h('p', { class: 'vote-result', 'data-testid': 'vote-result' }, resultText(vote)) : null,
      vote.named.length > 0
        ? h('p', { class: 'hint' }, vote.named.map((entry) => `${entry.name}：${namedChoice(vote, entry.choice)}`).join('；'))
        : null,
    );
  }

  async function openVote() {
    const rules = [h('option', { value: '' }, t('meet.noAgendaItem')), view.agenda.map((item) => h('option', { value: String(item.position) }, item.title))];
    const electionFields = h(
      'div',
      { hidden: true },
      field(t('meet.seats'), h('input', { name: 'seats', type: 'number', min: 1, value: '1' })),
      h(
        'fieldset',
        { class: 'field' },
        h('legend', {}, t('meet.candidates')),
        view.participants.map((person) =>
          h('label', { class: 'checkbox' }, h('input', { type: 'checkbox', name: 'candidates', value: String(person.member_id) }), person.name),
        ),
      ),
    );
    const kindSelect = h(
      'select',
      { name: 'kind', onchange: () => { electionFields.hidden = kindSelect.value !== 'election'; } },
      h('option', { value: 'motion' }, t('meet.voteKind.motion')),
      h('option', { value: 'election' }, t('meet.voteKind.election')),
    );
    const opened = await openDialog(t('meet.openVote'), (close) =>
      dialogForm(
        close,
        [
          field(t('meet.voteKindField'), kindSelect),
          field(t('meet.voteTitle'), h('input', { name: 'title', type: 'text', maxlength: 200 })),
          field(t('meet.agendaItemField'), h('select', { name: 'agenda_position' }, rules)),
          field(
            t('meet.ballotField'),
            h('select', { name: 'ballot' }, h('option', { value: 'open' }, t('meet.ballot.open')), h('option', { value: 'secret' }, t('meet.ballot.secret'))),
          ),
          field(
            t('meet.passRule'),
            h('select', { name: 'pass_rule' }, h('option', { value: 'majority' }, t('meet.rule.majority')), h('option', { value: 'two_thirds' }, t('meet.rule.two_thirds'))),
          ),
          electionFields,
        ],
        t('meet.openVote'),
        async (form) => {
          const data = new FormData(form);
          const position = String(data.get('agenda_position') || '');
          const election = data.get('kind') === 'election';
          await api.post(path('/votes'), {
            kind: data.get('kind'),
            title: String(data.get('title') || ''),
            ballot: data.get('ballot'),
            agenda_position: position === '' ? null : Number(position),
            pass_rule: election ? null : data.get('pass_rule'),
            seats: election ? Number(data.get('seats')) : 0,
            candidates: election ? data.getAll('candidates').map((id) => ({ member_id: Number(id) })) : [],
          });
          return true;
        },
      ),
    );
    if (opened) {
      announce(t('meet.voteOpened'));
      await reload();
    }
  }

  function votesCard() {
    if (!view.decides) return null;
    const anyOpen = view.votes.some((vote) => vote.status === 'open');
    const button = view.can.run_votes && !anyOpen ? h('button', { type: 'button', class: 'button', onclick: openVote }, t('meet.openVote')) : null;
    if (!button && view.votes.length === 0) return null;
    return meetingCard(
      t('meet.votes'),
      button,
      view.votes.length === 0 ? h('p', { class: 'muted' }, t('meet.noVotes')) : h('ul', { class: 'vote-list' }, view.votes.map(voteItem)),
    );
  }

  return votesCard();
}
