//! URI templates of REST protocols: `/backup-vaults/{BackupVaultName}/recovery-points/{Arn}`.

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{Name}`: one path segment, bound to the member `Name`.
    Label(String),
    /// `{Name+}`: the rest of the path, slashes included.
    Greedy(String),
}

/// A parsed URI template (the path part; a query in the template is ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    segments: Vec<Segment>,
}

impl PathTemplate {
    /// Parses a template as botocore's `requestUri` writes it.
    pub fn parse(template: &str) -> Result<Self, String> {
        let path = template.split('?').next().unwrap_or_default();
        let Some(rest) = path.strip_prefix('/') else {
            return Err(format!("URI template {template:?} must start with /"));
        };
        let mut segments = Vec::new();
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        for (i, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(name) if i + 1 == parts.len() => Segment::Greedy(name.to_owned()),
                    Some(_) => {
                        return Err(format!(
                            "URI template {template:?}: a greedy label must come last"
                        ))
                    }
                    None => Segment::Label(name.to_owned()),
                },
                None if part.contains(['{', '}']) => {
                    return Err(format!(
                        "URI template {template:?}: a label must be a whole segment"
                    ))
                }
                None => Segment::Literal((*part).to_owned()),
            };
            segments.push(segment);
        }
        Ok(Self {
            text: path.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The labels bound by `path` (percent-decoded), or `None` if it does not match.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let mut labels = Vec::new();
        let mut parts_iter = parts.iter().enumerate();
        for segment in &self.segments {
            match segment {
                Segment::Literal(lit) => {
                    let (_, part) = parts_iter.next()?;
                    if part != lit {
                        return None;
                    }
                }
                Segment::Label(name) => {
                    let (_, part) = parts_iter.next()?;
                    if part.is_empty() {
                        return None;
                    }
                    labels.push((name.clone(), decode(part)?));
                }
                Segment::Greedy(name) => {
                    let (i, _) = parts_iter.next()?;
                    let value = parts[i..].join("/");
                    if value.is_empty() {
                        return None;
                    }
                    labels.push((name.clone(), decode(&value)?));
                    return Some(labels);
                }
            }
        }
        parts_iter.next().is_none().then_some(labels)
    }
}

/// Adds the query-string and header members of a REST operation to its decoded `input`,
/// each read as its model type. Parameters the operation does not bind are ignored, as AWS
/// ignores them.
pub fn bind_members(
    bindings: &[crate::model::MemberBinding],
    query: Option<&str>,
    headers: &http::HeaderMap,
    input: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), crate::api::error::ApiError> {
    use crate::api::error::ApiError;
    use crate::model::{BindingKind, Location};
    use serde_json::Value;

    let pairs: Vec<(String, String)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    for b in bindings {
        let values: Vec<String> = match b.location {
            Location::Query => pairs
                .iter()
                .filter(|(k, _)| *k == b.location_name)
                .map(|(_, v)| v.clone())
                .collect(),
            Location::Header => headers
                .get_all(b.location_name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect(),
            Location::Uri => continue,
        };
        let Some(first) = values.first() else {
            continue;
        };
        let where_ = match b.location {
            Location::Header => format!("header {}", b.location_name),
            _ => format!("query parameter {}", b.location_name),
        };
        let bad =
            |what: &str| ApiError::serialization(format!("{where_} must be {what}, not {first:?}"));
        let value = match b.kind {
            BindingKind::String => Value::String(first.clone()),
            BindingKind::Integer => {
                Value::from(first.parse::<i64>().map_err(|_| bad("an integer"))?)
            }
            BindingKind::Boolean => match first.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(bad("true or false")),
            },
            BindingKind::Timestamp => {
                let seconds = match chrono::DateTime::parse_from_rfc3339(first) {
                    Ok(t) => t.timestamp_millis() as f64 / 1000.0,
                    Err(_) => first
                        .parse::<f64>()
                        .map_err(|_| bad("an ISO 8601 time or epoch seconds"))?,
                };
                serde_json::Number::from_f64(seconds)
                    .map(Value::Number)
                    .ok_or_else(|| bad("a finite time"))?
            }
            BindingKind::StringList => {
                Value::Array(values.iter().cloned().map(Value::String).collect())
            }
        };
        input.insert(b.member.clone(), value);
    }
    Ok(())
}

fn decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_bind_whole_segments_and_greedy_labels_the_rest() {
        let t = PathTemplate::parse("/backup-vaults/{BackupVaultName}").unwrap();
        assert_eq!(
            t.matches("/backup-vaults/my%20vault"),
            Some(vec![("BackupVaultName".into(), "my vault".into())])
        );
        assert_eq!(t.matches("/backup-vaults/"), None);
        assert_eq!(t.matches("/backup-vaults/a/b"), None);
        assert_eq!(t.matches("/backup-plans/a"), None);

        let t = PathTemplate::parse("/tags/{resourceArn+}?x=1").unwrap();
        assert_eq!(t.as_str(), "/tags/{resourceArn+}");
        assert_eq!(
            t.matches("/tags/arn:aws:backup:us-east-1:1:vault/a/b"),
            Some(vec![(
                "resourceArn".into(),
                "arn:aws:backup:us-east-1:1:vault/a/b".into()
            )])
        );
        let root = PathTemplate::parse("/").unwrap();
        assert_eq!(root.matches("/"), Some(vec![]));
        assert_eq!(root.matches("/x"), None);
        assert!(PathTemplate::parse("/a/{b+}/c").is_err());
        assert!(PathTemplate::parse("/a/x{b}").is_err());
        assert!(PathTemplate::parse("a").is_err());
    }
}
