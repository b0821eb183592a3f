//! Conditions on document fields that decide whether a step is on a
//! document's route.
//!
//! The language is deliberately small: equality and membership tests on
//! named string fields, combined with `all`, `any` and `not`. Conditions are
//! evaluated once, when the document is submitted; later edits to the fields
//! change the route only at the next submission.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Document fields a condition may test.
pub const CONDITION_FIELDS: &[&str] = &["doc_type", "security_level", "urgency"];

/// The document's field values, by field name (`security_level` → `secret`).
pub type DocumentFields = BTreeMap<String, String>;

/// A test on document fields, stored in the template as JSON, for example
/// `{"in": {"field": "urgency", "values": ["urgent", "very_urgent"]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    Eq { field: String, value: String },
    Ne { field: String, value: String },
    In { field: String, values: Vec<String> },
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

/// Error of a condition that cannot be used or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error("unknown document field `{0}`; expected one of doc_type, security_level, urgency")]
    UnknownField(String),
    #[error("`in` on field `{0}` has no values")]
    EmptyIn(String),
    #[error("`all` or `any` has no conditions")]
    EmptyGroup,
    #[error("the document has no value for field `{0}`")]
    MissingField(String),
}

impl Condition {
    /// Checks field names and shapes when a template is saved. Evaluation
    /// can then fail only on a field the document does not set.
    pub fn validate(&self) -> Result<(), ConditionError> {
        match self {
            Self::Eq { field, .. } | Self::Ne { field, .. } => check_field(field),
            Self::In { field, values } if values.is_empty() => {
                Err(ConditionError::EmptyIn(field.clone()))
            }
            Self::In { field, .. } => check_field(field),
            Self::All(items) | Self::Any(items) if items.is_empty() => {
                Err(ConditionError::EmptyGroup)
            }
            Self::All(items) | Self::Any(items) => items.iter().try_for_each(Self::validate),
            Self::Not(inner) => inner.validate(),
        }
    }

    /// Evaluates the condition. A field the document does not set is an
    /// error rather than a non-match, so that a step is never dropped from a
    /// route because a field was left empty.
    pub fn evaluate(&self, fields: &DocumentFields) -> Result<bool, ConditionError> {
        match self {
            Self::Eq { field, value } => Ok(lookup(fields, field)? == value),
            Self::Ne { field, value } => Ok(lookup(fields, field)? != value),
            Self::In { field, values } => {
                let actual = lookup(fields, field)?;
                Ok(values.iter().any(|value| value == actual))
            }
            Self::All(items) => all(items, fields),
            Self::Any(items) => any(items, fields),
            Self::Not(inner) => Ok(!inner.evaluate(fields)?),
        }
    }
}

fn all(items: &[Condition], fields: &DocumentFields) -> Result<bool, ConditionError> {
    for item in items {
        if !item.evaluate(fields)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn any(items: &[Condition], fields: &DocumentFields) -> Result<bool, ConditionError> {
    for item in items {
        if item.evaluate(fields)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn check_field(field: &str) -> Result<(), ConditionError> {
    if CONDITION_FIELDS.contains(&field) {
        Ok(())
    } else {
        Err(ConditionError::UnknownField(field.to_owned()))
    }
}

fn lookup<'a>(fields: &'a DocumentFields, field: &str) -> Result<&'a str, ConditionError> {
    fields
        .get(field)
        .map(String::as_str)
        .ok_or_else(|| ConditionError::MissingField(field.to_owned()))
}
