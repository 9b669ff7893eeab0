//! Software versions: `MAJOR.MINOR.PATCH`, ordered numerically.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::UpdateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    pub fn parse(s: &str) -> Result<Self, UpdateError> {
        let bad = || UpdateError::Version(s.to_string());
        let mut parts = s.trim().split('.');
        let mut next = || -> Result<u64, UpdateError> {
            parts
                .next()
                .ok_or_else(bad)?
                .parse::<u64>()
                .map_err(|_| bad())
        };
        let v = Version {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }
}

impl FromStr for Version {
    type Err = UpdateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Version::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Version;

    #[test]
    fn versions_order_numerically_and_refuse_other_shapes() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("1.10.0") > v("1.9.9"));
        assert!(v("2.0.0") > v("1.99.99"));
        assert_eq!(v(" 0.1.0 ").to_string(), "0.1.0");
        for bad in ["", "1", "1.2", "1.2.3.4", "1.x.3", "-1.2.3"] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }
}
