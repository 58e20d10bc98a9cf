//! Declared indexes: the fields a plugin looks its records up by, per entity, from its
//! manifest's `indexes`. Every data adapter refuses a query that no declared index answers,
//! so an accidental full read is an error in development rather than a call that slows as
//! the tenant's history grows.
//!
//! The built-in adapter keeps one index entry per (record, indexed field) as an item of the
//! same table: partition `ORG#<org>#<plugin>#<entity>~<field>`, sort key
//! [`entry_sort_key`], and the record itself as its body, so a lookup is one range read of
//! the entries it returns. Entries are written in the same transaction as their record.
//!
//! An index is a field as stored, or a key derived from a string the record holds (possibly
//! nested) by a fixed normalisation: a caller's phone number as its last ten digits, an
//! email lowercased. Every adapter computes a derived key from the record itself (and
//! normalises a condition's value the same way), so records need no extra stored field and
//! those written before the key was declared are found once reindexed.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Detail;
use crate::ids::{EntityName, RecordId};
use crate::ports::{Condition, DataError, Op, SkRange};

/// Indexed fields per entity, at most this many.
pub const MAX_INDEXES_PER_ENTITY: usize = 8;

/// Between an entry's encoded value and its record id. Below every character an encoded
/// value or a record id holds, so a value's entries sort together and before longer values.
const SEP: char = '\u{1}';
/// Just above [`SEP`]: the inclusive upper bound of one value's entries.
const AFTER_SEP: char = '\u{2}';
/// Bytes of a string value kept in a sort key (plus the rest of the character there, up to 3
/// more): DynamoDB caps a sort key at 1024 bytes, and the record id (up to 256) follows.
/// Longer values share their entries' prefix and are told apart by the filter.
const MAX_VALUE_BYTES: usize = 512;

/// Longest `last` a digits key may keep.
const MAX_LAST_DIGITS: u8 = 32;

/// `{"appointments": ["AptDate", "PatNum"], ...}` from a manifest. Shared, so every call's
/// adapter gets it without copying.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "BTreeMap<String, Vec<IndexField>>",
    into = "BTreeMap<String, Vec<IndexField>>"
)]
pub struct Indexes(Arc<BTreeMap<String, Vec<IndexField>>>);

impl From<BTreeMap<String, Vec<IndexField>>> for Indexes {
    fn from(map: BTreeMap<String, Vec<IndexField>>) -> Self {
        Self(Arc::new(map))
    }
}

impl From<Indexes> for BTreeMap<String, Vec<IndexField>> {
    fn from(i: Indexes) -> Self {
        i.0.as_ref().clone()
    }
}

/// One index of an entity: `"status"` (a field as stored) or a [`DerivedKey`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IndexField {
    Field(String),
    Key(DerivedKey),
}

/// `{"name": "contactPhone", "from": "/contact/phone", "normalize": "digits", "last": 10}`:
/// a key queries name as `name`, whose value is the string at the JSON pointer `from`,
/// normalised. A record whose `from` is not a string, or normalises to nothing, has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedKey {
    pub name: String,
    pub from: String,
    pub normalize: Normalize,
    /// With `digits`: only the last this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<u8>,
}

/// How a derived key is made from its string. Both are defined on ASCII only, so every
/// adapter (and SQL) computes them identically whatever its locale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    /// The ASCII digits in order: "+1 (555) 010-2000" is "15550102000".
    Digits,
    /// Trimmed of ASCII whitespace, ASCII letters lowercased.
    Lowercase,
}

impl From<&str> for IndexField {
    fn from(field: &str) -> Self {
        Self::Field(field.to_owned())
    }
}

impl IndexField {
    /// What queries call it.
    pub fn name(&self) -> &str {
        match self {
            Self::Field(f) => f,
            Self::Key(k) => &k.name,
        }
    }

    pub fn key(&self) -> Option<&DerivedKey> {
        match self {
            Self::Field(_) => None,
            Self::Key(k) => Some(k),
        }
    }

    /// Its value in `record`, if it has one.
    pub fn value<'a>(&self, record: &'a Value) -> Option<Cow<'a, Value>> {
        match self {
            Self::Field(f) => record.get(f).map(Cow::Borrowed),
            Self::Key(k) => k.of(record).map(|s| Cow::Owned(Value::String(s))),
        }
    }
}

impl DerivedKey {
    /// The key of `record`.
    pub fn of(&self, record: &Value) -> Option<String> {
        self.apply(record.pointer(&self.from)?.as_str()?)
    }

    /// `s` normalised; `None` when nothing is left.
    pub fn apply(&self, s: &str) -> Option<String> {
        let out = match self.normalize {
            Normalize::Digits => {
                let digits: String = s.chars().filter(char::is_ascii_digit).collect();
                match self.last.map(usize::from) {
                    Some(n) if digits.len() > n => digits[digits.len() - n..].to_owned(),
                    _ => digits,
                }
            }
            Normalize::Lowercase => s
                .trim_matches(|c: char| c.is_ascii_whitespace())
                .to_ascii_lowercase(),
        };
        (!out.is_empty()).then_some(out)
    }

    /// A condition's value as the key it is compared with: a string or an integer (its
    /// digits) normalised (`""`, which no record has, when nothing is left); other values
    /// as they are, which no key equals.
    pub fn normalized(&self, v: &Value) -> Value {
        let text = match v {
            Value::String(s) => Cow::Borrowed(s.as_str()),
            // Integers only: a float's text ("5550102000.0") has other digits.
            Value::Number(n) if n.is_i64() || n.is_u64() => Cow::Owned(n.to_string()),
            _ => return v.clone(),
        };
        Value::String(self.apply(&text).unwrap_or_default())
    }

    /// The pointer's segments (each a field name or an array position, as checked).
    pub fn path(&self) -> Vec<&str> {
        self.from.split('/').skip(1).collect()
    }
}

/// The conditions of a filter with every value on a derived key normalised, to test
/// records with ([`Matcher::matches`]) as every adapter does.
#[derive(Debug)]
pub struct Matcher<'a> {
    conditions: Cow<'a, [Condition]>,
    keys: Vec<Option<&'a IndexField>>,
}

impl Matcher<'_> {
    pub fn matches(&self, record: &Value) -> bool {
        self.conditions
            .iter()
            .zip(&self.keys)
            .all(|(c, key)| match key {
                Some(k) => crate::data::matches_value(k.value(record).as_deref(), c),
                None => crate::data::matches(record, c),
            })
    }

    /// The conditions, values on derived keys normalised.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

/// How a query reads through an index: the field, and the range of its entries' sort keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub field: String,
    /// `None` when the conditions on the field cannot all hold (e.g. a number and a string
    /// bound): nothing matches, nothing is read.
    pub range: Option<SkRange>,
}

impl Indexes {
    pub fn new(map: BTreeMap<String, Vec<IndexField>>) -> Self {
        Self(Arc::new(map))
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }

    /// The indexes of `entity` (empty when it declares none).
    pub fn fields(&self, entity: &EntityName) -> &[IndexField] {
        self.0.get(entity.as_str()).map_or(&[], Vec::as_slice)
    }

    /// The derived key `name` of `entity`, if it declares one.
    pub fn key(&self, entity: &EntityName, name: &str) -> Option<&DerivedKey> {
        self.fields(entity)
            .iter()
            .find(|f| f.name() == name)
            .and_then(IndexField::key)
    }

    pub fn entities(&self) -> impl Iterator<Item = (&str, &[IndexField])> {
        self.0.iter().map(|(e, f)| (e.as_str(), f.as_slice()))
    }

    /// How records of `entity` are tested against `filter`.
    pub fn matcher<'a>(&'a self, entity: &EntityName, filter: &'a [Condition]) -> Matcher<'a> {
        let fields = self.fields(entity);
        let keys: Vec<Option<&IndexField>> = filter
            .iter()
            .map(|c| {
                fields
                    .iter()
                    .find(|f| f.key().is_some() && f.name() == c.field)
            })
            .collect();
        let conditions = if keys.iter().all(Option::is_none) {
            Cow::Borrowed(filter)
        } else {
            Cow::Owned(
                filter
                    .iter()
                    .zip(&keys)
                    .map(|(c, k)| match k.and_then(|k| k.key()) {
                        Some(k) => Condition::new(c.field.clone(), c.op, k.normalized(&c.value)),
                        None => c.clone(),
                    })
                    .collect(),
            )
        };
        Matcher { conditions, keys }
    }

    /// Problems with the declaration, as manifest details under `/indexes`.
    pub fn problems(&self) -> Vec<Detail> {
        let mut out = Vec::new();
        for (entity, fields) in self.0.iter() {
            let at = format!("/indexes/{}", pointer_escape(entity));
            if EntityName::parse(entity.as_str()).is_err() {
                out.push(Detail::new(
                    &at,
                    "not an entity name: use letters, digits, '_' or '-'",
                ));
            }
            if fields.len() > MAX_INDEXES_PER_ENTITY {
                out.push(Detail::new(
                    &at,
                    format!(
                        "at most {MAX_INDEXES_PER_ENTITY} indexes per entity, not {}: every write updates each of them",
                        fields.len()
                    ),
                ));
            }
            for (i, index) in fields.iter().enumerate() {
                let at = format!("{at}/{i}");
                let field = index.name();
                let name_at = match index {
                    IndexField::Field(_) => at.clone(),
                    IndexField::Key(_) => format!("{at}/name"),
                };
                if !valid_field(field) {
                    out.push(Detail::new(
                        &name_at,
                        "a field name: a letter or '_' then up to 63 letters, digits or '_'",
                    ));
                } else if field == "id" {
                    out.push(Detail::new(
                        &name_at,
                        "records are already found by id; index other fields",
                    ));
                } else if fields[..i].iter().any(|f| f.name() == field) {
                    out.push(Detail::new(&name_at, format!("'{field}' is listed twice")));
                }
                if let IndexField::Key(k) = index {
                    let segments = k.path();
                    // Array positions as JSON pointers write them (no leading zero).
                    let position = |s: &str| {
                        (1..=9).contains(&s.len())
                            && s.bytes().all(|b| b.is_ascii_digit())
                            && (s == "0" || !s.starts_with('0'))
                    };
                    if !k.from.starts_with('/')
                        || !segments.iter().all(|s| valid_field(s) || position(s))
                    {
                        out.push(Detail::new(
                            format!("{at}/from"),
                            "a JSON pointer to a string in the record, such as \"/contact/phone\": field names (a letter or '_' then letters, digits or '_') or array positions",
                        ));
                    }
                    match (k.normalize, k.last) {
                        (Normalize::Lowercase, Some(_)) => out.push(Detail::new(
                            format!("{at}/last"),
                            "\"last\" keeps the last digits: only with \"normalize\": \"digits\"",
                        )),
                        (Normalize::Digits, Some(n)) if !(1..=MAX_LAST_DIGITS).contains(&n) => out
                            .push(Detail::new(
                                format!("{at}/last"),
                                format!("keep 1 to {MAX_LAST_DIGITS} digits"),
                            )),
                        _ => {}
                    }
                }
            }
        }
        out
    }

    /// The index `filter` reads through: that of the first condition, in the filter's order,
    /// an index answers (so the plugin puts the most selective first). An exact match reads
    /// its value's entries; a range or prefix reads those its field's range and prefix
    /// conditions allow.
    pub fn lookup(&self, entity: &EntityName, filter: &[Condition]) -> Result<Lookup, DataError> {
        let fields = self.fields(entity);
        let matcher = self.matcher(entity, filter);
        let filter = matcher.conditions();
        // A derived key answers exact matches only: a range or prefix of a normalised value
        // (the last ten digits of "+1 555") means little.
        let usable = |c: &&Condition| {
            fields
                .iter()
                .any(|f| f.name() == c.field && (f.key().is_none() || c.op == Op::Eq))
                && match c.op {
                    Op::Eq | Op::Lt | Op::Lte | Op::Gt | Op::Gte => {
                        encode_value(&c.value).is_some()
                    }
                    Op::BeginsWith => c.value.is_string(),
                    Op::Ne | Op::Contains => false,
                }
        };
        let Some(first) = filter.iter().find(usable) else {
            return Err(self.undeclared(entity, filter));
        };
        if first.op == Op::Eq {
            let range = encode_value(&first.value).map(|v| {
                let hi = format!("{v}{AFTER_SEP}");
                SkRange::Between(v, hi)
            });
            return Ok(Lookup {
                field: first.field.clone(),
                range,
            });
        }
        let on_field: Vec<&Condition> = filter
            .iter()
            .filter(usable)
            .filter(|c| c.field == first.field && c.op != Op::Eq)
            .collect();
        Ok(Lookup {
            field: first.field.clone(),
            range: range_of(&on_field),
        })
    }

    fn undeclared(&self, entity: &EntityName, filter: &[Condition]) -> DataError {
        let fields: Vec<&str> = self.fields(entity).iter().map(IndexField::name).collect();
        let asked: Vec<String> = filter
            .iter()
            .map(|c| format!("{} ({})", c.field, format!("{:?}", c.op).to_lowercase()))
            .collect();
        let asked = if asked.is_empty() {
            "no condition".to_owned()
        } else {
            asked.join(", ")
        };
        if fields.is_empty() {
            DataError::Undeclared(format!(
                "a query on {entity} by {asked} would read every {entity} record: the plugin's manifest declares no index for {entity}; add the field under \"indexes\", or read records with list"
            ))
        } else {
            DataError::Undeclared(format!(
                "a query on {entity} by {asked} would read every {entity} record: {entity} is indexed by {} (exact value, range or prefix); add the field under \"indexes\" in the plugin's manifest",
                fields.join(", ")
            ))
        }
    }
}

fn valid_field(f: &str) -> bool {
    let mut chars = f.chars();
    f.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn pointer_escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// The sort-key range holding every entry whose value can satisfy all of `conds` (range and
/// prefix conditions on one field). Strict bounds are read inclusively; the adapter filters.
fn range_of(conds: &[&Condition]) -> Option<SkRange> {
    if let Some(c) = conds.iter().find(|c| c.op == Op::BeginsWith) {
        let Value::String(p) = &c.value else {
            return None;
        };
        return Some(SkRange::Prefix(format!("s{}", truncated(p))));
    }
    let mut lo: Option<String> = None;
    let mut hi: Option<String> = None;
    for c in conds {
        let Some(v) = encode_value(&c.value) else {
            continue;
        };
        match c.op {
            Op::Gt | Op::Gte if lo.as_ref().is_none_or(|l| v > *l) => lo = Some(v),
            Op::Lt | Op::Lte => {
                let v = format!("{v}{AFTER_SEP}");
                if hi.as_ref().is_none_or(|h| v < *h) {
                    hi = Some(v);
                }
            }
            _ => {}
        }
    }
    // Bounds of different types never hold together; one bound ranges over its own type.
    let (lo, hi) = match (lo, hi) {
        (Some(l), Some(h)) if l[..1] != h[..1] || l > h => return None,
        (Some(l), Some(h)) => (l, h),
        (Some(l), None) => {
            let h = type_end(&l);
            (l, h)
        }
        (None, Some(h)) => (h[..1].to_owned(), h),
        (None, None) => return None,
    };
    Some(SkRange::Between(lo, hi))
}

/// Past every entry of the type tag `encoded` starts with: the next tag letter, which no
/// type uses and no entry equals (every entry goes on past its value).
fn type_end(encoded: &str) -> String {
    let tag = encoded.as_bytes().first().copied().unwrap_or(b's');
    char::from(tag + 1).to_string()
}

/// The sort key of `record`'s entry for a field holding `value`; `None` when such a value
/// is not indexed (null, arrays, objects): the record has no entry for that field.
pub fn entry_sort_key(value: &Value, id: &RecordId) -> Option<String> {
    encode_value(value).map(|v| format!("{v}{SEP}{id}"))
}

/// A value as an index key that sorts as the value does: strings and numbers in their own
/// ranges (`s…`, `n…`), booleans (`b0`, `b1`).
fn encode_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(format!("s{}", truncated(s))),
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(|f| {
            // -0 equals 0 (as the filter compares), so it must share its key.
            let f = if f == 0.0 { 0.0 } else { f };
            // Flip the sign bit of positives and every bit of negatives: the bits then sort
            // as the numbers do, and fixed-width hex sorts as the bits.
            let bits = f.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            format!("n{ordered:016x}")
        }),
        Value::Bool(b) => Some(if *b { "b1" } else { "b0" }.to_owned()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// `s` up to its first character at or below [`SEP`], and to at most [`MAX_VALUE_BYTES`].
/// Cutting to a prefix keeps the order (a shorter key for a smaller or equal string), so
/// ranges stay supersets; values that differ only after the cut share their entries'
/// prefix and are told apart by the filter the adapter applies to what it reads.
fn truncated(s: &str) -> &str {
    let mut end = s.find(|c: char| c <= SEP).unwrap_or(s.len());
    if end > MAX_VALUE_BYTES {
        // Up to the end of the character there, not back to its start: the cut must not
        // depend on the character, or keys would stop sorting as the values do.
        end = MAX_VALUE_BYTES;
        while !s.is_char_boundary(end) {
            end += 1;
        }
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn idx() -> Indexes {
        serde_json::from_value(json!({"appointments": ["AptDate", "PatNum"]})).unwrap()
    }

    fn apt() -> EntityName {
        EntityName::parse("appointments").unwrap()
    }

    fn sk(v: Value) -> String {
        entry_sort_key(&v, &RecordId::parse("7").unwrap()).unwrap()
    }

    #[test]
    fn numbers_sort_as_numbers() {
        let values = [-1e9, -2.5, -1.0, 0.0, 0.5, 1.0, 2.0, 10.0, 1e12];
        let keys: Vec<String> = values.iter().map(|v| sk(json!(v))).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(sk(json!(5)), sk(json!(5.0)));
        let negative_zero: Value = serde_json::from_str("-0.0").unwrap();
        assert_eq!(sk(negative_zero), sk(json!(0)));
    }

    #[test]
    fn strings_sort_as_strings_and_before_longer_ones() {
        let values = [
            "",
            "2026-12-15",
            "2026-12-15 09:00",
            "2026-12-16",
            "a",
            "a\u{1}b",
            "ab",
        ];
        let keys: Vec<String> = values.iter().map(|v| sk(json!(v))).collect();
        for w in keys.windows(2) {
            assert!(w[0] <= w[1], "{w:?}");
        }
    }

    #[test]
    fn values_cut_inside_a_character_still_sort_as_values() {
        let p = "L".repeat(511);
        let (v, w) = (format!("{p}M"), format!("{p}é"));
        assert!(v < w);
        assert!(sk(json!(v)) < sk(json!(w)));
        let both = idx()
            .lookup(
                &apt(),
                &[
                    Condition::new("AptDate", Op::Gte, v.as_str()),
                    Condition::new("AptDate", Op::Lte, w.as_str()),
                ],
            )
            .unwrap()
            .range
            .unwrap();
        assert!(both.contains(&sk(json!(v))) && both.contains(&sk(json!(w))));
    }

    #[test]
    fn long_values_and_the_last_characters_stay_in_range() {
        let long = "x".repeat(2000);
        let key = sk(json!(long));
        assert!(key.len() < 1024, "{}", key.len());
        let ix = idx();
        let eq = ix
            .lookup(&apt(), &[Condition::eq("AptDate", long.as_str())])
            .unwrap()
            .range
            .unwrap();
        assert!(eq.contains(&key));
        let top = format!("{}x", char::MAX);
        let from = ix
            .lookup(&apt(), &[Condition::new("AptDate", Op::Gte, "a")])
            .unwrap()
            .range
            .unwrap();
        assert!(from.contains(&sk(json!(top))));
        let odd = ix
            .lookup(&apt(), &[Condition::new("AptDate", Op::Gte, top.as_str())])
            .unwrap()
            .range
            .unwrap();
        let SkRange::Between(lo, hi) = &odd else {
            panic!("{odd:?}")
        };
        assert!(lo <= hi, "{odd:?}");
    }

    #[test]
    fn an_exact_match_reads_only_its_value() {
        let l = idx()
            .lookup(&apt(), &[Condition::eq("AptDate", "2026-12-15")])
            .unwrap();
        assert_eq!(l.field, "AptDate");
        let r = l.range.unwrap();
        assert!(r.contains(&sk(json!("2026-12-15"))));
        assert!(!r.contains(&sk(json!("2026-12-16"))));
        assert!(!r.contains(&sk(json!("2026-12-15 "))));
        assert!(!r.contains(&sk(json!("2026-12-1"))));
    }

    #[test]
    fn ranges_and_prefixes_cover_what_can_match() {
        let ix = idx();
        let between = ix
            .lookup(
                &apt(),
                &[
                    Condition::new("AptDate", Op::Gte, "2026-12-01"),
                    Condition::new("AptDate", Op::Lte, "2026-12-31"),
                ],
            )
            .unwrap()
            .range
            .unwrap();
        for inside in ["2026-12-01", "2026-12-15", "2026-12-31"] {
            assert!(between.contains(&sk(json!(inside))), "{inside}");
        }
        for outside in ["2026-11-30", "2027-01-01", "2026-12-31x"] {
            assert!(!between.contains(&sk(json!(outside))), "{outside}");
        }
        assert!(!between.contains(&sk(json!(20261215))));
        let open = ix
            .lookup(&apt(), &[Condition::new("PatNum", Op::Gt, 10)])
            .unwrap()
            .range
            .unwrap();
        assert!(open.contains(&sk(json!(11))));
        assert!(open.contains(&sk(json!(1e300))));
        assert!(!open.contains(&sk(json!(9))));
        assert!(!open.contains(&sk(json!("11"))));
        let prefix = ix
            .lookup(
                &apt(),
                &[Condition::new("AptDate", Op::BeginsWith, "2026-12")],
            )
            .unwrap()
            .range
            .unwrap();
        assert!(prefix.contains(&sk(json!("2026-12-15"))));
        assert!(!prefix.contains(&sk(json!("2026-11-15"))));
        let contradictory = ix
            .lookup(
                &apt(),
                &[
                    Condition::new("PatNum", Op::Gt, 10),
                    Condition::new("PatNum", Op::Lt, "x"),
                ],
            )
            .unwrap();
        assert_eq!(contradictory.range, None);
    }

    #[test]
    fn the_first_condition_an_index_answers_picks_it() {
        let ix = idx();
        let range_first = [
            Condition::eq("AptStatus", "Scheduled"),
            Condition::new("AptDate", Op::Gte, "2026-12-01"),
            Condition::eq("PatNum", 3),
        ];
        assert_eq!(ix.lookup(&apt(), &range_first).unwrap().field, "AptDate");
        let exact_first = [
            Condition::eq("PatNum", 3),
            Condition::new("AptDate", Op::Gte, "2026-12-01"),
        ];
        assert_eq!(ix.lookup(&apt(), &exact_first).unwrap().field, "PatNum");
    }

    #[test]
    fn a_query_no_index_answers_is_refused() {
        let ix = idx();
        for filter in [
            vec![],
            vec![Condition::eq("AptStatus", "Scheduled")],
            vec![Condition::new("AptDate", Op::Ne, "2026-12-15")],
            vec![Condition::eq("AptDate", Value::Null)],
        ] {
            let e = ix.lookup(&apt(), &filter).unwrap_err();
            let DataError::Undeclared(m) = e else {
                panic!("{e:?}")
            };
            assert!(m.contains("indexed by AptDate, PatNum"), "{m}");
            assert!(
                filter.is_empty() || m.contains(&filter[0].field),
                "names the field as written: {m}"
            );
        }
        let e = ix
            .lookup(
                &EntityName::parse("claims").unwrap(),
                &[Condition::eq("x", 1)],
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("declares no index for claims"),
            "{e}"
        );
    }

    fn tickets() -> (Indexes, EntityName) {
        let ix = serde_json::from_value(json!({"tickets": [
            "status",
            {"name": "contactPhone", "from": "/contact/phone", "normalize": "digits", "last": 10},
            {"name": "contactEmail", "from": "/contact/email", "normalize": "lowercase"},
        ]}))
        .unwrap();
        (ix, EntityName::parse("tickets").unwrap())
    }

    #[test]
    fn derived_keys_normalise_the_record_and_the_query_alike() {
        let (ix, t) = tickets();
        let phone = &ix.fields(&t)[1];
        let email = &ix.fields(&t)[2];
        let r = json!({"contact": {"phone": "+1 (555) 010-2000", "email": " Ana@Example.COM\t"}});
        assert_eq!(phone.value(&r).unwrap().as_ref(), &json!("5550102000"));
        assert_eq!(email.value(&r).unwrap().as_ref(), &json!("ana@example.com"));
        // Not a string, nothing left, or not there: no key, so no entry.
        for r in [
            json!({"contact": {"phone": 5550102000u64}}),
            json!({"contact": {"phone": "n/a"}}),
            json!({"contact": "5550102000"}),
            json!({}),
        ] {
            assert_eq!(phone.value(&r), None, "{r}");
        }
        // Non-ASCII letters are left as they are, as SQL's translate() leaves them.
        let r = json!({"contact": {"email": "ÉMILE@X.FR"}});
        assert_eq!(email.value(&r).unwrap().as_ref(), &json!("Émile@x.fr"));

        let lookup = ix
            .lookup(&t, &[Condition::eq("contactPhone", "555.010.2000")])
            .unwrap();
        assert_eq!(lookup.field, "contactPhone");
        let range = lookup.range.unwrap();
        assert!(range.contains(&sk(json!("5550102000"))));
        assert!(!range.contains(&sk(json!("5550102001"))));
        let by_number = ix
            .lookup(&t, &[Condition::eq("contactPhone", 15550102000u64)])
            .unwrap();
        assert_eq!(by_number.range, Some(range.clone()));
        // A float's text has other digits: it is no phone number, and finds nothing.
        let float = [Condition::eq("contactPhone", 5550102000.0)];
        let r = ix.lookup(&t, &float).unwrap().range.unwrap();
        assert!(!r.contains(&sk(json!("5550102000"))));
        assert!(!r.contains(&sk(json!("5501020000"))));
        // Exact matches only: a range or prefix of a derived key is refused like any
        // undeclared query.
        let prefix = [Condition::new("contactPhone", Op::BeginsWith, "555")];
        assert!(matches!(
            ix.lookup(&t, &prefix),
            Err(DataError::Undeclared(_))
        ));

        let rec = json!({"status": "open", "contact": {"phone": "(555) 010-2000"}});
        let by_phone = [Condition::eq("contactPhone", "+1 555 010 2000")];
        let m = ix.matcher(&t, &by_phone);
        assert!(m.matches(&rec));
        assert!(!m.matches(&json!({"contact": {"phone": "555 010 2001"}})));
        // A value that normalises to nothing finds nothing, rather than being refused.
        let none = [Condition::eq("contactPhone", "unknown")];
        assert!(!ix.matcher(&t, &none).matches(&rec));
        assert!(!ix.matcher(&t, &none).matches(&json!({})));
        let empty = ix.lookup(&t, &none).unwrap().range.unwrap();
        assert!(!empty.contains(&sk(json!("5550102000"))));
        let ne = [Condition::new("contactEmail", Op::Ne, "A@B.C")];
        assert!(ix.matcher(&t, &ne).matches(&json!({})));
        assert!(
            !ix.matcher(&t, &ne)
                .matches(&json!({"contact": {"email": "a@b.c "}}))
        );
        // Plain fields are compared as stored.
        let plain = [Condition::eq("status", "Open")];
        assert!(!ix.matcher(&t, &plain).matches(&rec));
    }

    #[test]
    fn derived_keys_round_trip_and_bad_ones_are_named() {
        let (ix, _) = tickets();
        let back: Indexes = serde_json::from_value(serde_json::to_value(&ix).unwrap()).unwrap();
        assert_eq!(back, ix);
        assert!(ix.problems().is_empty(), "{:?}", ix.problems());
        let bad: Indexes = serde_json::from_value(json!({"tickets": [
            "contactPhone",
            {"name": "contactPhone", "from": "/contact/phone", "normalize": "digits"},
            {"name": "a", "from": "contact/phone", "normalize": "digits"},
            {"name": "b", "from": "/contact/x y", "normalize": "digits"},
            {"name": "c", "from": "/contact/email", "normalize": "lowercase", "last": 3},
            {"name": "d", "from": "/phones/0", "normalize": "digits", "last": 0},
            {"name": "e", "from": "/phones/01", "normalize": "digits"},
        ]}))
        .unwrap();
        let p: Vec<String> = bad.problems().iter().map(|d| d.path.clone()).collect();
        assert_eq!(
            p,
            [
                "/indexes/tickets/1/name",
                "/indexes/tickets/2/from",
                "/indexes/tickets/3/from",
                "/indexes/tickets/4/last",
                "/indexes/tickets/5/last",
                "/indexes/tickets/6/from",
            ]
        );
        assert!(
            serde_json::from_value::<Indexes>(
                json!({"t": [{"name": "a", "from": "/a", "normalize": "upper"}]})
            )
            .is_err()
        );
    }

    #[test]
    fn bad_declarations_are_named() {
        let ix: Indexes = serde_json::from_value(json!({
            "bad name!": ["a"],
            "leads": ["status", "status", "id", "9x"],
        }))
        .unwrap();
        let p: Vec<String> = ix.problems().iter().map(|d| d.path.clone()).collect();
        assert_eq!(
            p,
            [
                "/indexes/bad name!",
                "/indexes/leads/1",
                "/indexes/leads/2",
                "/indexes/leads/3"
            ]
        );
    }
}
