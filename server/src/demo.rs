//! The demo province, seeded once by `dangwu serve --demo` into an empty
//! store: a provincial committee, three city committees, district
//! committees, a general branch, ten branches with a party group, about
//! sixty members with officer roles, and an account for every member.
//! 云溪市委机关党支部 also gets meeting records (see
//! [`crate::meetings::demo`]) and 东城区机关第一党支部 three people in the
//! development pipeline (see [`crate::membership::demo`]), dated relative
//! to the day of seeding.
//!
//! Every name and place is invented. The data is generated from fixed lists
//! with a fixed seed, so every demo start looks the same.

use sqlx::AnyConnection;

use crate::audit::{self, Actor};
use crate::auth::accounts::insert_account;
use crate::db::{Db, now_ms};
use crate::members::idcard;
use crate::org::{OrgKind, OrgRole};

/// Password of every demo account, including the built-in administrators.
pub const DEMO_PASSWORD: &str = "Dangwu@2026";

/// The tree: (name, kind, parent index into this list).
const ORGS: &[(&str, OrgKind, Option<usize>)] = &[
    ("江南省委", OrgKind::Committee, None),
    ("江南省人民政府党组", OrgKind::LeadingGroup, Some(0)),
    ("青川市委", OrgKind::Committee, Some(0)),
    ("云溪市委", OrgKind::Committee, Some(0)),
    ("临江市委", OrgKind::Committee, Some(0)),
    ("青川市东城区委", OrgKind::Committee, Some(2)),
    ("青川市西城区委", OrgKind::Committee, Some(2)),
    ("云溪市南湖区委", OrgKind::Committee, Some(3)),
    ("临江市江北区委", OrgKind::Committee, Some(4)),
    ("东城区和平街道党总支", OrgKind::GeneralBranch, Some(5)),
    ("东城区机关第一党支部", OrgKind::Branch, Some(5)),
    ("和平街道第一党支部", OrgKind::Branch, Some(9)),
    ("和平街道第二党支部", OrgKind::Branch, Some(9)),
    ("西城区教育系统党支部", OrgKind::Branch, Some(6)),
    ("云溪市委机关党支部", OrgKind::Branch, Some(3)),
    ("南湖区卫健局党支部", OrgKind::Branch, Some(7)),
    ("南湖区科技园党支部", OrgKind::Branch, Some(7)),
    ("江北区城管局党支部", OrgKind::Branch, Some(8)),
    ("江北区幸福社区党支部", OrgKind::Branch, Some(8)),
    ("临江市委机关党支部", OrgKind::Branch, Some(4)),
    ("科技园第一党小组", OrgKind::Group, Some(16)),
];

/// Members per branch.
const MEMBERS_PER_BRANCH: usize = 6;

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "高", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "邓", "冯", "曹",
];
const GIVEN_MALE: &[&str] = &[
    "建国", "志强", "伟", "军", "海涛", "明", "国栋", "振华", "文斌", "立新", "永刚", "德胜",
    "俊杰", "晓东", "卫东",
];
const GIVEN_FEMALE: &[&str] = &[
    "秀英", "丽娟", "敏", "静", "海燕", "红梅", "晓燕", "雪梅", "玉兰", "慧", "婷", "春花", "晓琳",
    "桂芳", "文静",
];
const ETHNICITIES: &[&str] = &[
    "汉族", "汉族", "汉族", "汉族", "回族", "壮族", "满族", "苗族",
];
const EDUCATION: &[&str] = &[
    "大学本科",
    "大学本科",
    "硕士研究生",
    "大学专科",
    "高中",
    "博士研究生",
];
/// Fictional six-digit region codes for generated identity numbers.
const REGION_CODES: &[&str] = &["330102", "330103", "330204", "330301", "330402"];

/// A small linear congruential generator: reproducible demo data needs no
/// cryptographic randomness.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() as usize) % items.len()]
    }
}

/// One generated person.
struct Person {
    name: String,
    gender: &'static str,
    birth: (i32, u32, u32),
}

fn person(rng: &mut Lcg, taken: &mut std::collections::HashSet<String>) -> Person {
    loop {
        let female = rng.next() % 5 < 2;
        let given = if female {
            rng.pick(GIVEN_FEMALE)
        } else {
            rng.pick(GIVEN_MALE)
        };
        let name = format!("{}{}", rng.pick(SURNAMES), given);
        if taken.insert(name.clone()) {
            let birth = (
                1962 + (rng.next() % 38) as i32,
                1 + (rng.next() % 12) as u32,
                1 + (rng.next() % 28) as u32,
            );
            return Person {
                name,
                gender: if female { "female" } else { "male" },
                birth,
            };
        }
    }
}

fn id_number(rng: &mut Lcg, birth: (i32, u32, u32), sequence: usize, female: bool) -> String {
    // The 17th digit is odd for men and even for women.
    let order = (sequence % 50) * 2 + if female { 2 } else { 1 };
    let first17 = format!(
        "{}{:04}{:02}{:02}{:03}",
        rng.pick(REGION_CODES),
        birth.0,
        birth.1,
        birth.2,
        order
    );
    let check = idcard::check_char(&first17).expect("17 digits");
    format!("{first17}{check}")
}

/// The logins printed at start: (username, who).
pub const HIGHLIGHTED_LOGINS: &[(&str, &str)] = &[
    ("sysadmin", "系统管理员 system administrator"),
    ("secadmin", "安全保密管理员 security administrator"),
    ("auditor", "安全审计员 security auditor"),
    ("shengwei", "江南省委书记 provincial secretary"),
    ("qingchuan", "青川市委书记 city secretary"),
    ("zhibu", "东城区机关第一党支部书记 branch secretary"),
    ("dangyuan", "东城区机关第一党支部党员 branch member"),
];

/// Seeds the demo province unless any organization exists already.
pub async fn seed(db: &Db, key: &ed25519_dalek::SigningKey) -> anyhow::Result<()> {
    let orgs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orgs")
        .fetch_one(&db.pool)
        .await?;
    if orgs > 0 {
        tracing::info!("store already has organizations, demo data not seeded");
        return Ok(());
    }
    let mut tx = db.begin().await?;
    let org_ids = insert_orgs(&mut tx).await?;
    let members = insert_members(&mut tx, &org_ids).await?;
    crate::meetings::demo::seed(&mut tx, "云溪市委机关党支部").await?;
    crate::learning::demo::seed(&mut tx, "东城区机关第一党支部").await?;
    crate::membership::demo::seed(&mut tx, "东城区机关第一党支部").await?;
    crate::approvals::demo::seed(&mut tx, "东城区机关第一党支部").await?;
    audit::append(
        &mut tx,
        key,
        &Actor::system(),
        "demo.seed",
        ("store", "demo".to_owned()),
        serde_json::json!({"orgs": org_ids.len(), "members": members}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(orgs = org_ids.len(), members, "demo province seeded");
    Ok(())
}

async fn insert_orgs(conn: &mut AnyConnection) -> anyhow::Result<Vec<(i64, String)>> {
    let now = now_ms();
    let mut ids: Vec<(i64, String)> = Vec::new();
    for (index, (name, kind, parent)) in ORGS.iter().enumerate() {
        let parent = parent.map(|p| ids[p].clone());
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO orgs (parent_id, name, kind, path, sort_order, created_at, updated_at) \
             VALUES ($1, $2, $3, '', $4, $5, $5) RETURNING id",
        )
        .bind(parent.as_ref().map(|p| p.0))
        .bind(*name)
        .bind(kind.as_str())
        .bind(index as i64)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        let path = format!("{}{id}/", parent.as_ref().map_or("/", |p| p.1.as_str()));
        sqlx::query("UPDATE orgs SET path = $1 WHERE id = $2")
            .bind(&path)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        ids.push((id, path));
    }
    Ok(ids)
}

/// Inserts the members of every branch, their accounts and officer roles;
/// returns the number of members.
async fn insert_members(
    conn: &mut AnyConnection,
    org_ids: &[(i64, String)],
) -> anyhow::Result<usize> {
    let mut rng = Lcg(20261204);
    let mut taken = std::collections::HashSet::new();
    let mut count = 0;
    // One hash for all demo accounts: they share a password, and hashing
    // sixty times would slow every demo start.
    let hash = crate::auth::password::hash(DEMO_PASSWORD)?;
    // Branch secretaries by org index, to name committee officers later.
    let mut secretaries: Vec<(usize, i64)> = Vec::new();
    let branch_roles = [
        Some(OrgRole::Secretary),
        Some(OrgRole::OrganizationMember),
        Some(OrgRole::PropagandaMember),
        None,
        None,
        None,
    ];
    for (index, (_, kind, _)) in ORGS.iter().enumerate() {
        if *kind != OrgKind::Branch {
            continue;
        }
        for (slot, role) in branch_roles.iter().enumerate().take(MEMBERS_PER_BRANCH) {
            let org_id = org_ids[index].0;
            let member_id = insert_member(conn, &mut rng, &mut taken, org_id, count).await?;
            count += 1;
            if let Some(role) = role {
                assign(conn, org_id, member_id, *role).await?;
            }
            if *role == Some(OrgRole::Secretary) {
                secretaries.push((index, member_id));
            }
            let username = demo_username(index, slot, count);
            let name = member_name(conn, member_id).await?;
            insert_account(conn, &username, &name, &hash, Some(member_id), None, false)
                .await
                .map_err(|error| {
                    anyhow::anyhow!("failed to create demo account {username}: {}", error.code)
                })?;
        }
    }
    assign_committee_officers(conn, org_ids, &secretaries).await?;
    Ok(count)
}

/// Memorable usernames for the highlighted logins, `dy001`-style otherwise.
fn demo_username(org_index: usize, slot: usize, number: usize) -> String {
    match (ORGS[org_index].0, slot) {
        ("东城区机关第一党支部", 0) => "zhibu".to_owned(),
        ("东城区机关第一党支部", 3) => "dangyuan".to_owned(),
        ("云溪市委机关党支部", 0) => "shengwei".to_owned(),
        ("和平街道第一党支部", 0) => "qingchuan".to_owned(),
        _ => format!("dy{number:03}"),
    }
}

async fn member_name(conn: &mut AnyConnection, member_id: i64) -> anyhow::Result<String> {
    Ok(sqlx::query_scalar("SELECT name FROM members WHERE id = $1")
        .bind(member_id)
        .fetch_one(&mut *conn)
        .await?)
}

/// Committee officers come from the branches below them, as in practice:
/// the provincial secretary is the first secretary of 云溪市委机关党支部,
/// the 青川市委 secretary the one of 和平街道第一党支部, and so on.
async fn assign_committee_officers(
    conn: &mut AnyConnection,
    org_ids: &[(i64, String)],
    secretaries: &[(usize, i64)],
) -> anyhow::Result<()> {
    let secretary_of = |branch: &str| {
        secretaries
            .iter()
            .find(|(index, _)| ORGS[*index].0 == branch)
            .map(|(_, id)| *id)
            .expect("branch exists in the demo tree")
    };
    let org_index = |name: &str| {
        ORGS.iter()
            .position(|(n, _, _)| *n == name)
            .expect("org exists")
    };
    let plan = [
        ("江南省委", "云溪市委机关党支部", OrgRole::Secretary),
        ("青川市委", "和平街道第一党支部", OrgRole::Secretary),
        ("云溪市委", "南湖区卫健局党支部", OrgRole::Secretary),
        ("临江市委", "临江市委机关党支部", OrgRole::Secretary),
        ("青川市东城区委", "和平街道第二党支部", OrgRole::Secretary),
        (
            "东城区和平街道党总支",
            "和平街道第二党支部",
            OrgRole::Secretary,
        ),
        (
            "江南省委",
            "江北区城管局党支部",
            OrgRole::OrganizationMember,
        ),
    ];
    for (committee, branch, role) in plan {
        let org_id = org_ids[org_index(committee)].0;
        assign(conn, org_id, secretary_of(branch), role).await?;
    }
    Ok(())
}

async fn insert_member(
    conn: &mut AnyConnection,
    rng: &mut Lcg,
    taken: &mut std::collections::HashSet<String>,
    org_id: i64,
    sequence: usize,
) -> anyhow::Result<i64> {
    let person = person(rng, taken);
    let female = person.gender == "female";
    let joined_year = (person.birth.0 + 20 + (rng.next() % 15) as i32).min(2025);
    let probationary = sequence % 9 == 4;
    let joined_on = if probationary {
        "2026-03-15".to_owned()
    } else {
        format!("{joined_year}-07-01")
    };
    let now = now_ms();
    Ok(sqlx::query_scalar(
        "INSERT INTO members (org_id, name, gender, ethnicity, birth_date, education, joined_on, \
         status, phone, id_number, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
    )
    .bind(org_id)
    .bind(&person.name)
    .bind(person.gender)
    .bind(rng.pick(ETHNICITIES))
    .bind(format!(
        "{:04}-{:02}-{:02}",
        person.birth.0, person.birth.1, person.birth.2
    ))
    .bind(rng.pick(EDUCATION))
    .bind(joined_on)
    .bind(if probationary { "probationary" } else { "full" })
    .bind(format!("138{:08}", rng.next() % 100_000_000))
    .bind(id_number(rng, person.birth, sequence, female))
    .bind(now)
    .fetch_one(&mut *conn)
    .await?)
}

async fn assign(
    conn: &mut AnyConnection,
    org_id: i64,
    member_id: i64,
    role: OrgRole,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO org_roles (org_id, member_id, role, assigned_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(org_id)
    .bind(member_id)
    .bind(role.as_str())
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Prints the demo logins to standard output.
pub fn print_logins(public_url: &str) {
    println!();
    println!("Demo province 江南省 is ready. Open {public_url} and log in with one of:");
    for (username, who) in HIGHLIGHTED_LOGINS {
        println!("  {username:<10} {DEMO_PASSWORD}   {who}");
    }
    println!("Every other member account (dy001 ...) uses the same password.");
    println!();
}
