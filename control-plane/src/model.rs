//! The AWS Backup Gateway API model (botocore `service-2.json`), embedded and parsed once.
//!
//! Validation and the CBOR encoder walk these shapes, so every constraint the model states is
//! enforced without being restated by hand.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// The botocore model for `backup-gateway` 2021-01-01.
pub const SERVICE_JSON: &str = include_str!("../model/service-2.json");

/// Target prefix used by both wire protocols.
pub const TARGET_PREFIX: &str = "BackupOnPremises_v20210101";

static MODEL: LazyLock<Model> =
    LazyLock::new(|| Model::parse(SERVICE_JSON).expect("embedded service model is valid"));

/// The parsed model, shared by the whole process.
pub fn model() -> &'static Model {
    &MODEL
}

/// One operation: its input and output structure shapes.
#[derive(Debug)]
pub struct Operation {
    pub name: String,
    pub input: Option<String>,
    pub output: Option<String>,
}

/// A shape with the constraints validation cares about.
#[derive(Debug)]
pub enum Shape {
    Structure {
        /// Members in model order: (member name, target shape).
        members: Vec<(String, String)>,
        required: Vec<String>,
    },
    List {
        member: String,
        min: Option<i64>,
        max: Option<i64>,
    },
    Map {
        key: String,
        value: String,
        min: Option<i64>,
        max: Option<i64>,
    },
    String {
        min: Option<i64>,
        max: Option<i64>,
        pattern: Option<(String, Regex)>,
        enumeration: Option<Vec<String>>,
        sensitive: bool,
    },
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Boolean,
    Timestamp,
    Other,
}

/// The whole model.
#[derive(Debug)]
pub struct Model {
    pub operations: HashMap<String, Operation>,
    pub shapes: HashMap<String, Shape>,
}

impl Model {
    /// Parses a botocore JSON model.
    pub fn parse(text: &str) -> Result<Model, String> {
        let root: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut operations = HashMap::new();
        for (name, op) in root["operations"].as_object().ok_or("no operations")? {
            let shape_of = |key: &str| op[key]["shape"].as_str().map(str::to_owned);
            operations.insert(
                name.clone(),
                Operation {
                    name: name.clone(),
                    input: shape_of("input"),
                    output: shape_of("output"),
                },
            );
        }
        let mut shapes = HashMap::new();
        for (name, s) in root["shapes"].as_object().ok_or("no shapes")? {
            shapes.insert(name.clone(), parse_shape(name, s)?);
        }
        Ok(Model { operations, shapes })
    }

    pub fn shape(&self, name: &str) -> &Shape {
        self.shapes.get(name).unwrap_or(&Shape::Other)
    }
}

fn parse_shape(name: &str, s: &Value) -> Result<Shape, String> {
    let int = |k: &str| s[k].as_i64();
    let target = |v: &Value| v["shape"].as_str().unwrap_or_default().to_owned();
    Ok(match s["type"].as_str().unwrap_or_default() {
        "structure" => Shape::Structure {
            members: s["members"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), target(v))).collect())
                .unwrap_or_default(),
            required: s["required"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        },
        "list" => Shape::List {
            member: target(&s["member"]),
            min: int("min"),
            max: int("max"),
        },
        "map" => Shape::Map {
            key: target(&s["key"]),
            value: target(&s["value"]),
            min: int("min"),
            max: int("max"),
        },
        "string" => {
            let pattern = match s["pattern"].as_str() {
                // Model patterns are written unanchored; a value must match as a whole.
                Some(p) => Some((
                    p.to_owned(),
                    Regex::new(&format!("^(?:{p})$"))
                        .map_err(|e| format!("shape {name}: bad pattern: {e}"))?,
                )),
                None => None,
            };
            Shape::String {
                min: int("min"),
                max: int("max"),
                pattern,
                enumeration: s["enum"].as_array().map(|e| {
                    e.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                }),
                sensitive: s["sensitive"].as_bool().unwrap_or(false),
            }
        }
        "integer" | "long" => Shape::Integer {
            min: int("min"),
            max: int("max"),
        },
        "boolean" => Shape::Boolean,
        "timestamp" => Shape::Timestamp,
        _ => Shape::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_model_has_all_25_operations() {
        let m = model();
        assert_eq!(m.operations.len(), 25);
        assert!(m.operations.contains_key("PutBandwidthRateLimitSchedule"));
        assert!(matches!(
            m.shape("AverageUploadRateLimit"),
            Shape::Integer {
                min: Some(51200),
                max: Some(8_000_000_000_000)
            }
        ));
    }

    #[test]
    fn patterns_are_anchored() {
        let Shape::String {
            pattern: Some((_, re)),
            ..
        } = model().shape("Name")
        else {
            panic!("Name has a pattern");
        };
        assert!(re.is_match("gw-1"));
        assert!(!re.is_match("gw 1"));
    }
}
