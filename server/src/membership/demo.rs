//! Demo people in the development pipeline of one branch, dated relative
//! to the day of seeding: a new applicant whose talk is due, an activist
//! of seven months (so becoming a candidate is still months away) and a
//! candidate with review and training done. Part of the demo seed's
//! transaction; no reminders are sent.

use chrono::{Days, NaiveDate};
use sqlx::AnyConnection;

use super::rules::{Stage, Step};
use crate::db::now_ms;
use crate::members::idcard;

/// One demo person: name, gender, birth date, stage and steps as days
/// before today.
struct Plan {
    name: &'static str,
    gender: &'static str,
    birth: &'static str,
    stage: Stage,
    steps: &'static [(Step, u64)],
}

const PLANS: [Plan; 3] = [
    Plan {
        name: "林晓雨",
        gender: "female",
        birth: "2001-04-12",
        stage: Stage::Applicant,
        steps: &[(Step::Application, 20)],
    },
    Plan {
        name: "赵明轩",
        gender: "male",
        birth: "1997-09-03",
        stage: Stage::Activist,
        steps: &[
            (Step::Application, 300),
            (Step::Talk, 290),
            (Step::Activist, 210),
            (Step::Contacts, 205),
            (Step::ThoughtReport, 120),
            (Step::Assessment, 30),
        ],
    },
    Plan {
        name: "孙佳怡",
        gender: "female",
        birth: "1995-11-20",
        stage: Stage::Candidate,
        steps: &[
            (Step::Application, 800),
            (Step::Talk, 790),
            (Step::Activist, 700),
            (Step::Contacts, 695),
            (Step::Candidate, 330),
            (Step::PoliticalReview, 300),
            (Step::Training, 280),
        ],
    },
];

/// Seeds the demo pipeline of the named branch, recorded by its secretary.
pub async fn seed(conn: &mut AnyConnection, branch: &str) -> Result<(), sqlx::Error> {
    let org_id: i64 = sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1")
        .bind(branch)
        .fetch_one(&mut *conn)
        .await?;
    let recorder: i64 = sqlx::query_scalar(
        "SELECT a.id FROM accounts a JOIN org_roles r ON r.member_id = a.member_id \
         WHERE r.org_id = $1 AND r.role = 'secretary'",
    )
    .bind(org_id)
    .fetch_one(&mut *conn)
    .await?;
    let today = super::today();
    let now = now_ms();
    for (index, plan) in PLANS.iter().enumerate() {
        let person_id: i64 = sqlx::query_scalar(
            "INSERT INTO membership_people (org_id, name, gender, ethnicity, birth_date, education, \
             phone, id_number, stage, created_at, updated_at) \
             VALUES ($1, $2, $3, '汉族', $4, '大学本科', $5, $6, $7, $8, $8) RETURNING id",
        )
        .bind(org_id)
        .bind(plan.name)
        .bind(plan.gender)
        .bind(plan.birth)
        .bind(format!("1390000{:04}", index + 1))
        .bind(id_number(plan.birth, index, plan.gender == "female"))
        .bind(plan.stage.as_str())
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        for (step, days_ago) in plan.steps {
            let detail = match step {
                Step::Training => r#"{"note":"党校集中培训","training_days":3}"#,
                _ => "{}",
            };
            sqlx::query(
                "INSERT INTO membership_steps (person_id, step, taken_on, detail, recorded_by, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(person_id)
            .bind(step.as_str())
            .bind((today - Days::new(*days_ago)).to_string())
            .bind(detail)
            .bind(recorder)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Builds a valid identity number for the birth date, in a region code that the
/// demo members do not use.
fn id_number(birth: &str, index: usize, female: bool) -> String {
    let birth = NaiveDate::parse_from_str(birth, "%Y-%m-%d").expect("demo birth dates are valid");
    let order = index * 2 + if female { 2 } else { 1 };
    let first17 = format!("330106{}{order:03}", birth.format("%Y%m%d"));
    let check = idcard::check_char(&first17).expect("17 digits");
    format!("{first17}{check}")
}
