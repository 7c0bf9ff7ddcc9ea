//! Label and field selectors: parsing the `labelSelector` / `fieldSelector` query strings
//! with upstream's grammar, converting `metav1.LabelSelector` objects, and matching.
//!
//! Labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`,
//! comma-separated (all must hold). Fields: `f=v`, `f==v`, `f!=v`, comma-separated, with
//! `\,` `\=` `\\` escapes in values.

use std::collections::BTreeMap;

use serde_json::Value;

/// A label selector requirement operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            Op::In => value.is_some_and(|v| self.values.contains(v)),
            Op::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(v), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|b| b.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::Gt {
                    v > bound
                } else {
                    v < bound
                }
            }
        }
    }
}

/// A label selector: every requirement must hold. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
    /// A nil `metav1.LabelSelector` matches nothing (unlike an empty one).
    pub nothing: bool,
}

impl LabelSelector {
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches the labels of an object held as JSON.
    pub fn matches_object(&self, obj: &Value) -> bool {
        if self.is_everything() {
            return true;
        }
        self.matches(&crate::meta::labels(obj))
    }

    /// Parses the `labelSelector` query syntax.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut p = Parser {
            chars: s.chars().collect(),
            pos: 0,
        };
        let mut requirements = Vec::new();
        p.skip_ws();
        if p.at_end() {
            return Ok(LabelSelector::default());
        }
        loop {
            requirements.push(p.requirement()?);
            p.skip_ws();
            if p.at_end() {
                break;
            }
            if !p.eat(',') {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: ','",
                    p.rest()
                ));
            }
        }
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Converts a `metav1.LabelSelector` (`matchLabels`, `matchExpressions`); `null` gives a
    /// selector that matches nothing, `{}` one that matches everything.
    pub fn from_object(sel: &Value) -> Result<Self, String> {
        if sel.is_null() {
            return Ok(Self::nothing());
        }
        let mut requirements = Vec::new();
        if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("matchLabels[{k}] is not a string"))?;
                validate_key(k)?;
                requirements.push(Requirement {
                    key: k.clone(),
                    op: Op::In,
                    values: vec![v.to_string()],
                });
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or("matchExpressions entry has no key")?;
                validate_key(key)?;
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|vs| {
                        vs.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let op = match e.get("operator").and_then(Value::as_str) {
                    Some("In") => Op::In,
                    Some("NotIn") => Op::NotIn,
                    Some("Exists") => Op::Exists,
                    Some("DoesNotExist") => Op::DoesNotExist,
                    other => {
                        return Err(format!(
                            "{:?} is not a valid label selector operator",
                            other.unwrap_or("")
                        ));
                    }
                };
                match op {
                    Op::In | Op::NotIn if values.is_empty() => {
                        return Err(format!(
                            "for 'in', 'notin' operators, values set can't be empty (key {key})"
                        ));
                    }
                    Op::Exists | Op::DoesNotExist if !values.is_empty() => {
                        return Err(format!(
                            "values set must be empty for exists and does not exist (key {key})"
                        ));
                    }
                    _ => {}
                }
                requirements.push(Requirement {
                    key: key.to_string(),
                    op,
                    values,
                });
            }
        }
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }
}

impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r.op {
                Op::In if r.values.len() == 1 => format!("{}={}", r.key, r.values[0]),
                Op::In => format!("{} in ({})", r.key, r.values.join(",")),
                Op::NotIn if r.values.len() == 1 => format!("{}!={}", r.key, r.values[0]),
                Op::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Op::Exists => r.key.clone(),
                Op::DoesNotExist => format!("!{}", r.key),
                Op::Gt => format!("{}>{}", r.key, r.values[0]),
                Op::Lt => format!("{}<{}", r.key, r.values[0]),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Label keys: an optional DNS subdomain prefix and `/`, then a name of at most 63
/// characters of alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
pub fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(format!(
            "unable to parse requirement: invalid label key \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

fn validate_value(value: &str) -> Result<(), String> {
    let ok = value.is_empty()
        || (value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "unable to parse requirement: invalid label value: \"{value}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn rest(&self) -> String {
        self.chars[self.pos.min(self.chars.len())..]
            .iter()
            .collect()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if self.chars[self.pos..].iter().take(n).copied().eq(s.chars()) {
            self.pos += n;
            true
        } else {
            false
        }
    }

    /// A key or value: everything up to a delimiter.
    fn word(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, ',' | '=' | '!' | '(' | ')' | '<' | '>') {
                break;
            }
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        self.skip_ws();
        if self.eat('!') {
            self.skip_ws();
            let key = self.word();
            if key.is_empty() {
                return Err("unable to parse requirement: expected: identifier after '!'".into());
            }
            validate_key(&key)?;
            return Ok(Requirement {
                key,
                op: Op::DoesNotExist,
                values: Vec::new(),
            });
        }
        let key = self.word();
        if key.is_empty() {
            return Err(format!(
                "unable to parse requirement: found '{}', expected: identifier",
                self.rest()
            ));
        }
        validate_key(&key)?;
        self.skip_ws();
        let (op, values) = if self.at_end() || self.peek() == Some(',') {
            (Op::Exists, Vec::new())
        } else if self.eat_str("==") || self.eat('=') {
            (Op::In, vec![self.single_value()?])
        } else if self.eat_str("!=") {
            (Op::NotIn, vec![self.single_value()?])
        } else if self.eat('>') {
            (Op::Gt, vec![self.integer_value()?])
        } else if self.eat('<') {
            (Op::Lt, vec![self.integer_value()?])
        } else if self.eat_str("notin") {
            (Op::NotIn, self.value_set()?)
        } else if self.eat_str("in") {
            (Op::In, self.value_set()?)
        } else {
            return Err(format!(
                "unable to parse requirement: found '{}', expected: in, notin, =, ==, !=, gt, lt",
                self.rest()
            ));
        };
        Ok(Requirement { key, op, values })
    }

    fn single_value(&mut self) -> Result<String, String> {
        self.skip_ws();
        let v = self.word();
        validate_value(&v)?;
        Ok(v)
    }

    fn integer_value(&mut self) -> Result<String, String> {
        self.skip_ws();
        let v = self.word();
        if v.parse::<i64>().is_err() {
            return Err(format!(
                "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {v}"
            ));
        }
        Ok(v)
    }

    fn value_set(&mut self) -> Result<Vec<String>, String> {
        self.skip_ws();
        if !self.eat('(') {
            return Err(format!(
                "unable to parse requirement: found '{}', expected: '('",
                self.rest()
            ));
        }
        let mut values = Vec::new();
        loop {
            self.skip_ws();
            let v = self.word();
            validate_value(&v)?;
            values.push(v);
            self.skip_ws();
            if self.eat(')') {
                break;
            }
            if !self.eat(',') {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: ',' or ')'",
                    self.rest()
                ));
            }
        }
        Ok(values)
    }
}

/// One field selector term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    pub value: String,
    pub equal: bool,
}

/// A field selector: every term must hold. Empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub terms: Vec<FieldTerm>,
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in split_unescaped(s, ',') {
            if part.trim().is_empty() {
                continue;
            }
            let (field, value, equal) = if let Some(i) = find_unescaped(&part, "!=") {
                (&part[..i], &part[i + 2..], false)
            } else if let Some(i) = find_unescaped(&part, "==") {
                (&part[..i], &part[i + 2..], true)
            } else if let Some(i) = find_unescaped(&part, "=") {
                (&part[..i], &part[i + 1..], true)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            terms.push(FieldTerm {
                field: field.trim().to_string(),
                value: unescape(value),
                equal,
            });
        }
        Ok(FieldSelector { terms })
    }

    pub fn is_everything(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value a term requires to be equal to for `field`, if any (used to narrow lists,
    /// e.g. `metadata.name=x` or `metadata.namespace=y`).
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.equal && t.field == field)
            .map(|t| t.value.as_str())
    }

    /// Matches against an object's selectable fields.
    pub fn matches(&self, fields: &BTreeMap<&'static str, String>) -> bool {
        self.terms.iter().all(|t| {
            let v = fields
                .get(t.field.as_str())
                .map(String::as_str)
                .unwrap_or("");
            (v == t.value) == t.equal
        })
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if escaped {
        cur.push('\\');
    }
    out.push(cur);
    out
}

fn find_unescaped(s: &str, pat: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if s[i..].starts_with(pat) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_grammar_and_matching() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=db", false),
            ("app in (web, db)", true),
            ("app notin (web)", false),
            ("app notin (db)", true),
            ("missing notin (db)", true),
            ("missing!=x", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app=web,tier=front", true),
            ("app=web, tier=back", false),
            ("n>3", true),
            ("n<3", false),
            ("example.com/role in (a)", false),
        ] {
            let parsed = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(parsed.matches(&l), want, "{sel}");
        }
        for bad in [
            "app=",
            "=x",
            "app in web",
            "app in (a",
            "a b",
            "-bad=x",
            "n>x",
        ] {
            if bad == "app=" {
                // An empty value is a valid label value.
                assert!(LabelSelector::parse(bad).is_ok());
                continue;
            }
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn label_selector_objects() {
        let sel = LabelSelector::from_object(&serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]
        }))
        .unwrap();
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "back")])));
        assert!(!sel.matches(&labels(&[("app", "web")])));
        assert!(
            LabelSelector::from_object(&serde_json::json!({}))
                .unwrap()
                .matches(&labels(&[]))
        );
        assert!(
            !LabelSelector::from_object(&Value::Null)
                .unwrap()
                .matches(&labels(&[]))
        );
        assert_eq!(sel.to_string(), "app=web,tier in (front,back)");
    }

    #[test]
    fn field_selectors() {
        let sel = FieldSelector::parse("metadata.name=a\\,b,status.phase!=Running").unwrap();
        assert_eq!(sel.terms[0].value, "a,b");
        let mut f = BTreeMap::new();
        f.insert("metadata.name", "a,b".to_string());
        f.insert("status.phase", "Pending".to_string());
        assert!(sel.matches(&f));
        f.insert("status.phase", "Running".to_string());
        assert!(!sel.matches(&f));
        assert_eq!(
            FieldSelector::parse("metadata.namespace==x")
                .unwrap()
                .required_value("metadata.namespace"),
            Some("x")
        );
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
