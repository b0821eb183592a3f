//! The approval record as a PDF file: the route, opinions, times and
//! signatures laid out on A4 pages, with the JSON record attached as an
//! embedded file so that `dangwu verify-record` checks the PDF itself.
//!
//! The text uses the PDF reader's own Chinese font (Adobe-GB1 `STSong-Light`,
//! not embedded), so the file stays small and the server ships no font. A
//! reader without an Adobe-GB1 font substitutes one of its own.

use lopdf::content::{Content, Operation};
use lopdf::{Dictionary, Document, Object, ObjectId, Stream, StringFormat, dictionary};

use super::print::{action_zh, level_zh, time};
use super::record::ApprovalRecord;

/// A4 in points.
const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
const TITLE_SIZE: f32 = 16.0;
const TEXT_SIZE: f32 = 10.5;
const CODE_SIZE: f32 = 8.0;
/// Line height as a multiple of the font size.
const LEADING: f32 = 1.5;
/// Name of the embedded JSON record inside the PDF.
const ATTACHMENT_NAME: &str = "approval-record.json";

/// Text laid out top to bottom, page by page, as content operations.
struct Layout {
    pages: Vec<Vec<Operation>>,
    /// Baseline of the next line, in points from the bottom of the page.
    y: f32,
}

impl Layout {
    fn new() -> Self {
        Self {
            pages: vec![Vec::new()],
            y: PAGE_HEIGHT - MARGIN,
        }
    }

    /// Writes `text` at `size`, wrapped to the text width.
    fn paragraph(&mut self, text: &str, size: f32) {
        for line in wrap(text, size, PAGE_WIDTH - 2.0 * MARGIN) {
            self.line(&line, size, MARGIN);
        }
    }

    fn line(&mut self, text: &str, size: f32, x: f32) {
        if self.y - size * LEADING < MARGIN {
            self.pages.push(Vec::new());
            self.y = PAGE_HEIGHT - MARGIN;
        }
        self.y -= size * LEADING;
        let page = self.pages.last_mut().expect("a layout has a page");
        page.extend(text_operations(text, size, x, self.y));
    }

    fn gap(&mut self, points: f32) {
        self.y -= points;
    }
}

fn text_operations(text: &str, size: f32, x: f32, y: f32) -> Vec<Operation> {
    vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), size.into()]),
        Operation::new("Td", vec![x.into(), y.into()]),
        Operation::new(
            "Tj",
            vec![Object::String(ucs2(text), StringFormat::Hexadecimal)],
        ),
        Operation::new("ET", vec![]),
    ]
}

/// Encodes text for the `UniGB-UCS2-H` CMap: UTF-16 big endian, one code
/// unit per character. Characters outside the Basic Multilingual Plane have
/// no code there and print as `?`.
fn ucs2(text: &str) -> Vec<u8> {
    text.chars()
        .flat_map(|c| {
            let unit = u16::try_from(u32::from(c)).unwrap_or(u16::from(b'?'));
            unit.to_be_bytes()
        })
        .collect()
}

/// Width of a character in ems: half for ASCII, whole for the rest.
fn char_width(c: char) -> f32 {
    if c.is_ascii() { 0.5 } else { 1.0 }
}

/// Breaks `text` into lines no wider than `width` points at `size`.
fn wrap(text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut used = 0.0;
    for c in text.chars() {
        if c == '\n' {
            lines.push(std::mem::take(&mut current));
            used = 0.0;
            continue;
        }
        let advance = char_width(c) * size;
        if used + advance > width && !current.is_empty() {
            lines.push(std::mem::take(&mut current));
            used = 0.0;
        }
        current.push(c);
        used += advance;
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

fn status_zh(status: &str) -> &str {
    match status {
        "draft" => "草稿",
        "in_progress" => "审批中",
        "returned_to_drafter" => "已退回起草人",
        "withdrawn" => "已撤回",
        "circulating" => "已签发，传阅中",
        "approved" => "已签发",
        "rejected" => "已驳回",
        "voided" => "已作废",
        other => other,
    }
}

/// Lays out the record's text.
fn lay_out(record: &ApprovalRecord) -> Layout {
    let mut layout = Layout::new();
    layout.paragraph("公文审批记录", TITLE_SIZE);
    layout.gap(TEXT_SIZE);
    let level = match level_zh(&record.security_level) {
        "" => "公开",
        level => level,
    };
    for (label, value) in [
        ("标题", record.title.as_str()),
        ("文号", record.number.as_deref().unwrap_or("（未编号）")),
        ("发文机关", record.issuing_org.as_str()),
        ("文种", record.doc_type.as_str()),
        ("密级", level),
        ("状态", status_zh(&record.status)),
        ("导出时间", &time(record.exported_at)),
    ] {
        layout.paragraph(&format!("{label}：{value}"), TEXT_SIZE);
    }
    for action in &record.actions {
        layout.gap(TEXT_SIZE);
        let parsed: serde_json::Value = serde_json::from_str(&action.action).unwrap_or_default();
        let kind = parsed["action"].as_str().unwrap_or("");
        let name = match action_zh(kind) {
            "" => kind,
            name => name,
        };
        layout.paragraph(
            &format!(
                "{}. {}　{}　{}",
                action.version,
                action.actor_name,
                name,
                time(action.at)
            ),
            TEXT_SIZE,
        );
        if let Some(opinion) = parsed["opinion"].as_str().or(parsed["text"].as_str()) {
            layout.paragraph(&format!("意见：{opinion}"), TEXT_SIZE);
        }
        layout.paragraph(
            &format!(
                "正文第 {} 版 SHA-256 {}",
                action.body_version, action.body_sha256
            ),
            CODE_SIZE,
        );
        layout.paragraph(&format!("服务器签名 {}", action.signature), CODE_SIZE);
    }
    layout.gap(TEXT_SIZE);
    layout.paragraph(
        &format!("签名公钥（Ed25519）：{}", record.public_key),
        CODE_SIZE,
    );
    layout.paragraph(
        &format!(
            "本文件内附 JSON 审批记录（{ATTACHMENT_NAME}）。离线校验：dangwu verify-record 本文件 --key 签名公钥"
        ),
        TEXT_SIZE,
    );
    layout
}

/// Adds the Chinese font: a Type0 font over the reader's Adobe-GB1
/// `STSong-Light`.
fn add_font(doc: &mut Document) -> ObjectId {
    let descriptor = doc.add_object(dictionary! {
        "Type" => "FontDescriptor",
        "FontName" => "STSong-Light",
        "Flags" => 6,
        "FontBBox" => vec![(-25).into(), (-254).into(), 1000.into(), 880.into()],
        "ItalicAngle" => 0,
        "Ascent" => 880,
        "Descent" => -120,
        "CapHeight" => 880,
        "StemV" => 93,
    });
    let cid_font = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "CIDFontType0",
        "BaseFont" => "STSong-Light",
        "CIDSystemInfo" => dictionary! {
            "Registry" => Object::string_literal("Adobe"),
            "Ordering" => Object::string_literal("GB1"),
            "Supplement" => 4,
        },
        "FontDescriptor" => descriptor,
        "DW" => 1000,
        // CIDs 1 to 95 are the ASCII glyphs, drawn half as wide.
        "W" => vec![1.into(), 95.into(), 500.into()],
    });
    doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type0",
        "BaseFont" => "STSong-Light-UniGB-UCS2-H",
        "Encoding" => "UniGB-UCS2-H",
        "DescendantFonts" => vec![cid_font.into()],
    })
}

/// Encodes a PDF text string (UTF-16 with a byte-order mark), for metadata.
fn text_string(text: &str) -> Object {
    let mut bytes = vec![0xFE, 0xFF];
    bytes.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    Object::String(bytes, StringFormat::Hexadecimal)
}

/// Renders the record as a PDF file.
pub fn render(record: &ApprovalRecord) -> Result<Vec<u8>, lopdf::Error> {
    let json = serde_json::to_vec_pretty(record).expect("a record serializes");
    let layout = lay_out(record);
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font = add_font(&mut doc);
    let resources = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font },
    });

    let count = layout.pages.len();
    let mut kids = Vec::with_capacity(count);
    for (index, mut operations) in layout.pages.into_iter().enumerate() {
        let footer = format!("第 {} 页 共 {} 页", index + 1, count);
        operations.extend(text_operations(
            &footer,
            CODE_SIZE,
            PAGE_WIDTH / 2.0 - 30.0,
            MARGIN / 2.0,
        ));
        let content = Content { operations }.encode()?;
        let content_id = doc.add_object(Stream::new(Dictionary::new(), content));
        let page = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(page.into());
    }
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count as i64,
            "Resources" => resources,
            "MediaBox" => vec![0.into(), 0.into(), PAGE_WIDTH.into(), PAGE_HEIGHT.into()],
        }),
    );

    // The JSON record, stored uncompressed so that it can be read as is.
    let embedded = doc.add_object(Stream::new(
        dictionary! {
            "Type" => "EmbeddedFile",
            "Subtype" => "application#2Fjson",
        },
        json,
    ));
    let file_spec = doc.add_object(dictionary! {
        "Type" => "Filespec",
        "F" => Object::string_literal(ATTACHMENT_NAME),
        "UF" => text_string(ATTACHMENT_NAME),
        "Desc" => text_string("签名的审批记录，供 dangwu verify-record 校验"),
        "EF" => dictionary! { "F" => embedded },
    });
    let catalog = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
        "Names" => dictionary! {
            "EmbeddedFiles" => dictionary! {
                "Names" => vec![Object::string_literal(ATTACHMENT_NAME), file_spec.into()],
            },
        },
        "PageMode" => "UseAttachments",
    });
    let info = doc.add_object(dictionary! {
        "Title" => text_string(&format!("{} 审批记录", record.title)),
        "Producer" => Object::string_literal("Dangwu"),
    });
    doc.trailer.set("Root", catalog);
    doc.trailer.set("Info", info);

    let mut bytes = Vec::new();
    doc.save_to(&mut bytes)?;
    Ok(bytes)
}

/// Reads the JSON record embedded in a PDF made by [`render`].
pub fn embedded_record(pdf: &[u8]) -> Result<Vec<u8>, String> {
    let doc = Document::load_mem(pdf).map_err(|error| format!("not a readable PDF: {error}"))?;
    let missing = || format!("the PDF contains no attached {ATTACHMENT_NAME}");
    let catalog = doc.catalog().map_err(|_| missing())?;
    let names = resolve(&doc, catalog.get(b"Names").map_err(|_| missing())?)
        .and_then(|o| o.as_dict().ok())
        .ok_or_else(missing)?;
    let files = resolve(&doc, names.get(b"EmbeddedFiles").map_err(|_| missing())?)
        .and_then(|o| o.as_dict().ok())
        .ok_or_else(missing)?;
    let entries = resolve(&doc, files.get(b"Names").map_err(|_| missing())?)
        .and_then(|o| o.as_array().ok())
        .ok_or_else(missing)?;
    for pair in entries.chunks(2) {
        let [name, spec] = pair else { break };
        let is_record = resolve(&doc, name)
            .and_then(|o| o.as_str().ok())
            .is_some_and(|bytes| bytes == ATTACHMENT_NAME.as_bytes());
        if !is_record {
            continue;
        }
        let stream = resolve(&doc, spec)
            .and_then(|o| o.as_dict().ok())
            .and_then(|spec| spec.get(b"EF").ok())
            .and_then(|ef| resolve(&doc, ef))
            .and_then(|ef| ef.as_dict().ok())
            .and_then(|ef| ef.get(b"F").ok())
            .and_then(|file| resolve(&doc, file))
            .and_then(|file| file.as_stream().ok())
            .ok_or_else(missing)?;
        return stream
            .decompressed_content()
            .or_else(|_| Ok(stream.content.clone()))
            .map_err(|error: lopdf::Error| error.to_string());
    }
    Err(missing())
}

/// Follows a reference to the object it names.
fn resolve<'a>(doc: &'a Document, object: &'a Object) -> Option<&'a Object> {
    match object {
        Object::Reference(id) => doc.get_object(*id).ok(),
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_counts_ascii_as_half() {
        // 20 points wide at size 10: two CJK characters or four ASCII ones.
        assert_eq!(wrap("审批记录", 10.0, 20.0), ["审批", "记录"]);
        assert_eq!(wrap("abcdef", 10.0, 20.0), ["abcd", "ef"]);
        assert_eq!(wrap("", 10.0, 20.0), [""]);
    }

    #[test]
    fn ucs2_is_big_endian() {
        assert_eq!(ucs2("A审"), [0x00, 0x41, 0x5B, 0xA1]);
        assert_eq!(ucs2("𠀀"), [0x00, b'?']);
    }
}
