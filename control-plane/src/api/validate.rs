//! Model-driven input validation.
//!
//! Walks a decoded request against its input shape. Type mismatches are
//! `SerializationException`s (the body cannot be read as the operation's input); constraint
//! violations (required, length, pattern, range, enum, list size) are collected into one
//! `ValidationException` that names each field path, e.g.
//! `BandwidthRateLimitIntervals[2].StartHourOfDay`.

use serde_json::Value;

use super::error::ApiError;
use crate::model::{model, Model, Shape};

/// Validates `input` against the structure shape `shape_name`.
pub fn validate_input(shape_name: &str, input: &Value) -> Result<(), ApiError> {
    validate_in(model(), shape_name, input)
}

/// Validates `input` against the structure shape `shape_name` of another service's `model`.
pub fn validate_in(model: &Model, shape_name: &str, input: &Value) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    check(model, shape_name, input, "", &mut problems)?;
    if problems.is_empty() {
        return Ok(());
    }
    let n = problems.len();
    Err(ApiError::validation(format!(
        "{n} validation error{} detected: {}",
        if n == 1 { "" } else { "s" },
        problems.join("; ")
    )))
}

fn join(path: &str, member: &str) -> String {
    if path.is_empty() {
        member.to_owned()
    } else {
        format!("{path}.{member}")
    }
}

fn describe(path: &str) -> &str {
    if path.is_empty() {
        "request body"
    } else {
        path
    }
}

fn check(
    model: &Model,
    shape_name: &str,
    value: &Value,
    path: &str,
    problems: &mut Vec<String>,
) -> Result<(), ApiError> {
    let type_error = |expected: &str| {
        ApiError::serialization(format!(
            "expected {expected} at '{}' but found {}",
            describe(path),
            json_kind(value)
        ))
    };
    match model.shape(shape_name) {
        Shape::Structure { members, required } => {
            let Value::Object(map) = value else {
                return Err(type_error("a structure"));
            };
            for name in required {
                if map.get(name).is_none_or(Value::is_null) {
                    problems.push(format!(
                        "Value at '{}' failed to satisfy constraint: Member must not be null",
                        join(path, name)
                    ));
                }
            }
            for (name, target) in members {
                if let Some(v) = map.get(name).filter(|v| !v.is_null()) {
                    check(model, target, v, &join(path, name), problems)?;
                }
            }
        }
        Shape::List { member, min, max } => {
            let Value::Array(items) = value else {
                return Err(type_error("a list"));
            };
            check_len(path, items.len() as i64, *min, *max, "length", problems);
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                if item.is_null() {
                    problems.push(format!(
                        "Value at '{item_path}' failed to satisfy constraint: Member must not be null"
                    ));
                    continue;
                }
                check(model, member, item, &item_path, problems)?;
            }
        }
        Shape::Map {
            key,
            value: value_shape,
            min,
            max,
        } => {
            let Value::Object(map) = value else {
                return Err(type_error("a map"));
            };
            check_len(path, map.len() as i64, *min, *max, "length", problems);
            for (k, v) in map {
                check(model, key, &Value::String(k.clone()), path, problems)?;
                check(model, value_shape, v, &format!("{path}.{k}"), problems)?;
            }
        }
        Shape::String {
            min,
            max,
            pattern,
            enumeration,
            ..
        } => {
            let Value::String(s) = value else {
                return Err(type_error("a string"));
            };
            check_len(
                path,
                s.chars().count() as i64,
                *min,
                *max,
                "length",
                problems,
            );
            if let Some((text, re)) = pattern {
                if !re.is_match(s) {
                    problems.push(format!(
                        "Value at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {text}"
                    ));
                }
            }
            if let Some(allowed) = enumeration {
                if !allowed.iter().any(|a| a == s) {
                    problems.push(format!(
                        "Value at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                        allowed.join(", ")
                    ));
                }
            }
        }
        Shape::Integer { min, max } => {
            let Some(n) = value.as_i64() else {
                return Err(type_error("an integer"));
            };
            if let Some(min) = min.filter(|m| n < *m) {
                problems.push(format!(
                    "Value at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {min}"
                ));
            }
            if let Some(max) = max.filter(|m| n > *m) {
                problems.push(format!(
                    "Value at '{path}' failed to satisfy constraint: Member must have value less than or equal to {max}"
                ));
            }
        }
        Shape::Boolean => {
            if !value.is_boolean() {
                return Err(type_error("a boolean"));
            }
        }
        Shape::Timestamp => {
            if !value.is_number() {
                return Err(type_error("a timestamp (epoch seconds)"));
            }
        }
        Shape::Other => {}
    }
    Ok(())
}

fn check_len(
    path: &str,
    len: i64,
    min: Option<i64>,
    max: Option<i64>,
    what: &str,
    problems: &mut Vec<String>,
) {
    if let Some(min) = min.filter(|m| len < *m) {
        problems.push(format!(
            "Value at '{}' failed to satisfy constraint: Member must have {what} greater than or equal to {min}",
            describe(path)
        ));
    }
    if let Some(max) = max.filter(|m| len > *m) {
        problems.push(format!(
            "Value at '{}' failed to satisfy constraint: Member must have {what} less than or equal to {max}",
            describe(path)
        ));
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a structure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::ErrorKind;
    use serde_json::json;

    fn interval(start_hour: i64) -> Value {
        json!({"StartHourOfDay": start_hour, "EndHourOfDay": 5, "StartMinuteOfHour": 0,
               "EndMinuteOfHour": 59, "DaysOfWeek": [1], "AverageUploadRateLimitInBitsPerSec": 102400})
    }

    #[test]
    fn names_the_nested_field_path() {
        let arn = "arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-0123456789abcdef";
        let input = json!({"GatewayArn": arn,
            "BandwidthRateLimitIntervals": [interval(1), interval(2), interval(24)]});
        let err = validate_input("PutBandwidthRateLimitScheduleInput", &input).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Validation);
        assert!(
            err.message
                .contains("BandwidthRateLimitIntervals[2].StartHourOfDay"),
            "{}",
            err.message
        );
    }

    #[test]
    fn required_length_pattern_and_enum() {
        let err = validate_input(
            "CreateGatewayInput",
            &json!({"ActivationKey": "bad key!", "GatewayType": "NOPE", "GatewayDisplayName": ""}),
        )
        .unwrap_err();
        assert!(
            err.message.starts_with("3 validation errors"),
            "{}",
            err.message
        );
        for field in ["ActivationKey", "GatewayType", "GatewayDisplayName"] {
            assert!(
                err.message.contains(&format!("'{field}'")),
                "{}",
                err.message
            );
        }
        let missing = validate_input("CreateGatewayInput", &json!({})).unwrap_err();
        assert!(missing.message.contains("'ActivationKey'"));
    }

    #[test]
    fn wrong_types_are_serialization_errors() {
        let err = validate_input("ListGatewaysInput", &json!({"MaxResults": "ten"})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Serialization);
        assert!(err.message.contains("MaxResults"));
        let err = validate_input("ListGatewaysInput", &json!([])).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Serialization);
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let key = "é".repeat(128);
        let input = json!({"ResourceARN": "arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-0123456789abcdef",
            "Tags": [{"Key": key, "Value": ""}]});
        validate_input("TagResourceInput", &input).unwrap();
    }

    #[test]
    fn accepts_a_valid_request() {
        validate_input(
            "CreateGatewayInput",
            &json!({"ActivationKey": "ABCD-1234", "GatewayType": "BACKUP_VM", "GatewayDisplayName": "gw-1",
                    "Tags": [{"Key": "team", "Value": "ops"}]}),
        )
        .unwrap();
    }
}
