//! Who may read and who may manage a course.

use sqlx::{AnyConnection, Row};

use crate::error::{AppError, AppResult};
use crate::perm::{Access, Principal};
use crate::state::AppState;

/// The parts of a course that permission checks need.
#[derive(Debug, Clone)]
pub struct CourseRef {
    pub id: i64,
    pub org_id: i64,
    pub org_path: String,
    pub title: String,
    pub category: super::Category,
}

impl CourseRef {
    /// Officers of the owning organization or of an ancestor, and the
    /// system administrator.
    pub fn can_manage(&self, principal: &Principal) -> bool {
        principal.can_org(&self.org_path, Access::Write)
    }
}

/// Loads a course with its organization's path, or `not_found`.
pub async fn load_course(conn: &mut AnyConnection, id: i64) -> AppResult<CourseRef> {
    let row = sqlx::query(
        "SELECT c.id, c.org_id, o.path, c.title, c.category FROM learning_courses c \
         JOIN orgs o ON o.id = c.org_id WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::not_found(("课程", "course"), id))?;
    let category: String = row.try_get("category")?;
    Ok(CourseRef {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        org_path: row.try_get("path")?,
        title: row.try_get("title")?,
        category: super::Category::parse(&category).ok_or_else(|| {
            AppError::internal(format!("course {id} has unknown category {category}"))
        })?,
    })
}

/// Whether the principal may read the course: managers, readers of the
/// owning organization, members inside its subtree and members it is
/// assigned to.
pub async fn can_read_course(
    state: &AppState,
    principal: &Principal,
    course: &CourseRef,
) -> AppResult<bool> {
    if principal.can_org(&course.org_path, Access::Read) {
        return Ok(true);
    }
    let Some(own_path) = principal.own_org_path.as_deref() else {
        return Ok(false);
    };
    if own_path.starts_with(course.org_path.as_str()) {
        return Ok(true);
    }
    let assigned = assigned_course_ids(&mut *state.db.pool.acquire().await?, principal).await?;
    Ok(assigned.iter().any(|(id, _)| *id == course.id))
}

/// Reads a course for a caller who may read it, or answers `not_found`, so
/// that outsiders learn nothing about courses they cannot see.
pub async fn readable_course(
    state: &AppState,
    principal: &Principal,
    id: i64,
) -> AppResult<CourseRef> {
    let course = load_course(&mut *state.db.pool.acquire().await?, id).await?;
    if can_read_course(state, principal, &course).await? {
        Ok(course)
    } else {
        Err(AppError::not_found(("课程", "course"), id))
    }
}

/// Loads a course that the caller manages: `not_found` for unreadable
/// courses, `forbidden` for readable ones the caller does not manage.
pub async fn managed_course(
    state: &AppState,
    principal: &Principal,
    id: i64,
) -> AppResult<CourseRef> {
    let course = readable_course(state, principal, id).await?;
    if course.can_manage(principal) {
        Ok(course)
    } else {
        Err(AppError::forbidden())
    }
}

/// Loads the course of a lesson that the principal may read, or answers
/// `not_found` for the lesson. A deleted lesson is not found.
pub async fn readable_lesson_course(
    state: &AppState,
    principal: &Principal,
    lesson_id: i64,
) -> AppResult<CourseRef> {
    let not_found = || AppError::not_found(("课时", "lesson"), lesson_id);
    let course_id: i64 = sqlx::query_scalar(
        "SELECT course_id FROM learning_lessons WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(lesson_id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(not_found)?;
    readable_course(state, principal, course_id)
        .await
        .map_err(|_| not_found())
}

/// The organization path of a member, or `not_found` naming `field`.
pub async fn member_org_path(
    conn: &mut AnyConnection,
    member_id: i64,
    field: &str,
) -> AppResult<String> {
    let path: Option<String> = sqlx::query_scalar(
        "SELECT o.path FROM members m JOIN orgs o ON o.id = m.org_id WHERE m.id = $1",
    )
    .bind(member_id)
    .fetch_optional(&mut *conn)
    .await?;
    path.ok_or_else(|| AppError::not_found(("党员", "member"), member_id).field(field))
}

/// Courses assigned to the principal's member, directly or through an
/// organization whose subtree contains the member, with the earliest
/// deadline of those assignments.
pub async fn assigned_course_ids(
    conn: &mut AnyConnection,
    principal: &Principal,
) -> AppResult<Vec<(i64, Option<i64>)>> {
    let (Some(member_id), Some(own_path)) = (principal.member_id, &principal.own_org_path) else {
        return Ok(Vec::new());
    };
    let rows = sqlx::query(
        "SELECT a.course_id, MIN(a.deadline_at) AS deadline_at FROM learning_assignments a \
         LEFT JOIN orgs o ON o.id = a.org_id \
         WHERE a.member_id = $1 OR (o.path IS NOT NULL AND $2 LIKE o.path || '%') \
         GROUP BY a.course_id",
    )
    .bind(member_id)
    .bind(own_path)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("course_id")?, row.try_get("deadline_at")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}
