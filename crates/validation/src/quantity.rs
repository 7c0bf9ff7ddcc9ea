//! Resource quantities (`resource.Quantity`): parsing with upstream's grammar and errors,
//! exact comparison, and the canonical form upstream serializes (`1000m` → `1`,
//! `1.5` → `1500m`, `1024Mi` → `1Gi`).
//!
//! Values are held exactly as a signed count of nano-units (`i128`), which covers every
//! quantity upstream can represent; finer precision is rounded up, as upstream does.

use std::cmp::Ordering;

/// The suffix family a quantity was written in, which its canonical form keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `m`, `k`, `M`, … or no suffix.
    DecimalSi,
    /// `Ki`, `Mi`, `Gi`, ….
    BinarySi,
    /// `e3`, `E-2`, ….
    DecimalExponent,
}

/// A parsed quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// Why a quantity string could not be parsed; the text is upstream's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string does not have the shape of a quantity.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    /// The number part is malformed.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// The suffix is unknown.
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

const NANO: i128 = 1_000_000_000;
const LIMIT: i128 = i128::MAX / 1_000_000;

fn pow10(e: u32) -> Option<i128> {
    10i128.checked_pow(e)
}

impl Quantity {
    /// Parses a quantity string.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        let b = s.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if b[0] == b'+' || b[0] == b'-' {
            negative = b[0] == b'-';
            i = 1;
        }
        let num_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let num = &s[num_start..i];
        let mut denom = "";
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let d_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            denom = &s[d_start..i];
        }
        if num.is_empty() && denom.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        let suffix = &s[i..];
        // The shape upstream's regular expression accepts for the suffix.
        let letters_end = suffix
            .bytes()
            .position(|c| !b"eEinumkKMGTP".contains(&c))
            .unwrap_or(suffix.len());
        let rest = &suffix[letters_end..];
        let rest_digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
        if !rest_digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(QuantityError::FormatWrong);
        }
        let (format, exp10, exp2): (Format, i32, u32) = match suffix {
            "" => (Format::DecimalSi, 0, 0),
            "n" => (Format::DecimalSi, -9, 0),
            "u" => (Format::DecimalSi, -6, 0),
            "m" => (Format::DecimalSi, -3, 0),
            "k" => (Format::DecimalSi, 3, 0),
            "M" => (Format::DecimalSi, 6, 0),
            "G" => (Format::DecimalSi, 9, 0),
            "T" => (Format::DecimalSi, 12, 0),
            "P" => (Format::DecimalSi, 15, 0),
            "E" => (Format::DecimalSi, 18, 0),
            "Ki" => (Format::BinarySi, 0, 10),
            "Mi" => (Format::BinarySi, 0, 20),
            "Gi" => (Format::BinarySi, 0, 30),
            "Ti" => (Format::BinarySi, 0, 40),
            "Pi" => (Format::BinarySi, 0, 50),
            "Ei" => (Format::BinarySi, 0, 60),
            _ => {
                let e = suffix
                    .strip_prefix('e')
                    .or_else(|| suffix.strip_prefix('E'))
                    .ok_or(QuantityError::Suffix)?;
                let e: i32 = e.parse().map_err(|_| QuantityError::Suffix)?;
                if !(-1000..=1000).contains(&e) {
                    return Err(QuantityError::Suffix);
                }
                (Format::DecimalExponent, e, 0)
            }
        };
        // Digits beyond what i128 can hold are only meaningful as trailing zeros.
        let digits = format!("{num}{denom}");
        let digits = digits.trim_start_matches('0');
        let mut scale = exp10 - denom.len() as i32;
        let mut digits = digits.to_string();
        if digits.len() > 30 {
            // Keep 30 significant digits, rounding up (away from zero) what is cut.
            let cut = digits.len() - 30;
            let round_up = digits[30..].bytes().any(|c| c != b'0');
            digits.truncate(30);
            scale += cut as i32;
            if round_up {
                let v: i128 = digits.parse().map_err(|_| QuantityError::Numeric)?;
                digits = (v + 1).to_string();
            }
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| QuantityError::Numeric)?
        };
        let mut nanos = mantissa;
        let shift = scale + 9;
        if shift >= 0 {
            let m = pow10(shift as u32).unwrap_or(i128::MAX);
            nanos = nanos.saturating_mul(m);
        } else {
            let d = pow10((-shift) as u32);
            nanos = match d {
                Some(d) => {
                    let q = nanos / d;
                    if nanos % d != 0 { q + 1 } else { q }
                }
                None => i128::from(nanos != 0),
            };
        }
        if exp2 > 0 {
            nanos = nanos.saturating_mul(1i128 << exp2);
        }
        nanos = nanos.min(LIMIT);
        if negative {
            nanos = -nanos;
        }
        Ok(Quantity { nanos, format })
    }

    /// A quantity of whole units, in the decimal format.
    pub fn from_units(units: i64) -> Quantity {
        Quantity {
            nanos: i128::from(units) * NANO,
            format: Format::DecimalSi,
        }
    }

    /// The sum, in `self`'s format — `other`'s when `self` is zero — as upstream's `Add`
    /// does, saturating at the representable range.
    pub fn add(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos).clamp(-LIMIT, LIMIT),
            format: if self.nanos == 0 {
                other.format
            } else {
                self.format
            },
        }
    }

    /// The difference, formatted as [`Quantity::add`] formats.
    pub fn sub(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_sub(other.nanos).clamp(-LIMIT, LIMIT),
            format: if self.nanos == 0 {
                other.format
            } else {
                self.format
            },
        }
    }

    /// The suffix family the quantity was written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Zero in `format`.
    pub fn zero(format: Format) -> Quantity {
        Quantity { nanos: 0, format }
    }

    /// The value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in milli-units, rounded up (upstream's `MilliValue`).
    pub fn milli_value(&self) -> i128 {
        ceil_div(self.nanos, 1_000_000)
    }

    /// The value in whole units, rounded up (upstream's `Value`).
    pub fn value(&self) -> i128 {
        ceil_div(self.nanos, NANO)
    }

    /// True if the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// True if the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// The canonical form upstream serializes.
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        let mut format = self.format;
        if format == Format::BinarySi {
            let whole = abs.is_multiple_of(NANO as u128);
            if abs < 1024 * NANO as u128 || !whole {
                format = Format::DecimalSi;
            } else {
                let mut units = abs / NANO as u128;
                let mut exp = 0;
                while exp < 6 && units.is_multiple_of(1024) {
                    units /= 1024;
                    exp += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
                return format!("{sign}{units}{suffix}");
            }
        }
        let mut mantissa = abs;
        let mut exp: i32 = -9;
        while mantissa.is_multiple_of(10) {
            mantissa /= 10;
            exp += 1;
        }
        match exp.rem_euclid(3) {
            1 => {
                mantissa *= 10;
                exp -= 1;
            }
            2 => {
                mantissa *= 100;
                exp -= 2;
            }
            _ => {}
        }
        let suffix = match (format, exp) {
            (_, 0) => String::new(),
            (Format::DecimalSi, -9) => "n".into(),
            (Format::DecimalSi, -6) => "u".into(),
            (Format::DecimalSi, -3) => "m".into(),
            (Format::DecimalSi, 3) => "k".into(),
            (Format::DecimalSi, 6) => "M".into(),
            (Format::DecimalSi, 9) => "G".into(),
            (Format::DecimalSi, 12) => "T".into(),
            (Format::DecimalSi, 15) => "P".into(),
            (Format::DecimalSi, 18) => "E".into(),
            (_, e) => format!("e{e}"),
        };
        format!("{sign}{mantissa}{suffix}")
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b > 0 { q + 1 } else { q }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// Canonicalizes a quantity string, leaving unparsable strings as they are (decoding
/// reports those).
pub fn canonicalize(s: &str) -> String {
    Quantity::parse(s)
        .map(|q| q.canonical())
        .unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        Quantity::parse(s).unwrap().canonical()
    }

    #[test]
    fn canonical_forms_match_upstream() {
        assert_eq!(c("1000m"), "1");
        assert_eq!(c("1.5"), "1500m");
        assert_eq!(c("1000"), "1k");
        assert_eq!(c("100m"), "100m");
        assert_eq!(c("0.1"), "100m");
        assert_eq!(c("1024Mi"), "1Gi");
        assert_eq!(c("1.5Gi"), "1536Mi");
        assert_eq!(c("0.5Gi"), "512Mi");
        assert_eq!(c("0.5Ki"), "512");
        assert_eq!(c("128974848"), "128974848");
        assert_eq!(c("129e6"), "129e6");
        assert_eq!(c("129M"), "129M");
        assert_eq!(c("123Mi"), "123Mi");
        assert_eq!(c("-1"), "-1");
        assert_eq!(c("0"), "0");
        assert_eq!(c("0Mi"), "0");
        assert_eq!(c("1e3"), "1e3");
        assert_eq!(c("0.0001"), "100u");
        assert_eq!(c("1n"), "1n");
        assert_eq!(c("0.1n"), "1n");
        assert_eq!(c("10Gi"), "10Gi");
        assert_eq!(c("2"), "2");
    }

    #[test]
    fn parse_errors_match_upstream() {
        assert_eq!(Quantity::parse("abc"), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse(""), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("1x"), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("1Gb"), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("1MM"), Err(QuantityError::Suffix));
        assert_eq!(
            QuantityError::FormatWrong.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn compares_exactly() {
        let a = Quantity::parse("1").unwrap();
        let b = Quantity::parse("1000m").unwrap();
        assert_eq!(a.cmp(&b), Ordering::Equal);
        assert!(Quantity::parse("1Gi").unwrap() > Quantity::parse("1G").unwrap());
        assert_eq!(Quantity::parse("1500m").unwrap().value(), 2);
        assert_eq!(Quantity::parse("1.5").unwrap().milli_value(), 1500);
    }
}
