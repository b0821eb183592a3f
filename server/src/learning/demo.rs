//! Demo learning data for one branch: a required course assigned to the
//! branch with two reading lessons, a question bank and an exam, an
//! elective course with a live lecture scheduled for tomorrow, this year's
//! targets, and offline training for some members. Part of the demo seed's
//! transaction.

use serde_json::json;
use sqlx::AnyConnection;

use crate::db::now_ms;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// One demo course: title, summary, category and lessons as
/// (title, minutes, text).
struct Plan<'a> {
    title: &'a str,
    summary: &'a str,
    category: &'a str,
    lessons: &'a [(&'a str, i64, &'a str)],
}

const COURSES: &[Plan] = &[
    Plan {
        title: "学习贯彻党的二十大精神",
        summary: "系统学习党的二十大报告和党章修正案，领会新时代新征程党的使命任务。",
        category: "required",
        lessons: &[
            (
                "第一讲：新时代十年的伟大变革",
                20,
                "<h2>新时代十年的伟大变革</h2><p>本讲回顾新时代十年取得的历史性成就、发生的历史性变革，理解其里程碑意义。</p><p>学习要点：一是把握成就的全面性；二是把握变革的深层次；三是把握经验的规律性。</p>",
            ),
            (
                "第二讲：中国式现代化的中国特色和本质要求",
                20,
                "<h2>中国式现代化</h2><p>本讲阐释中国式现代化是人口规模巨大、全体人民共同富裕、物质文明和精神文明相协调、人与自然和谐共生、走和平发展道路的现代化。</p>",
            ),
        ],
    },
    Plan {
        title: "党史学习教育专题",
        summary: "学党史、悟思想、办实事、开新局。",
        category: "elective",
        lessons: &[(
            "专题一：伟大建党精神",
            10,
            "<h2>伟大建党精神</h2><p>坚持真理、坚守理想，践行初心、担当使命，不怕牺牲、英勇斗争，对党忠诚、不负人民。</p>",
        )],
    },
];

/// Seeds the demo learning data of the named branch, managed by its
/// secretary's account.
pub async fn seed(conn: &mut AnyConnection, branch: &str) -> Result<(), sqlx::Error> {
    let org_id: i64 = sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1")
        .bind(branch)
        .fetch_one(&mut *conn)
        .await?;
    let organizer: i64 = sqlx::query_scalar(
        "SELECT a.id FROM accounts a JOIN org_roles r ON r.member_id = a.member_id \
         WHERE r.org_id = $1 AND r.role = 'secretary'",
    )
    .bind(org_id)
    .fetch_one(&mut *conn)
    .await?;
    let now = now_ms();
    let mut course_ids = Vec::new();
    for plan in COURSES {
        course_ids.push(insert_course(conn, org_id, organizer, plan, now).await?);
    }
    let course_id = course_ids[0];
    insert_lecture(conn, org_id, organizer, course_ids[1], now).await?;
    sqlx::query(
        "INSERT INTO learning_assignments (course_id, org_id, deadline_at, assigned_by, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(course_id)
    .bind(org_id)
    .bind(now + 30 * DAY_MS)
    .bind(organizer)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    insert_exam(conn, course_id, now).await?;
    insert_targets(conn, super::china_year(now)).await?;
    insert_offline(conn, org_id, organizer, now).await
}

async fn insert_course(
    conn: &mut AnyConnection,
    org_id: i64,
    organizer: i64,
    plan: &Plan<'_>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let course_id: i64 = sqlx::query_scalar(
        "INSERT INTO learning_courses (org_id, title, summary, category, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(org_id)
    .bind(plan.title)
    .bind(plan.summary)
    .bind(plan.category)
    .bind(organizer)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    for (position, (title, minutes, text)) in plan.lessons.iter().enumerate() {
        sqlx::query(
            "INSERT INTO learning_lessons (course_id, position, title, kind, duration_ms, max_rate_pct, \
             body_html, created_at) VALUES ($1, $2, $3, 'reading', $4, 150, $5, $6)",
        )
        .bind(course_id)
        .bind(position as i64 + 1)
        .bind(*title)
        .bind(minutes * 60_000)
        .bind(*text)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(course_id)
}

/// Schedules a live lecture at the end of a course for tomorrow at 15:00 China
/// time: a 党课 meeting of the whole branch, online, given by the secretary and
/// recorded by the next member.
async fn insert_lecture(
    conn: &mut AnyConnection,
    org_id: i64,
    organizer: i64,
    course_id: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    const HOUR_MS: i64 = 3600 * 1000;
    const TITLE: &str = "专题直播：新时代党的建设总要求";
    let lecturer: i64 = sqlx::query_scalar("SELECT member_id FROM accounts WHERE id = $1")
        .bind(organizer)
        .fetch_one(&mut *conn)
        .await?;
    let members: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM members WHERE org_id = $1 AND status = 'full' ORDER BY id",
    )
    .bind(org_id)
    .fetch_all(&mut *conn)
    .await?;
    let recorder = members
        .iter()
        .copied()
        .find(|member| *member != lecturer)
        .unwrap_or(lecturer);

    let tomorrow = (now + 8 * HOUR_MS) / DAY_MS + 1;
    let starts_at = tomorrow * DAY_MS + 15 * HOUR_MS - 8 * HOUR_MS;
    let duration_ms = 90 * 60 * 1000;
    let meeting_id: i64 = sqlx::query_scalar(
        "INSERT INTO meetings (org_id, kind, title, starts_at, ends_at, place, online, host_member, \
         recorder_member, status, created_by, created_at, updated_at) \
         VALUES ($1, 'party_lecture', $2, $3, $4, '线上', 1, $5, $6, 'scheduled', $7, $8, $8) RETURNING id",
    )
    .bind(org_id)
    .bind(TITLE)
    .bind(starts_at)
    .bind(starts_at + duration_ms)
    .bind(lecturer)
    .bind(recorder)
    .bind(organizer)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;

    for member_id in &members {
        sqlx::query(
            "INSERT INTO meeting_participants (meeting_id, member_id, org_id, attendance, voting, source) \
             VALUES ($1, $2, $3, 'required', 1, 'body')",
        )
        .bind(meeting_id)
        .bind(member_id)
        .bind(org_id)
        .execute(&mut *conn)
        .await?;
    }

    let position = super::courses::next_lesson_position(conn, course_id).await?;
    let lesson_id: i64 = sqlx::query_scalar(
        "INSERT INTO learning_lessons (course_id, position, title, kind, duration_ms, max_rate_pct, \
         body_html, created_at) VALUES ($1, $2, $3, 'live', $4, 100, $5, $6) RETURNING id",
    )
    .bind(course_id)
    .bind(position)
    .bind(TITLE)
    .bind(duration_ms)
    .bind("<p>支部书记主讲，课后可在问题队列中提问。</p>")
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO learning_lectures (lesson_id, meeting_id, lecturer_member, starts_at, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(lesson_id)
    .bind(meeting_id)
    .bind(lecturer)
    .bind(starts_at)
    .bind(organizer)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_exam(
    conn: &mut AnyConnection,
    course_id: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    let questions = [
        (
            "single",
            "中国共产党的根本宗旨是什么？",
            json!(["全心全意为人民服务", "实现共同富裕", "发展生产力"]),
            json!(0),
        ),
        (
            "multiple",
            "中国式现代化包括哪些特征？",
            json!([
                "人口规模巨大",
                "全体人民共同富裕",
                "走和平发展道路",
                "以资本为中心"
            ]),
            json!([0, 1, 2]),
        ),
        (
            "true_false",
            "党员应当按期交纳党费。",
            json!([]),
            json!(true),
        ),
        (
            "fill",
            "党的思想路线的核心是____。",
            json!([]),
            json!(["实事求是"]),
        ),
    ];
    for (kind, stem, options, answer) in questions {
        sqlx::query(
            "INSERT INTO learning_questions (course_id, kind, stem, options, answer, points) VALUES ($1, $2, $3, $4, $5, 25)",
        )
        .bind(course_id)
        .bind(kind)
        .bind(stem)
        .bind(options.to_string())
        .bind(answer.to_string())
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "INSERT INTO learning_exams (course_id, title, question_count, duration_ms, pass_pct, max_attempts, \
         credit_centi, created_at) VALUES ($1, '结业测试', 4, 600000, 75, 3, $2, $3)",
    )
    .bind(course_id)
    .bind(super::credit::EXAM_CENTI)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_targets(conn: &mut AnyConnection, year: i64) -> Result<(), sqlx::Error> {
    for (role, required, elective) in [("member", 4000, 1000), ("secretary", 5000, 1000)] {
        sqlx::query(
            "INSERT INTO learning_targets (year, role, required_centi, elective_centi) VALUES ($1, $2, $3, $4)",
        )
        .bind(year)
        .bind(role)
        .bind(required)
        .bind(elective)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Enters offline training for every other member of the branch.
async fn insert_offline(
    conn: &mut AnyConnection,
    org_id: i64,
    organizer: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    let members: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM members WHERE org_id = $1 ORDER BY id")
            .bind(org_id)
            .fetch_all(&mut *conn)
            .await?;
    for (index, member_id) in members
        .iter()
        .enumerate()
        .filter(|(index, _)| index % 2 == 1)
    {
        sqlx::query(
            "INSERT INTO learning_credits (member_id, year, category, centi, source, note, entered_by, created_at) \
             VALUES ($1, $2, 'required', $3, 'offline', '党校春季轮训班', $4, $5)",
        )
        .bind(member_id)
        .bind(super::china_year(now))
        .bind(800 + (index as i64 % 4) * 400)
        .bind(organizer)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
