//! The two wire protocols of the API: Smithy RPC v2 CBOR and AWS JSON 1.0.
//!
//! Requests are decoded into a `serde_json::Value` (CBOR maps become objects), validated
//! against the model and then read into typed inputs. Responses go the other way: typed output
//! -> `Value` -> bytes, with the output shape telling the CBOR encoder which members are
//! timestamps (CBOR tag 1, epoch seconds). JSON 1.0 timestamps are epoch-seconds numbers.

use ciborium::Value as Cbor;
use serde_json::{Map, Number, Value};

use super::error::ApiError;
use crate::model::{model, Shape};

/// Which protocol a request arrived in; the response uses the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Cbor,
    Json,
    /// AWS REST-JSON: operation chosen by method and path, members bound to the path (labels)
    /// and a JSON body.
    RestJson,
}

impl Protocol {
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::Cbor => "application/cbor",
            Protocol::Json => "application/x-amz-json-1.0",
            Protocol::RestJson => "application/json",
        }
    }

    /// Checks the request's Content-Type (parameters such as `charset` are ignored).
    pub fn check_content_type(self, header: Option<&str>) -> Result<(), ApiError> {
        let got = header
            .and_then(|h| h.split(';').next())
            .map(|h| h.trim().to_ascii_lowercase());
        let ok = match (self, got.as_deref()) {
            (Protocol::Cbor, Some("application/cbor")) => true,
            // Some JSON clients send plain application/json or 1.1; accept any JSON flavour.
            // A REST request without a body (GET, DELETE) need not name a type.
            (Protocol::RestJson, None) => true,
            (Protocol::RestJson, Some(t)) => t == "application/json",
            (Protocol::Json, Some(t)) => {
                t.starts_with("application/x-amz-json") || t == "application/json"
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(ApiError::serialization(format!(
                "unsupported Content-Type {:?}: this endpoint expects {}",
                header.unwrap_or("(none)"),
                self.content_type()
            )))
        }
    }

    /// Decodes a request body into a JSON-like value. An empty body is an empty input.
    pub fn decode(self, body: &[u8]) -> Result<Value, ApiError> {
        if body.is_empty() {
            return Ok(Value::Object(Map::new()));
        }
        let value = match self {
            Protocol::Json | Protocol::RestJson => {
                serde_json::from_slice::<Value>(body).map_err(|e| {
                    ApiError::serialization(format!("request body is not valid JSON: {e}"))
                })?
            }
            Protocol::Cbor => {
                let mut reader = body;
                let item: Cbor = ciborium::from_reader(&mut reader).map_err(|e| {
                    ApiError::serialization(format!("request body is not valid CBOR: {e}"))
                })?;
                if !reader.is_empty() {
                    return Err(ApiError::serialization(format!(
                        "request body has {} trailing bytes after the CBOR data item",
                        reader.len()
                    )));
                }
                cbor_to_json(item, "")?
            }
        };
        if !value.is_object() {
            return Err(ApiError::serialization(
                "request body must be a map/object of the operation's input members",
            ));
        }
        Ok(value)
    }

    /// Encodes an operation's output.
    pub fn encode_output(self, shape: Option<&str>, value: &Value) -> Vec<u8> {
        match self {
            Protocol::Json | Protocol::RestJson => {
                serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
            }
            Protocol::Cbor => {
                let item = json_to_cbor(shape, value);
                let mut out = Vec::new();
                // Writing into a Vec cannot fail.
                let _ = ciborium::into_writer(&item, &mut out);
                out
            }
        }
    }

    /// Encodes an error body: `__type`, `ErrorCode` and `Message`.
    pub fn encode_error(self, err: &ApiError) -> Vec<u8> {
        let body = serde_json::json!({
            "__type": err.kind.type_name(),
            "ErrorCode": err.kind.type_name(),
            "Message": err.message,
        });
        self.encode_output(None, &body)
    }
}

fn cbor_to_json(item: Cbor, path: &str) -> Result<Value, ApiError> {
    let bad = |what: &str| {
        ApiError::serialization(format!(
            "unsupported CBOR {what} at '{}'",
            if path.is_empty() {
                "request body"
            } else {
                path
            }
        ))
    };
    Ok(match item {
        Cbor::Null => Value::Null,
        Cbor::Bool(b) => Value::Bool(b),
        Cbor::Integer(i) => {
            let i = i128::from(i);
            if let Ok(v) = i64::try_from(i) {
                Value::Number(v.into())
            } else if let Ok(v) = u64::try_from(i) {
                Value::Number(v.into())
            } else {
                return Err(bad("integer out of range"));
            }
        }
        Cbor::Float(f) => {
            Value::Number(Number::from_f64(f).ok_or_else(|| bad("non-finite float"))?)
        }
        Cbor::Text(s) => Value::String(s),
        Cbor::Bytes(_) => return Err(bad("byte string")),
        Cbor::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| cbor_to_json(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Cbor::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let Cbor::Text(key) = k else {
                    return Err(bad("map key that is not a text string"));
                };
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                map.insert(key, cbor_to_json(v, &child)?);
            }
            Value::Object(map)
        }
        // Tag 1 is an epoch timestamp; other tags are read as their content.
        Cbor::Tag(_, inner) => cbor_to_json(*inner, path)?,
        _ => return Err(bad("value")),
    })
}

fn json_to_cbor(shape: Option<&str>, value: &Value) -> Cbor {
    let shape = shape.map(|s| model().shape(s));
    match value {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) => {
            let plain = if let Some(i) = n.as_i64() {
                Cbor::Integer(i.into())
            } else if let Some(u) = n.as_u64() {
                Cbor::Integer(u.into())
            } else {
                Cbor::Float(n.as_f64().unwrap_or_default())
            };
            if matches!(shape, Some(Shape::Timestamp)) {
                Cbor::Tag(1, Box::new(plain))
            } else {
                plain
            }
        }
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(items) => {
            let member = match shape {
                Some(Shape::List { member, .. }) => Some(member.as_str()),
                _ => None,
            };
            Cbor::Array(items.iter().map(|v| json_to_cbor(member, v)).collect())
        }
        Value::Object(map) => {
            let (members, map_value) = match shape {
                Some(Shape::Structure { members, .. }) => (Some(members), None),
                Some(Shape::Map { value, .. }) => (None, Some(value.as_str())),
                _ => (None, None),
            };
            Cbor::Map(
                map.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| {
                        let target = members
                            .and_then(|m| m.iter().find(|(name, _)| name == k))
                            .map(|(_, t)| t.as_str())
                            .or(map_value);
                        (Cbor::Text(k.clone()), json_to_cbor(target, v))
                    })
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::ErrorKind;
    use serde_json::json;

    #[test]
    fn timestamps_are_tagged_in_cbor() {
        let out = json!({"Gateway": {"GatewayArn": "a", "LastSeenTime": 1700000000}});
        let bytes = Protocol::Cbor.encode_output(Some("GetGatewayOutput"), &out);
        let item: Cbor = ciborium::from_reader(bytes.as_slice()).unwrap();
        let gw = &item.as_map().unwrap()[0].1;
        let seen = gw
            .as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_text() == Some("LastSeenTime"))
            .unwrap();
        assert!(matches!(&seen.1, Cbor::Tag(1, _)));
    }

    #[test]
    fn cbor_round_trip_of_input() {
        let item = Cbor::Map(vec![(
            Cbor::Text("MaxResults".into()),
            Cbor::Integer(5.into()),
        )]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&item, &mut bytes).unwrap();
        assert_eq!(
            Protocol::Cbor.decode(&bytes).unwrap(),
            json!({"MaxResults": 5})
        );
    }

    #[test]
    fn malformed_bodies_are_serialization_errors() {
        let mut bytes = Vec::new();
        let item = Cbor::Map(vec![(
            Cbor::Text("NextToken".into()),
            Cbor::Text("abcdef".into()),
        )]);
        ciborium::into_writer(&item, &mut bytes).unwrap();
        let truncated = &bytes[..bytes.len() - 3];
        let err = Protocol::Cbor.decode(truncated).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Serialization);
        let err = Protocol::Json.decode(b"{\"MaxResults\": ").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Serialization);
        let err = Protocol::Json.decode(b"[1,2]").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Serialization);
        assert!(Protocol::Cbor
            .check_content_type(Some("application/json"))
            .is_err());
        assert!(Protocol::Json
            .check_content_type(Some("application/x-amz-json-1.0"))
            .is_ok());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Untrusted bodies never panic the decoder or the validator.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            for protocol in [Protocol::Cbor, Protocol::Json] {
                if let Ok(value) = protocol.decode(&body) {
                    for op in crate::model::model().operations.values() {
                        if let Some(shape) = &op.input {
                            let _ = crate::api::validate::validate_input(shape, &value);
                        }
                    }
                }
            }
        }

        /// Any CBOR map of text keys to small values decodes to an object.
        #[test]
        fn cbor_maps_decode(entries in proptest::collection::vec(("[A-Za-z]{1,12}", any::<i64>()), 0..8)) {
            let item = Cbor::Map(entries.iter().map(|(k, v)| (Cbor::Text(k.clone()), Cbor::Integer((*v).into()))).collect());
            let mut bytes = Vec::new();
            ciborium::into_writer(&item, &mut bytes).unwrap();
            let value = Protocol::Cbor.decode(&bytes).unwrap();
            prop_assert!(value.is_object());
        }
    }
}
