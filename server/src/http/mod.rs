//! HTTP plumbing shared by every resource: the JSON extractor with field-level
//! errors, pagination, and the middleware stack.

mod json;
mod layers;
mod page;

pub use json::{ApiJson, parse_value};
pub use layers::{api_rejections, request_span, track_metrics};
pub use page::{Page, PageQuery};
