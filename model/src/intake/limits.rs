//! Size and shape limits on incoming events, and the errors intake reports.

use crate::event::JsonObject;
use serde_json::Value;

/// Limits applied to every request. Defaults follow Segment's HTTP Tracking API (32 KB per
/// event, 500 KB per request) so SDK traffic that Segment accepts is accepted here too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, after decompression.
    pub max_body_bytes: usize,
    /// Largest single event, as its JSON text.
    pub max_event_bytes: usize,
    /// Most events in one batch.
    pub max_batch_len: usize,
    /// Deepest nesting inside `properties`, `traits` and `context` (an object directly under
    /// them is depth 1).
    pub max_depth: usize,
    /// Most members of any one object or array inside them.
    pub max_members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 500 * 1024,
            max_event_bytes: 32 * 1024,
            max_batch_len: 2500,
            max_depth: 16,
            max_members: 1000,
        }
    }
}

/// Why a request was refused. Each limit has its own variant and [`code`](Self::code) so
/// clients and metrics can tell them apart; `index` names the offending event in a batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntakeError {
    #[error("request body is {size} bytes; the limit is {limit}")]
    BodyTooLarge { size: usize, limit: usize },
    #[error("event is {size} bytes; the limit is {limit}")]
    EventTooLarge {
        index: usize,
        size: usize,
        limit: usize,
    },
    #[error("batch has {len} events; the limit is {limit}")]
    BatchTooLong { len: usize, limit: usize },
    #[error("batch has no events")]
    EmptyBatch,
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("invalid request body: {message}")]
    InvalidBody { message: String },
    #[error("{field}: {message}")]
    InvalidEvent {
        index: usize,
        field: String,
        message: String,
    },
    #[error("{field} nests deeper than {limit} levels")]
    TooDeep {
        index: usize,
        field: String,
        limit: usize,
    },
    #[error("{field} has more than {limit} members")]
    TooManyMembers {
        index: usize,
        field: String,
        limit: usize,
    },
}

impl IntakeError {
    /// Stable machine-readable code, used in error bodies and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::EventTooLarge { .. } => "event_too_large",
            Self::BatchTooLong { .. } => "batch_too_long",
            Self::EmptyBatch => "empty_batch",
            Self::MalformedJson { .. } => "malformed_json",
            Self::InvalidBody { .. } => "invalid_body",
            Self::InvalidEvent { .. } => "invalid_event",
            Self::TooDeep { .. } => "too_deep",
            Self::TooManyMembers { .. } => "too_many_members",
        }
    }

    /// The offending event's position in the batch, when one event is at fault.
    pub fn index(&self) -> Option<usize> {
        match self {
            Self::EventTooLarge { index, .. }
            | Self::InvalidEvent { index, .. }
            | Self::TooDeep { index, .. }
            | Self::TooManyMembers { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// A request body that failed to parse: broken JSON, or JSON of the wrong shape.
    pub(crate) fn from_body_parse(err: &serde_json::Error) -> Self {
        if err.is_data() {
            return Self::InvalidBody {
                message: strip_position(err),
            };
        }
        Self::MalformedJson {
            line: err.line(),
            column: err.column(),
            message: strip_position(err),
        }
    }

    pub(crate) fn invalid(
        index: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::InvalidEvent {
            index,
            field: field.into(),
            message: message.into(),
        }
    }

    /// An event that failed typed parsing: name the field serde stopped at.
    pub(crate) fn from_event_parse(
        index: usize,
        err: serde_path_to_error::Error<serde_json::Error>,
    ) -> Self {
        let field = err.path().to_string();
        let inner = err.into_inner();
        let field = if field == "." {
            "event".to_string()
        } else {
            field
        };
        Self::invalid(index, field, strip_position(&inner))
    }
}

/// serde_json appends " at line L column C"; positions inside one event are noise once the
/// event index and field are named.
fn strip_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

impl Limits {
    pub(crate) fn check_body(&self, body: &[u8]) -> Result<(), IntakeError> {
        if body.len() > self.max_body_bytes {
            return Err(IntakeError::BodyTooLarge {
                size: body.len(),
                limit: self.max_body_bytes,
            });
        }
        Ok(())
    }

    pub(crate) fn check_batch_len(&self, len: usize) -> Result<(), IntakeError> {
        if len == 0 {
            return Err(IntakeError::EmptyBatch);
        }
        if len > self.max_batch_len {
            return Err(IntakeError::BatchTooLong {
                len,
                limit: self.max_batch_len,
            });
        }
        Ok(())
    }

    pub(crate) fn check_event_size(&self, index: usize, json: &str) -> Result<(), IntakeError> {
        if json.len() > self.max_event_bytes {
            return Err(IntakeError::EventTooLarge {
                index,
                size: json.len(),
                limit: self.max_event_bytes,
            });
        }
        Ok(())
    }

    /// Checks depth and width of a free-form JSON member (`properties`, `traits`, `context`).
    pub(crate) fn check_object(
        &self,
        index: usize,
        field: &str,
        object: &JsonObject,
    ) -> Result<(), IntakeError> {
        let too_wide = || IntakeError::TooManyMembers {
            index,
            field: field.to_string(),
            limit: self.max_members,
        };
        if object.len() > self.max_members {
            return Err(too_wide());
        }
        // Iterative walk: hostile nesting must not recurse on our stack either.
        let mut stack: Vec<(&Value, usize)> = object.values().map(|v| (v, 1)).collect();
        while let Some((value, depth)) = stack.pop() {
            let members = match value {
                Value::Object(map) => {
                    stack.extend(map.values().map(|v| (v, depth + 1)));
                    map.len()
                }
                Value::Array(items) => {
                    stack.extend(items.iter().map(|v| (v, depth + 1)));
                    items.len()
                }
                _ => continue,
            };
            if depth > self.max_depth {
                return Err(IntakeError::TooDeep {
                    index,
                    field: field.to_string(),
                    limit: self.max_depth,
                });
            }
            if members > self.max_members {
                return Err(too_wide());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shape_limits_count_depth_from_the_member_itself() {
        let limits = Limits {
            max_depth: 2,
            max_members: 3,
            ..Limits::default()
        };
        let object = |v: serde_json::Value| v.as_object().cloned().unwrap();
        let ok = object(json!({"a": {"b": {"c": 1}}}));
        assert_eq!(limits.check_object(0, "properties", &ok), Ok(()));
        let deep = object(json!({"a": {"b": {"c": {"d": 1}}}}));
        assert_eq!(
            limits.check_object(4, "properties", &deep),
            Err(IntakeError::TooDeep {
                index: 4,
                field: "properties".into(),
                limit: 2
            })
        );
        let wide = object(json!({"list": [1, 2, 3, 4]}));
        assert_eq!(
            limits.check_object(0, "traits", &wide).unwrap_err().code(),
            "too_many_members"
        );
        let wide_top = object(json!({"a": 1, "b": 2, "c": 3, "d": 4}));
        assert_eq!(
            limits
                .check_object(0, "traits", &wide_top)
                .unwrap_err()
                .code(),
            "too_many_members"
        );
    }

    #[test]
    fn every_error_has_its_own_code() {
        let errors = [
            IntakeError::BodyTooLarge { size: 2, limit: 1 },
            IntakeError::EventTooLarge {
                index: 0,
                size: 2,
                limit: 1,
            },
            IntakeError::BatchTooLong { len: 2, limit: 1 },
            IntakeError::EmptyBatch,
            IntakeError::MalformedJson {
                line: 1,
                column: 1,
                message: String::new(),
            },
            IntakeError::InvalidBody {
                message: String::new(),
            },
            IntakeError::invalid(0, "f", "m"),
            IntakeError::TooDeep {
                index: 0,
                field: "f".into(),
                limit: 1,
            },
            IntakeError::TooManyMembers {
                index: 0,
                field: "f".into(),
                limit: 1,
            },
        ];
        let mut codes: Vec<_> = errors.iter().map(IntakeError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
    }
}
