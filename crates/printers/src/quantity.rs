//! `resource.Quantity` as upstream prints it (`Quantity.String()`): parsed with upstream's
//! grammar and rounding (up to a precision of 10⁻⁹), then shown in canonical form —
//! `1.5` → `1500m`, `1.5Gi` → `1536Mi`, `1000m` → `1`, `2048Ki` → `2Mi`, `12e6` → `12e6` —
//! except that a string upstream already considers canonical is kept as written.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// A parsed quantity: `mantissa × 10^exp`, its format, and the string to print if upstream
/// keeps the input as its canonical form.
struct Quantity<'a> {
    mantissa: i128,
    exp: i32,
    format: Format,
    keep: Option<&'a str>,
}

const NANO: i32 = -9;
/// Upstream caps binary quantities at 2^63-1.
const MAX_ALLOWED: i128 = i64::MAX as i128;

/// The pieces of a quantity string, as upstream's scanner splits it.
struct Scanned<'a> {
    positive: bool,
    /// The signed numeric part (`-1.5`).
    value: &'a str,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

fn scan(s: &str) -> Option<Scanned<'_>> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    let done = |positive, value, num, denom| {
        Some(Scanned {
            positive,
            value,
            num,
            denom,
            suffix: "",
        })
    };
    // Leading zeros.
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return done(positive, "0", "0", "");
    }
    // Numerator.
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos >= end {
        return done(positive, s, &s[start..], "");
    }
    let mut num = &s[start..pos];
    if num.is_empty() {
        num = "0";
    }
    // Denominator.
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let dstart = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[dstart..pos];
        if pos >= end {
            return done(positive, s, num, denom);
        }
    }
    let value = &s[..pos];
    // Suffix: letters, then an optionally signed exponent.
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && matches!(b[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return None;
    }
    Some(Scanned {
        positive,
        value,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// (base, exponent, format) of a suffix.
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let dec = |e| Some((10, e, Format::DecimalSi));
    let bin = |e| Some((2, e, Format::BinarySi));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        _ if suffix.len() > 1 && suffix.starts_with(['e', 'E']) => {
            let e: i64 = suffix[1..].parse().ok()?;
            Some((10, i32::try_from(e).ok()?, Format::DecimalExponent))
        }
        _ => None,
    }
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// Parses the digits of `s` (no sign, no point) into an integer.
fn digits(s: &str) -> Option<i128> {
    if s.is_empty() {
        return Some(0);
    }
    s.parse::<i128>().ok()
}

fn parse(s: &str) -> Option<Quantity<'_>> {
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(Quantity {
            mantissa: 0,
            exp: 0,
            format: Format::DecimalSi,
            keep: Some(s),
        });
    }
    let sc = scan(s)?;
    let (base, exponent, format) = interpret(sc.suffix)?;
    let sign = if sc.positive { 1 } else { -1 };

    // Upstream's int64 fast path, which also decides whether the input is kept as written.
    let (mut scale, precision, mult) = match format {
        Format::DecimalSi | Format::DecimalExponent => {
            (exponent, 18 - (sc.num.len() + sc.denom.len()) as i64, 1i64)
        }
        Format::BinarySi if exponent >= 0 && sc.denom.is_empty() => (
            0,
            15 - sc.num.len() as i64 - (exponent as f32 * 3.0 / 10.0) as i64 - 1,
            1i64 << exponent,
        ),
        Format::BinarySi => (0, -1, 1),
    };
    if precision >= 0 {
        scale -= sc.denom.len() as i32;
        if scale >= NANO {
            let shifted = format!("{}{}", sc.num, sc.denom);
            let value: i64 = shifted.parse().ok()?;
            if let Some(result) = value.checked_mul(mult) {
                let keep = match format {
                    Format::BinarySi => exponent % 10 == 0 && value & 0x07 != 0,
                    _ => scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0'),
                };
                return Some(Quantity {
                    mantissa: sign * result as i128,
                    exp: scale,
                    format,
                    keep: keep.then_some(s),
                });
            }
        }
    }

    // The arbitrary-precision path.
    let unsigned = sc.value.trim_start_matches(['+', '-']);
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let mut mantissa = digits(&format!("{int_part}{frac_part}"))?;
    let mut exp = -(frac_part.len() as i32);
    if base == 10 {
        exp = exp.checked_add(exponent)?;
    } else {
        mantissa = mantissa.checked_mul(1i128.checked_shl(exponent as u32)?)?;
    }
    // Round up (away from zero) to a multiple of 10⁻⁹.
    if mantissa != 0 && exp < NANO {
        let div = pow10((NANO - exp) as u32)?;
        mantissa = (mantissa + div - 1) / div;
        exp = NANO;
    }
    let mut format = format;
    if format == Format::BinarySi {
        let too_big = if exp >= 0 {
            mantissa.checked_mul(pow10(exp as u32)?)? > MAX_ALLOWED
        } else {
            mantissa > MAX_ALLOWED.checked_mul(pow10((-exp) as u32)?)?
        };
        if too_big {
            mantissa = MAX_ALLOWED;
            exp = 0;
        } else if exp < 0 && mantissa > 0 && mantissa < pow10((-exp) as u32)? {
            // Between 0 and 1.
            format = Format::DecimalSi;
        }
    }
    Some(Quantity {
        mantissa: sign * mantissa,
        exp,
        format,
        keep: None,
    })
}

/// Removes the factors of `base` from `m`, counting them.
fn remove_factors(mut m: i128, base: i128) -> (i128, i32) {
    let mut times = 0;
    while m != 0 && m.abs() >= base && m % base == 0 {
        m /= base;
        times += 1;
    }
    (m, times)
}

impl Quantity<'_> {
    fn render(&self) -> Option<String> {
        if let Some(s) = self.keep {
            return Some(s.to_string());
        }
        if self.mantissa == 0 {
            return Some("0".into());
        }
        let mut format = self.format;
        let mut integer = None;
        if format == Format::BinarySi {
            // The value as an integer, if it is one.
            let exact = if self.exp >= 0 {
                Some(self.mantissa.checked_mul(pow10(self.exp as u32)?)?)
            } else {
                let d = pow10((-self.exp) as u32)?;
                (self.mantissa % d == 0).then(|| self.mantissa / d)
            };
            match exact {
                Some(v) if v.abs() >= 1024 => integer = Some(v),
                _ => format = Format::DecimalSi,
            }
        }
        if let Some(v) = integer {
            let (m, times) = remove_factors(v, 1024);
            let suffix = match times {
                1 => "Ki",
                2 => "Mi",
                3 => "Gi",
                4 => "Ti",
                5 => "Pi",
                6 => "Ei",
                _ => "",
            };
            return Some(format!("{m}{suffix}"));
        }
        let (mut m, times) = remove_factors(self.mantissa, 10);
        let mut exp = self.exp + times;
        while exp % 3 != 0 {
            m = m.checked_mul(10)?;
            exp -= 1;
        }
        let suffix = match format {
            Format::DecimalExponent if exp == 0 => String::new(),
            Format::DecimalExponent => format!("e{exp}"),
            _ => match exp {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                18 => "E",
                // Upstream has no suffix for other exponents and prints none.
                _ => "",
            }
            .to_string(),
        };
        Some(format!("{m}{suffix}"))
    }
}

/// The canonical form of a quantity string; `None` if upstream would not parse it.
pub fn canonical_str(s: &str) -> Option<String> {
    parse(s.trim())?.render()
}

/// How upstream prints a quantity field: its canonical form; `0` when absent (a zero
/// `Quantity`); as written if it does not parse.
pub fn canonical(v: &Value) -> String {
    let raw = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return "0".into(),
    };
    canonical_str(&raw).unwrap_or(raw)
}

/// How upstream prints a `*resource.Quantity` field: `<nil>` when absent.
pub fn canonical_ptr(v: &Value) -> String {
    if v.is_null() {
        "<nil>".into()
    } else {
        canonical(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_forms_match_upstream() {
        for (input, want) in [
            ("0", "0"),
            ("00", "0"),
            ("0.0", "0"),
            ("1", "1"),
            ("100m", "100m"),
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("1.5", "1500m"),
            ("0.5", "500m"),
            (".5", "500m"),
            ("0.1m", "100u"),
            ("1n", "1n"),
            ("0.0000000001", "1n"),
            ("250Mi", "250Mi"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("2048Ki", "2Mi"),
            ("8Gi", "8Gi"),
            ("512", "512"),
            ("1000", "1k"),
            ("1k", "1k"),
            ("1500k", "1500k"),
            ("1000k", "1M"),
            ("10G", "10G"),
            ("12e6", "12e6"),
            ("1e3", "1e3"),
            ("10e2", "1e3"),
            ("1E3", "1E3"),
            ("100e-3", "100e-3"),
            ("1000e-3", "1"),
            ("-1", "-1"),
            ("-1.5", "-1500m"),
            ("-1024Mi", "-1Gi"),
            ("+1Gi", "+1Gi"),
            ("5Ki", "5Ki"),
            ("0.5Ki", "512"),
            ("1.1Ki", "1126400m"),
            ("0.5Mi", "512Ki"),
            ("10Ei", "9223372036854775807"),
            ("1000E", "1"),
            (" 2Gi ", "2Gi"),
        ] {
            assert_eq!(canonical_str(input).as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn bad_quantities_do_not_parse() {
        for bad in ["", "abc", "1.5x", "1Zi", "1e", "--1", "1 Gi", "1e3.5"] {
            assert_eq!(canonical_str(bad), None, "{bad}");
        }
        assert_eq!(canonical(&json!("bogus")), "bogus");
        assert_eq!(canonical(&json!(null)), "0");
        assert_eq!(canonical(&json!(2)), "2");
        assert_eq!(canonical(&json!(0.25)), "250m");
        assert_eq!(canonical_ptr(&json!(null)), "<nil>");
    }
}
