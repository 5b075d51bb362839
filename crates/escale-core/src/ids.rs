//! Random identifiers of repositories, clients and relay objects.
//!
//! They are random rather than derived from names so that relay file names
//! reveal nothing, and are written as lowercase hex everywhere (relay paths,
//! JSON, the state database).

/// Fills `bytes` from the operating system's secure random source.
///
/// # Panics
///
/// If the operating system has no random source, which no supported
/// platform lacks; nothing secure can be done without one.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    bytes
}

/// Defines a fixed-size identifier written as lowercase hex in text, JSON
/// and the database; shared by the random identifiers here and the keyed
/// hash identifiers of the crypto module.
macro_rules! hex_bytes {
    ($(#[$doc:meta])* $vis:vis $name:ident, $len:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis struct $name(pub(crate) [u8; $len]);

        impl $name {
            /// The raw bytes.
            #[allow(dead_code, reason = "not every identifier is used as bytes")]
            $vis fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::ids::InvalidId;

            fn from_str(text: &str) -> Result<Self, $crate::ids::InvalidId> {
                let mut bytes = [0u8; $len];
                hex::decode_to_slice(text, &mut bytes).map_err(|_| $crate::ids::InvalidId {
                    kind: stringify!($name),
                    expected_hex_chars: $len * 2,
                })?;
                Ok($name(bytes))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use hex_bytes;

/// Random identifiers: chosen once, never derived from anything.
macro_rules! random_ids {
    ($($name:ident),*) => {$(
        impl $name {
            /// A new random identifier.
            pub fn random() -> Self {
                $name(random_bytes())
            }
        }
    )*};
}

hex_bytes!(
    /// Identifies a repository; chosen at `init`, stored in the relay header.
    pub RepositoryId,
    16
);
hex_bytes!(
    /// Identifies one client (one computer's membership in one repository);
    /// chosen at `init` or `join`, names its folder on the relay.
    pub ClientId,
    16
);
hex_bytes!(
    /// Names one encrypted pack of chunks on the relay.
    pub ObjectId,
    16
);

random_ids!(RepositoryId, ClientId, ObjectId);

/// A text that is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind}: expected {expected_hex_chars} hexadecimal characters")]
pub struct InvalidId {
    pub(crate) kind: &'static str,
    pub(crate) expected_hex_chars: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_json_form() {
        let id = ClientId::random();
        assert_eq!(id.to_string().parse::<ClientId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ClientId>(&json).unwrap(), id);
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert!("abc".parse::<RepositoryId>().is_err());
        assert!("zz".repeat(16).parse::<RepositoryId>().is_err());
        assert!(serde_json::from_str::<ObjectId>("\"00\"").is_err());
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(ObjectId::random(), ObjectId::random());
    }
}
