//! Sizes and durations as people write them in settings: `500MB`,
//! `2 GiB`, `14 days`, `90s`.
//!
//! Both are stored in `config.toml` as the text the user wrote (normalized
//! on save), so the file stays readable and editable by hand.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes, written with a decimal (`kB`, `MB`, `GB`, `TB`) or
/// binary (`KiB`, `MiB`, `GiB`, `TiB`) unit, or none for bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// A length of time, written with a unit: `s`, `min`, `h`, `d` (and the
/// words `seconds`, `minutes`, `hours`, `days`, `weeks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub Duration);

/// Text that is not a size or a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

/// Splits `"2.5 GiB"` into `(2.5, "gib")`.
fn number_and_unit(text: &str) -> Option<(f64, String)> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    (number.is_finite() && number >= 0.0).then(|| (number, unit.trim().to_ascii_lowercase()))
}

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            UnitError(format!(
                "{text:?} is not a size; write it like 500MB, 2 GiB or 750 kB"
            ))
        };
        let (number, unit) = number_and_unit(text).ok_or_else(invalid)?;
        let factor: u64 = match unit.as_str() {
            "" | "b" | "byte" | "bytes" => 1,
            "k" | "kb" => 1_000,
            "m" | "mb" => 1_000_000,
            "g" | "gb" => 1_000_000_000,
            "t" | "tb" => 1_000_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            _ => return Err(invalid()),
        };
        let bytes = number * factor as f64;
        if bytes > u64::MAX as f64 {
            return Err(invalid());
        }
        // Rounded: "1.5 kB" is 1500 bytes, not 1499.99.
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    /// The shortest exact form: `10 MB`, `2 GiB`, or bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: &[(u64, &str)] = &[
            (1 << 40, "TiB"),
            (1_000_000_000_000, "TB"),
            (1 << 30, "GiB"),
            (1_000_000_000, "GB"),
            (1 << 20, "MiB"),
            (1_000_000, "MB"),
            (1 << 10, "KiB"),
            (1_000, "kB"),
        ];
        for (factor, unit) in UNITS {
            if self.0 >= *factor && self.0.is_multiple_of(*factor) {
                return write!(f, "{} {unit}", self.0 / factor);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

impl ByteSize {
    /// A rounded, human-friendly rendering for messages: `9.5 MB`.
    pub fn approximate(bytes: u64) -> String {
        const UNITS: &[&str] = &["bytes", "kB", "MB", "GB", "TB"];
        let mut value = bytes as f64;
        let mut unit = 0;
        while value >= 1000.0 && unit + 1 < UNITS.len() {
            value /= 1000.0;
            unit += 1;
        }
        if unit == 0 {
            format!("{bytes} bytes")
        } else if value < 10.0 {
            format!("{value:.1} {}", UNITS[unit])
        } else {
            format!("{value:.0} {}", UNITS[unit])
        }
    }
}

impl FromStr for Span {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            UnitError(format!(
                "{text:?} is not a duration; write it like 90s, 10 min, 12 h or 14 days"
            ))
        };
        let (number, unit) = number_and_unit(text).ok_or_else(invalid)?;
        let seconds: f64 = match unit.as_str() {
            "ms" => 0.001,
            "s" | "sec" | "second" | "seconds" => 1.0,
            "m" | "min" | "minute" | "minutes" => 60.0,
            "h" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            _ => return Err(invalid()),
        };
        Duration::try_from_secs_f64(number * seconds)
            .map(Span)
            .map_err(|_| invalid())
    }
}

impl fmt::Display for Span {
    /// The largest unit that divides it exactly: `14 days`, `90s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if !millis.is_multiple_of(1000) {
            return write!(f, "{millis}ms");
        }
        let seconds = millis / 1000;
        for (factor, unit) in [(86_400, " days"), (3600, " h"), (60, " min")] {
            if seconds >= factor && seconds.is_multiple_of(factor) {
                let count = seconds / factor;
                if count == 1 && unit == " days" {
                    return write!(f, "1 day");
                }
                return write!(f, "{count}{unit}");
            }
        }
        write!(f, "{seconds}s")
    }
}

macro_rules! text_serde {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

text_serde!(ByteSize);
text_serde!(Span);

#[cfg(test)]
mod tests {
    use super::*;

    fn size(text: &str) -> u64 {
        text.parse::<ByteSize>().unwrap().0
    }

    fn seconds(text: &str) -> f64 {
        text.parse::<Span>().unwrap().0.as_secs_f64()
    }

    #[test]
    fn sizes_in_decimal_and_binary_units() {
        assert_eq!(size("500MB"), 500_000_000);
        assert_eq!(size("2 GiB"), 2 << 30);
        assert_eq!(size("10 mb"), 10_000_000);
        assert_eq!(size("1.5 kB"), 1500);
        assert_eq!(size("4096"), 4096);
        assert_eq!(size(" 3 MiB "), 3 << 20);
    }

    #[test]
    fn bad_sizes_are_refused_with_an_example() {
        for text in ["", "MB", "ten MB", "5 parsecs", "-1 MB", "1e400"] {
            let error = text.parse::<ByteSize>().unwrap_err().to_string();
            assert!(error.contains("500MB"), "{text}: {error}");
        }
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(seconds("90s"), 90.0);
        assert_eq!(seconds("10 min"), 600.0);
        assert_eq!(seconds("12 h"), 43_200.0);
        assert_eq!(seconds("14 days"), 1_209_600.0);
        assert_eq!(seconds("1 week"), 604_800.0);
        assert_eq!(seconds("500ms"), 0.5);
        assert!("ten days".parse::<Span>().is_err());
        assert!("5".parse::<Span>().is_err(), "a bare number is ambiguous");
    }

    #[test]
    fn display_round_trips() {
        for text in ["10 MB", "2 GiB", "1234 bytes", "750 kB"] {
            let parsed: ByteSize = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
            assert_eq!(parsed.to_string().parse::<ByteSize>().unwrap(), parsed);
        }
        for text in ["14 days", "1 day", "90s", "10 min", "12 h", "250ms"] {
            let parsed: Span = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn approximate_sizes_read_well() {
        assert_eq!(ByteSize::approximate(999), "999 bytes");
        assert_eq!(ByteSize::approximate(9_500_000), "9.5 MB");
        assert_eq!(ByteSize::approximate(60_000_000), "60 MB");
    }
}
