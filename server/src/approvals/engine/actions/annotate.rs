//! Urge, comment and mark read: actions that leave the route and its
//! approval tasks as they are.

use super::super::action::{ActionKind, Context, Reversible};
use super::super::effects::Effect;
use super::super::error::ActionError;
use super::super::ids::MemberId;
use super::super::query::open_tasks;
use super::super::state::{Instance, Status};

/// Reminds `member`, or every member with an open task (催办).
pub(super) fn urge(
    state: &mut Instance,
    context: &Context,
    member: Option<MemberId>,
    effects: &mut Vec<Effect>,
) -> Result<Reversible, ActionError> {
    if !matches!(
        state.status(),
        Status::InProgress { .. } | Status::Circulating
    ) {
        return Err(ActionError::NotAllowed {
            action: ActionKind::Urge,
            status: state.status().clone(),
        });
    }

    let mut members: Vec<MemberId> = open_tasks(state)
        .into_iter()
        .map(|task| task.member)
        .filter(|open| member.is_none_or(|wanted| wanted == *open))
        .collect();
    members.dedup();
    if let (Some(member), true) = (member, members.is_empty()) {
        return Err(ActionError::NothingToUrge(member));
    }

    effects.push(Effect::Urged {
        by: context.actor,
        members,
    });
    Ok(Reversible::No)
}

/// Records a comment in the history. Allowed in every status.
pub(super) fn comment(
    _state: &mut Instance,
    context: &Context,
    text: &str,
    effects: &mut Vec<Effect>,
) -> Result<Reversible, ActionError> {
    if text.trim().is_empty() {
        return Err(ActionError::EmptyText("comment"));
    }
    effects.push(Effect::Commented { by: context.actor });
    Ok(Reversible::No)
}

/// Marks the circulated document read by the actor; the last reader
/// finishes circulation and the document is approved.
pub(super) fn mark_read(
    state: &mut Instance,
    context: &Context,
    effects: &mut Vec<Effect>,
) -> Result<Reversible, ActionError> {
    if *state.status() != Status::Circulating {
        return Err(ActionError::NotAllowed {
            action: ActionKind::MarkRead,
            status: state.status().clone(),
        });
    }

    let readers = &mut state.progress.readers;
    let Some(reader) = readers.iter_mut().find(|r| r.member == context.actor) else {
        return Err(ActionError::NotReader(context.actor));
    };
    if reader.read_at.is_some() {
        return Err(ActionError::AlreadyRead(context.actor));
    }
    reader.read_at = Some(context.at);

    if readers.iter().all(|reader| reader.read_at.is_some()) {
        state.progress.status = Status::Approved;
        effects.push(Effect::CirculationFinished);
    }
    Ok(Reversible::No)
}
