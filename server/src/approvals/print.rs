//! Print views, as HTML pages the browser prints: the signed-off document
//! laid out with the header and footer fields of GB/T 9704-2012 (党政机关
//! 公文格式), and the approval record with every action's signature.

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Local, TimeZone};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::documents::{DocumentView, view};
use crate::error::{AppResult, ErrorBody};
use crate::perm::Caller;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(print_document))
        .routes(routes!(print_record))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn date(ms: i64) -> String {
    Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y年%-m月%-d日").to_string())
        .unwrap_or_default()
}

pub(super) fn time(ms: i64) -> String {
    Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y年%-m月%-d日 %H:%M").to_string())
        .unwrap_or_default()
}

pub(super) fn level_zh(level: &str) -> &'static str {
    match level {
        "confidential" => "秘密",
        "internal" => "内部",
        _ => "",
    }
}

fn urgency_zh(urgency: &str) -> &'static str {
    match urgency {
        "very_urgent" => "特急",
        "urgent" => "加急",
        _ => "",
    }
}

const STYLE: &str = "body{font-family:'FangSong','STFangsong','Noto Serif CJK SC',serif;max-width:156mm;margin:20mm auto;color:#000;font-size:16pt;line-height:1.8}\
.fields{display:flex;flex-direction:column;font-family:'SimHei','Noto Sans CJK SC',sans-serif;font-size:16pt}\
.issuer{color:#C8161D;text-align:center;font-size:36pt;font-family:'FZXiaoBiaoSong-B05','SimSun',serif;letter-spacing:.1em;margin:8mm 0 4mm}\
.numberline{display:flex;justify-content:space-between;align-items:baseline}.rule{border-top:2px solid #C8161D;margin:2mm 0 10mm}\
h1{text-align:center;font-size:22pt;font-family:'FZXiaoBiaoSong-B05','SimSun',serif;font-weight:normal}\
.footer{margin-top:20mm;border-top:1px solid #000;border-bottom:1px solid #000;font-size:14pt}\
.footer p{margin:0;padding:1mm 0}.footer p+p{border-top:1px solid #000}\
table{border-collapse:collapse;width:100%;font-size:11pt}td,th{border:1px solid #000;padding:2mm;vertical-align:top;text-align:left}\
code{font-size:9pt;word-break:break-all}@media print{body{margin:0 auto}}";

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// The last approver of the document: the signer (签发人).
fn signer(page: &DocumentView) -> Option<String> {
    page.timeline
        .iter()
        .rev()
        .find(|entry| entry.action["action"] == "approve")
        .map(|entry| entry.actor_name.clone())
}

/// The document laid out for printing.
#[utoipa::path(get, path = "/api/documents/{id}/print", tag = "approvals",
    params(("id" = i64, Path, description = "Document id")),
    responses((status = 200, content_type = "text/html"), (status = 404, body = ErrorBody)))]
async fn print_document(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let page_data = view(&state, &caller, id).await?;
    let document = &page_data.document;
    let mut html = String::from("<div class=\"fields\">");
    // NOTE: 份号 is the copy's serial number; one printed copy is shown as 000001.
    if document.security_level == "confidential" {
        html.push_str("<span>000001</span>");
    }
    let level = level_zh(&document.security_level);
    if !level.is_empty() {
        let _ = write!(html, "<span>{level}</span>");
    }
    let urgency = urgency_zh(&document.urgency);
    if !urgency.is_empty() {
        let _ = write!(html, "<span>{urgency}</span>");
    }
    html.push_str("</div>");
    let _ = write!(
        html,
        "<div class=\"issuer\">{}文件</div>",
        escape(&document.org_name)
    );
    let number = document.number.as_deref().unwrap_or("（未编号）");
    let signer_html = if matches!(document.doc_type.as_str(), "请示" | "报告") {
        signer(&page_data)
            .map(|name| format!("<span>签发人：{}</span>", escape(&name)))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let _ = write!(
        html,
        "<div class=\"numberline\"><span>{}</span>{signer_html}</div><div class=\"rule\"></div>",
        escape(number)
    );
    let _ = write!(
        html,
        "<h1>{}</h1><div class=\"body\">{}</div>",
        escape(&document.title),
        page_data.body_html
    );
    html.push_str("<div class=\"footer\">");
    if !page_data.cc_orgs.is_empty() {
        let names: Vec<String> = page_data
            .cc_orgs
            .iter()
            .map(|org| escape(&org.name))
            .collect();
        let _ = write!(html, "<p>抄送：{}。</p>", names.join("，"));
    }
    let _ = write!(
        html,
        "<p>{}　　{}印发</p></div>",
        escape(&document.org_name),
        date(document.updated_at)
    );
    Ok(page(&document.title, &html))
}

pub(super) fn action_zh(action: &str) -> &'static str {
    match action {
        "submit" => "提交",
        "approve" => "同意",
        "reject" => "不同意",
        "return" => "退回",
        "withdraw" => "撤回",
        "delegate" => "转交",
        "add_signer" => "加签",
        "urge" => "催办",
        "comment" => "评论",
        "mark_read" => "已阅",
        _ => "",
    }
}

/// The approval record laid out for printing: route, opinions, times and
/// signatures, with the key to check them against.
#[utoipa::path(get, path = "/api/documents/{id}/record/print", tag = "approvals",
    params(("id" = i64, Path, description = "Document id")),
    responses((status = 200, content_type = "text/html"), (status = 404, body = ErrorBody)))]
async fn print_record(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let page_data = view(&state, &caller, id).await?;
    let document = &page_data.document;
    let mut html = format!(
        "<h1>公文审批记录</h1><p>标题：{}<br>文号：{}<br>发文机关：{}<br>状态：{}</p>\
         <table><tr><th>序号</th><th>办理人</th><th>办理</th><th>意见</th><th>时间</th><th>正文版本</th><th>服务器签名</th></tr>",
        escape(&document.title),
        escape(document.number.as_deref().unwrap_or("（未编号）")),
        escape(&document.org_name),
        escape(&document.status)
    );
    for entry in &page_data.timeline {
        let kind = entry.action["action"].as_str().unwrap_or("");
        let opinion = entry.action["opinion"]
            .as_str()
            .or(entry.action["text"].as_str())
            .unwrap_or("");
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>第 {} 版<br><code>{}</code></td><td><code>{}</code></td></tr>",
            entry.version,
            escape(&entry.actor_name),
            action_zh(kind),
            escape(opinion),
            time(entry.at),
            entry.body_version,
            escape(&entry.body_sha256),
            escape(&entry.signature)
        );
    }
    let key = hex::encode(state.audit_key.verifying_key().to_bytes());
    let _ = write!(
        html,
        "</table><p>签名公钥（Ed25519）：<code>{key}</code><br>离线校验：导出审批记录（JSON 或 PDF）后运行 <code>dangwu verify-record 文件 --key {key}</code></p>"
    );
    Ok(page(&format!("{} 审批记录", document.title), &html))
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_html() {
        assert_eq!(
            super::escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
