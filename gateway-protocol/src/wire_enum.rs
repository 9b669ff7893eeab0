//! States that travel as strings: one macro so every such enum spells its values once and
//! serialises them exactly as listed.
//!
//! - `open` enums carry an `Unknown(String)` variant: a value from a newer peer is kept as sent
//!   and passed on rather than failing the whole message (for fields a reader can live without
//!   understanding).
//! - `closed` enums refuse an unknown value with an error that names it and the values this
//!   version knows (for fields whose meaning the reader must act on).

macro_rules! wire_enum {
    (@common $name:ident, [$($wire:literal),+]) => {
        impl $name {
            /// Every value this version knows, as spelled on the wire.
            pub const KNOWN: &'static [&'static str] = &[$($wire),+];
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub enum $name:ident: open {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know (sent by a newer peer), kept as sent.
            Unknown(String),
        }

        impl $name {
            /// The value as spelled on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Unknown(other) => other,
                }
            }

            /// Reads a wire value; an unknown one becomes [`Self::Unknown`].
            pub fn from_wire(value: &str) -> Self {
                match value {
                    $( $wire => Self::$variant, )+
                    other => Self::Unknown(other.to_string()),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = String::deserialize(d)?;
                Ok(Self::from_wire(&value))
            }
        }

        wire_enum!(@common $name, [$($wire),+]);
    };
    (
        $(#[$meta:meta])*
        pub enum $name:ident: closed $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// The value as spelled on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $wire, )+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(value: &str) -> Result<Self, String> {
                match value {
                    $( $wire => Ok(Self::$variant), )+
                    other => Err(format!(
                        concat!("unknown ", $what, " {:?}; expected one of {}"),
                        other,
                        Self::KNOWN.join(", ")
                    )),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = String::deserialize(d)?;
                value.parse().map_err(serde::de::Error::custom)
            }
        }

        wire_enum!(@common $name, [$($wire),+]);
    };
}
