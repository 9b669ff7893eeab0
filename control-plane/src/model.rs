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

/// The botocore model for AWS Backup (`backup` 2018-11-15, REST-JSON).
pub const BACKUP_SERVICE_JSON: &str = include_str!("../model/backup-2018-11-15.json");

/// Target prefix used by both wire protocols.
pub const TARGET_PREFIX: &str = "BackupOnPremises_v20210101";

static MODEL: LazyLock<Model> =
    LazyLock::new(|| Model::parse(SERVICE_JSON).expect("embedded service model is valid"));

static BACKUP_MODEL: LazyLock<Model> = LazyLock::new(|| {
    Model::parse(BACKUP_SERVICE_JSON).expect("embedded AWS Backup model is valid")
});

/// The parsed model, shared by the whole process.
pub fn model() -> &'static Model {
    &MODEL
}

/// The parsed AWS Backup model.
pub fn backup_model() -> &'static Model {
    &BACKUP_MODEL
}

/// Where a REST input member travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Uri,
    Query,
    Header,
}

/// An input member bound to the URI, the query string or a header (REST protocols).
#[derive(Debug, Clone)]
pub struct MemberBinding {
    pub member: String,
    pub location: Location,
    /// The name on the wire: the URI label, query parameter or header name.
    pub location_name: String,
    /// The member's target shape.
    pub target: String,
    /// How the text on the wire becomes the member's value.
    pub kind: BindingKind,
}

/// The type of a bound member, as far as reading it from text needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingKind {
    String,
    Integer,
    Boolean,
    /// ISO 8601 (query strings) or epoch seconds.
    Timestamp,
    /// A list of strings: a repeated query parameter.
    StringList,
}

fn binding_kind(root: &Value, target: &str) -> BindingKind {
    let shape = &root["shapes"][target];
    match shape["type"].as_str().unwrap_or_default() {
        "integer" | "long" => BindingKind::Integer,
        "boolean" => BindingKind::Boolean,
        "timestamp" => BindingKind::Timestamp,
        "list" => BindingKind::StringList,
        _ => BindingKind::String,
    }
}

/// The HTTP binding of a REST operation.
#[derive(Debug, Clone)]
pub struct HttpBinding {
    pub method: String,
    pub request_uri: String,
    /// The status of a successful answer (200 unless the model says otherwise).
    pub response_code: u16,
    pub members: Vec<MemberBinding>,
}

/// One operation: its input and output structure shapes.
#[derive(Debug)]
pub struct Operation {
    pub name: String,
    pub input: Option<String>,
    pub output: Option<String>,
    /// Method, URI template and member bindings (REST protocols).
    pub http: Option<HttpBinding>,
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
            let input = shape_of("input");
            let http = op["http"]["requestUri"].as_str().map(|uri| {
                let members = input
                    .as_deref()
                    .and_then(|i| root["shapes"][i]["members"].as_object())
                    .map(|members| {
                        members
                            .iter()
                            .filter_map(|(member, m)| {
                                let location = match m["location"].as_str()? {
                                    "uri" => Location::Uri,
                                    "querystring" => Location::Query,
                                    "header" => Location::Header,
                                    _ => return None,
                                };
                                let target = m["shape"].as_str().unwrap_or_default();
                                Some(MemberBinding {
                                    member: member.clone(),
                                    location,
                                    location_name: m["locationName"]
                                        .as_str()
                                        .unwrap_or(member)
                                        .to_owned(),
                                    target: target.to_owned(),
                                    kind: binding_kind(&root, target),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                HttpBinding {
                    method: op["http"]["method"].as_str().unwrap_or("POST").to_owned(),
                    request_uri: uri.to_owned(),
                    response_code: op["http"]["responseCode"]
                        .as_u64()
                        .and_then(|c| u16::try_from(c).ok())
                        .unwrap_or(200),
                    members,
                }
            });
            operations.insert(
                name.clone(),
                Operation {
                    name: name.clone(),
                    input,
                    output: shape_of("output"),
                    http,
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

fn parse_shape(_name: &str, s: &Value) -> Result<Shape, String> {
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
            // Model patterns are written unanchored; a value must match as a whole. A few
            // patterns of some models use look-behind, which the regex engine does not offer;
            // those shapes are checked for length and type only.
            let pattern = s["pattern"].as_str().and_then(|p| {
                Regex::new(&format!("^(?:{p})$"))
                    .ok()
                    .map(|re| (p.to_owned(), re))
            });
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
    fn rest_bindings_of_the_backup_model() {
        let op = &backup_model().operations["ListBackupJobs"];
        let http = op.http.as_ref().unwrap();
        assert_eq!(
            (http.method.as_str(), http.request_uri.as_str()),
            ("GET", "/backup-jobs/")
        );
        assert_eq!(http.response_code, 200);
        let state = http.members.iter().find(|m| m.member == "ByState").unwrap();
        assert_eq!(
            (state.location, state.location_name.as_str()),
            (Location::Query, "state")
        );
        let op = &backup_model().operations["DescribeRecoveryPoint"];
        let labels: Vec<_> = op
            .http
            .as_ref()
            .unwrap()
            .members
            .iter()
            .filter(|m| m.location == Location::Uri)
            .map(|m| (m.location_name.as_str(), m.member.as_str()))
            .collect();
        assert!(
            labels.contains(&("recoveryPointArn", "RecoveryPointArn")),
            "{labels:?}"
        );
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
