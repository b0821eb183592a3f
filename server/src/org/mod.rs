//! The organization tree: 党委, 党总支, 党支部, 党小组 and 党组, with
//! parent/child links stored as materialized paths.

mod roles;
mod routes;
mod tree;

pub use roles::OrgRole;
pub use routes::router;
pub use tree::{Org, OrgKind, check_name, check_nesting, load_org};
