//! Topic names and who may subscribe to them. Subscribing applies the same
//! permission rule as the HTTP API.

use crate::auth::Account;
use crate::error::AppError;
use crate::org::load_org;
use crate::perm::{Access, Principal};
use crate::state::AppState;

/// A hub topic, written `kind:id` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// One account's inbox and to-do list.
    User(i64),
    Org(i64),
    /// A notice's receipts, for its sender.
    Notice(i64),
    Document(i64),
    Meeting(i64),
    Course(i64),
}

impl Topic {
    pub fn parse(name: &str) -> Option<Self> {
        let (kind, id) = name.split_once(':')?;
        let id: i64 = id.parse().ok().filter(|id| *id > 0)?;
        Some(match kind {
            "user" => Self::User(id),
            "org" => Self::Org(id),
            "notice" => Self::Notice(id),
            "document" => Self::Document(id),
            "meeting" => Self::Meeting(id),
            "course" => Self::Course(id),
            _ => return None,
        })
    }

    pub fn name(self) -> String {
        let (kind, id) = match self {
            Self::User(id) => ("user", id),
            Self::Org(id) => ("org", id),
            Self::Notice(id) => ("notice", id),
            Self::Document(id) => ("document", id),
            Self::Meeting(id) => ("meeting", id),
            Self::Course(id) => ("course", id),
        };
        format!("{kind}:{id}")
    }
}

/// Checks that the principal may read the topic.
pub async fn authorize(
    state: &AppState,
    account: &Account,
    principal: &Principal,
    topic: Topic,
) -> Result<(), AppError> {
    match topic {
        Topic::User(account_id) => {
            if account_id == principal.account_id {
                Ok(())
            } else {
                Err(AppError::forbidden())
            }
        }
        Topic::Org(id) => {
            let org = load_org(&mut *state.db.pool.acquire().await?, id).await?;
            let allowed = principal.can_org(&org.path, Access::Read);
            principal
                .check(&state.db, allowed, ("org", id), Access::Read)
                .await
        }
        Topic::Notice(id) => {
            let sender: Option<i64> =
                sqlx::query_scalar("SELECT sender_id FROM notices WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&state.db.pool)
                    .await?;
            match sender {
                None => Err(AppError::not_found(("通知", "notice"), id)),
                Some(sender) if sender == principal.account_id => Ok(()),
                Some(_) => Err(AppError::forbidden()),
            }
        }
        Topic::Document(id) => {
            let document =
                crate::approvals::store::load(&mut *state.db.pool.acquire().await?, id).await?;
            if crate::approvals::store::can_view_as(state, account, principal, &document).await? {
                Ok(())
            } else {
                Err(AppError::not_found(("公文", "document"), id))
            }
        }
        Topic::Meeting(id) => {
            let meeting = crate::meetings::store::load_db(&state.db, id).await?;
            // Someone the host let in from the lobby reads the meeting's chat too.
            let allowed = crate::meetings::can_read(state, principal, &meeting).await?
                || state.live.is_let_in(id, principal.account_id).await;
            if allowed {
                Ok(())
            } else {
                Err(AppError::forbidden())
            }
        }
        Topic::Course(id) => {
            let course =
                crate::learning::load_course(&mut *state.db.pool.acquire().await?, id).await?;
            if crate::learning::can_read_course(state, principal, &course).await? {
                Ok(())
            } else {
                Err(AppError::not_found(("课程", "course"), id))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trip() {
        for name in [
            "user:1",
            "org:42",
            "notice:7",
            "document:3",
            "meeting:9",
            "course:2",
        ] {
            assert_eq!(Topic::parse(name).map(Topic::name).as_deref(), Some(name));
        }
    }

    #[test]
    fn parse_rejects_bad_names() {
        for name in [
            "", "org", "org:", "org:x", "org:-1", "org:0", "team:1", "org:1:2",
        ] {
            assert_eq!(Topic::parse(name), None, "{name}");
        }
    }
}
