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
