//! Spreadsheet import of organizations and members: valid rows land,
//! every rejected row is reported with its row number and column, a dry
//! run stores nothing, and XLSX dates are read as dates.

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::{Value, json};
use server::config::{ServeArgs, StoreArgs};
use server::serve::Server;
use tempfile::TempDir;

struct Running {
    addr: SocketAddr,
    state: server::state::AppState,
    _dir: TempDir,
}

async fn start() -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let args = ServeArgs {
        store: StoreArgs {
            data_dir: Some(dir.path().to_owned()),
            ..Default::default()
        },
        listen: Some("127.0.0.1:0".parse().unwrap()),
        demo: true,
        ..Default::default()
    };
    let server = Server::bind(args.resolve().unwrap()).await.unwrap();
    let (addr, state) = (server.addr, server.state.clone());
    tokio::spawn(server.run(std::future::pending()));
    Running {
        addr,
        state,
        _dir: dir,
    }
}

async fn sysadmin(running: &Running) -> (reqwest::Client, String) {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let response = http
        .post(format!("http://{}/api/auth/login", running.addr))
        .json(&json!({"username": "sysadmin", "password": server::demo::DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    (http, body["csrf_token"].as_str().unwrap().to_owned())
}

async fn import(
    running: &Running,
    format: &str,
    dry_run: bool,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let (http, csrf) = sysadmin(running).await;
    let response = http
        .post(format!("http://{}/api/import/members", running.addr))
        .query(&[("format", format), ("dry_run", &dry_run.to_string())])
        .header("x-csrf-token", csrf)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Valid identity numbers for the test rows (check characters computed).
fn id_number(sequence: u32) -> String {
    let first17 = format!("44010119850101{sequence:03}");
    let check = server::members::idcard::check_char(&first17).unwrap();
    format!("{first17}{check}")
}

fn csv_sheet() -> String {
    let header = "所在组织,姓名,性别,民族,出生日期,学历,入党日期,党员状态,联系电话,身份证号";
    let rows = [
        format!("南岭市委/南岭市委机关党总支/机关第一党支部,陈志远,男,汉族,1985-01-01,大学本科,2008-07-01,正式党员,13900000001,{}", id_number(1)),
        format!("南岭市委/南岭市委机关党总支/机关第一党支部,林慧,女,汉族,1985-01-01,硕士研究生,,预备党员,13900000002,{}", id_number(2)),
        // Row 4: wrong check character.
        "南岭市委/南岭市委机关党总支/机关第一党支部,王五,男,汉族,1985-01-01,大学本科,,正式党员,13900000003,440101198501010031".to_owned(),
        // Row 5: same identity number as row 2.
        format!("南岭市委/南岭市委机关党总支/机关第一党支部,赵六,男,汉族,1985-01-01,大学本科,,正式党员,13900000004,{}", id_number(2)),
        // Row 6: a branch cannot hold a committee.
        format!("南岭市委/南岭市委机关党总支/机关第一党支部/某某党委,钱七,男,汉族,1985-01-01,大学本科,,正式党员,13900000005,{}", id_number(5)),
        // Row 7: gender.
        format!("南岭市委/机关第二党支部,孙八,未知,汉族,1985-01-01,大学本科,,正式党员,13900000006,{}", id_number(6)),
        // Row 8: no kind can be read from the name.
        format!("南岭市委/办公室,周九,男,汉族,1985-01-01,大学本科,,正式党员,13900000007,{}", id_number(7)),
        String::new(),
    ];
    format!("{header}\n{}\n", rows.join("\n"))
}

#[tokio::test]
async fn csv_rows_reported_one_by_one() {
    let running = start().await;
    let (status, report) = import(&running, "csv", false, csv_sheet().into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rows"], 7);
    assert_eq!(report["imported"], 2);
    assert_eq!(report["created_orgs"], 3);
    let rejected: Vec<(i64, String)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["row"].as_i64().unwrap(),
                r["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (4, "id_number".to_owned()),
            (5, "id_number".to_owned()),
            (6, "org_path".to_owned()),
            (7, "gender".to_owned()),
            (8, "org_path".to_owned()),
        ]
    );
    for row in report["rejected"].as_array().unwrap() {
        assert!(!row["message"].as_str().unwrap().is_empty());
    }
    let kinds: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, kind FROM orgs WHERE name LIKE '%南岭%' OR name LIKE '机关%' ORDER BY id",
    )
    .fetch_all(&running.state.db.pool)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        vec![
            ("南岭市委".to_owned(), "committee".to_owned()),
            ("南岭市委机关党总支".to_owned(), "general_branch".to_owned()),
            ("机关第一党支部".to_owned(), "branch".to_owned()),
        ]
    );
    // Rejected rows left nothing behind: no 某某党委, no 办公室, no 第二党支部.
    let stray: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM orgs WHERE name IN ('某某党委', '办公室', '机关第二党支部')",
    )
    .fetch_one(&running.state.db.pool)
    .await
    .unwrap();
    assert_eq!(stray, 0);
}

#[tokio::test]
async fn dry_run_stores_nothing() {
    let running = start().await;
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members")
        .fetch_one(&running.state.db.pool)
        .await
        .unwrap();
    let (status, report) = import(&running, "csv", true, csv_sheet().into_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["imported"], 2);
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members")
        .fetch_one(&running.state.db.pool)
        .await
        .unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn xlsx_dates_and_numbers() {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let running = start().await;
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    let headers = [
        "所在组织",
        "姓名",
        "性别",
        "民族",
        "出生日期",
        "学历",
        "入党日期",
        "党员状态",
        "手机号",
        "身份证号",
    ];
    for (column, header) in headers.iter().enumerate() {
        sheet.write_string(0, column as u16, *header).unwrap();
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    sheet
        .write_string(
            1,
            0,
            "江南省委/青川市委/青川市东城区委/东城区机关第一党支部",
        )
        .unwrap();
    sheet.write_string(1, 1, "欧阳明").unwrap();
    sheet.write_string(1, 2, "男").unwrap();
    sheet.write_string(1, 3, "汉族").unwrap();
    sheet
        .write_datetime_with_format(1, 4, ExcelDateTime::from_ymd(1985, 1, 1).unwrap(), &date)
        .unwrap();
    sheet.write_string(1, 5, "大学本科").unwrap();
    sheet
        .write_datetime_with_format(1, 6, ExcelDateTime::from_ymd(2010, 7, 1).unwrap(), &date)
        .unwrap();
    sheet.write_string(1, 7, "正式党员").unwrap();
    // Phone numbers typed as numbers come back without a decimal point.
    sheet.write_number(1, 8, 13900000009.0).unwrap();
    sheet.write_string(1, 9, id_number(9)).unwrap();
    let bytes = workbook.save_to_buffer().unwrap();

    let (status, report) = import(&running, "xlsx", false, bytes).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], 1, "{report}");
    assert_eq!(report["created_orgs"], 0, "the demo path exists already");
    let (birth, joined, phone): (String, String, String) =
        sqlx::query_as("SELECT birth_date, joined_on, phone FROM members WHERE name = '欧阳明'")
            .fetch_one(&running.state.db.pool)
            .await
            .unwrap();
    assert_eq!(birth, "1985-01-01");
    assert_eq!(joined, "2010-07-01");
    assert_eq!(phone, "13900000009");
}

#[tokio::test]
async fn bad_files_rejected() {
    let running = start().await;
    let (status, error) = import(
        &running,
        "csv",
        false,
        "姓名,性别\n张三,男\n".as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "file");
    let (status, _) = import(&running, "xlsx", false, b"not a workbook".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, error) = import(&running, "ods", false, vec![]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "format");
}

#[tokio::test]
async fn failed_row_forgets_its_organizations() {
    let running = start().await;
    let header = "所在组织,姓名,性别,民族,出生日期,学历,入党日期,党员状态,联系电话,身份证号";
    // Row 2 creates 新区党总支 and 新区第一党支部, then fails on the
    // committee below the branch; row 3 needs the same two organizations.
    let sheet = format!(
        "{header}\n\
         南岭市委/新区党总支/新区第一党支部/某某党委,甲,男,汉族,1985-01-01,大学本科,,正式党员,13900000011,{}\n\
         南岭市委/新区党总支/新区第一党支部,乙,女,汉族,1985-01-01,大学本科,,正式党员,13900000012,{}\n",
        id_number(11),
        id_number(12)
    );
    let (status, report) = import(&running, "csv", false, sheet.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], 1, "{report}");
    assert_eq!(report["rejected"][0]["row"], 2);
    assert_eq!(report["created_orgs"], 3);
    let org: i64 = sqlx::query_scalar(
        "SELECT m.org_id FROM members m JOIN orgs o ON o.id = m.org_id WHERE o.name = '新区第一党支部'",
    )
    .fetch_one(&running.state.db.pool)
    .await
    .unwrap();
    assert!(org > 0);
}

#[tokio::test]
async fn row_numbers_count_blank_rows() {
    let running = start().await;
    let header = "所在组织,姓名,性别,民族,出生日期,学历,入党日期,党员状态,联系电话,身份证号";
    let sheet = format!(
        "{header}\n,,,,,,,,,\n南岭市委/机关第一党支部,王五,未知,汉族,1985-01-01,大学本科,,正式党员,13900000003,{}\n",
        id_number(21)
    );
    let (status, report) = import(&running, "csv", true, sheet.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rows"], 1);
    assert_eq!(report["rejected"][0]["row"], 3);
    assert_eq!(report["rejected"][0]["field"], "gender");
}

#[tokio::test]
async fn sparse_huge_sheet_rejected() {
    use rust_xlsxwriter::Workbook;
    let running = start().await;
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "所在组织").unwrap();
    sheet.write_string(1_048_575, 16_383, "x").unwrap();
    let bytes = workbook.save_to_buffer().unwrap();
    let (status, error) = import(&running, "xlsx", true, bytes).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["field"], "file");
    // The server is still up.
    let (status, _) = import(&running, "csv", true, "姓名\n".as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
