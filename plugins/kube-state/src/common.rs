//! Pieces every kind shares: object metadata, timestamps, quantities, the
//! label/annotation allowlists and the sink that turns state into samples.

use crate::config::Allowlist;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use wasmon_sdk::MetricKind;
use wasmon_sdk_kube::Exposition;

/// A compact string: half the size of a `String` when it never grows.
pub type Str = Box<str>;

/// Annotations never exported, whatever the allowlist: `kubectl apply` copies
/// the whole object into this one, including a Secret's or ConfigMap's data.
const NEVER_EXPORTED_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// One family of a kind: name, type and help as kube-state-metrics 2.20 has them.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub kind: MetricKind,
    pub help: &'static str,
}

/// Declare a kind's families in output order: an enum to index them and the
/// table of their specs.
macro_rules! families {
    ($enum:ident, $specs:ident { $($variant:ident => $name:literal, $kind:ident, $help:literal;)* }) => {
        #[derive(Debug, Clone, Copy)]
        #[allow(dead_code)]
        pub enum $enum { $($variant),* }
        pub const $specs: &[$crate::common::Spec] = &[
            $($crate::common::Spec { name: $name, kind: wasmon_sdk::MetricKind::$kind, help: $help }),*
        ];
    };
}
pub(crate) use families;

/// Renders one kind's samples as Prometheus text (0.0.4), one buffer per
/// family, and writes them to the host in fragments of about
/// `fragment_bytes`, so the plugin holds one fragment's worth at a time
/// (kube-state-metrics writes text straight from its stores too).
pub struct Sink<'o> {
    specs: &'static [Spec],
    /// Each family's lines since the last fragment.
    text: Vec<String>,
    buffered: usize,
    fragment_bytes: usize,
    /// Whether a fragment went out yet: the first one carries every family's
    /// header, empty ones too (KSM writes them whenever the kind has an
    /// object), which also fixes the order families are merged in.
    started: bool,
    out: &'o mut Exposition,
    /// The current object's identifying labels (`base`), rendered once
    /// (`namespace="…",pod="…",uid="…"`) and copied into each of its ~60
    /// series, keyed by the addresses of what they were rendered from. The
    /// values borrow from the object's state, which does not change during a
    /// collect, and the key is cleared between objects, so equal addresses
    /// mean equal text.
    base_key: Vec<(usize, usize, usize)>,
    base_text: String,
}

impl<'o> Sink<'o> {
    /// A sink for `specs` writing to `out` in fragments of about `fragment_bytes`.
    pub fn new(specs: &'static [Spec], fragment_bytes: usize, out: &'o mut Exposition) -> Self {
        Self {
            specs,
            text: vec![String::new(); specs.len()],
            buffered: 0,
            fragment_bytes,
            started: false,
            out,
            base_key: Vec::new(),
            base_text: String::new(),
        }
    }

    /// Call after each object: sends a fragment once enough is buffered.
    /// False once the host takes no more.
    pub fn object_done(&mut self) -> bool {
        self.base_key.clear();
        if self.buffered >= self.fragment_bytes {
            self.flush();
        }
        !self.out.is_full()
    }

    /// Send what is buffered: each family with samples (every family the
    /// first time) as one fragment, its HELP and TYPE lines first.
    pub fn flush(&mut self) {
        for (spec, text) in self.specs.iter().zip(&mut self.text) {
            if text.is_empty() {
                if self.started {
                    continue;
                }
                push_header(text, spec);
            }
            if !self.out.text(text) {
                break;
            }
            text.clear();
        }
        self.buffered = 0;
        self.started = true;
    }

    /// Send the rest. False if the host refused any of it.
    pub fn finish(mut self) -> bool {
        self.flush();
        !self.out.is_full()
    }

    /// Add a sample to family `family`: the object's identifying labels
    /// `base`, then `extra`.
    #[inline]
    pub fn push(&mut self, family: usize, base: &[(&'static str, &str)], extra: &[(&'static str, &str)], value: f64) {
        self.write(family, base, extra.iter().map(|&(n, v)| (n, v)), value);
    }

    /// Render `base` into `base_text` unless it is what is there already.
    #[inline]
    fn render_base(&mut self, base: &[(&'static str, &str)]) {
        let same = base.len() == self.base_key.len()
            && base
                .iter()
                .zip(&self.base_key)
                .all(|((n, v), &k)| k == (n.as_ptr() as usize, v.as_ptr() as usize, v.len()));
        if same && !base.is_empty() {
            return;
        }
        self.base_key.clear();
        self.base_text.clear();
        for (i, &(name, value)) in base.iter().enumerate() {
            self.base_key.push((name.as_ptr() as usize, value.as_ptr() as usize, value.len()));
            if i > 0 {
                self.base_text.push(',');
            }
            self.base_text.push_str(name);
            self.base_text.push_str("=\"");
            wasmon_sdk::text::push_label_value(&mut self.base_text, value);
            self.base_text.push('"');
        }
    }

    fn write<'a>(
        &mut self,
        family: usize,
        base: &[(&'static str, &str)],
        extra: impl Iterator<Item = (&'a str, &'a str)>,
        value: f64,
    ) {
        self.render_base(base);
        let out = &mut self.text[family];
        if out.is_empty() {
            // Each fragment of a family starts with its header.
            push_header(out, &self.specs[family]);
        }
        let before = out.len();
        out.push_str(self.specs[family].name);
        let mut first = self.base_text.is_empty();
        if !first {
            out.push('{');
            out.push_str(&self.base_text);
        }
        for (name, v) in extra {
            out.push(if first { '{' } else { ',' });
            first = false;
            out.push_str(name);
            out.push_str("=\"");
            wasmon_sdk::text::push_label_value(out, v);
            out.push('"');
        }
        if !first {
            out.push('}');
        }
        out.push(' ');
        push_value(out, value);
        out.push('\n');
        self.buffered += out.len() - before;
    }

    /// A `*_labels` / `*_annotations` sample: `base` plus the allowlisted
    /// pairs, which are stored already named (`label_app`). No sample when
    /// the allowlist does not name the kind (`None`), as in KSM ≥ 2.10.
    pub fn push_pairs(&mut self, family: usize, base: &[(&'static str, &str)], pairs: &Option<Pairs>) {
        let Some(pairs) = pairs else { return };
        self.write(family, base, pairs.iter().map(|(n, v)| (&**n, &**v)), 1.0);
    }

    /// The three `condition`/`status` samples KSM writes for one condition
    /// status (`True`, `False`, anything else is unknown).
    pub fn push_condition(
        &mut self,
        family: usize,
        base: &[(&'static str, &str)],
        extra: &[(&'static str, &str)],
        label: &'static str,
        status: &str,
    ) {
        for (value, on) in [("true", status == "True"), ("false", status == "False"), ("unknown", is_unknown(status))] {
            let labels = extra.iter().map(|&(n, v)| (n, v)).chain([(label, value)]);
            self.write(family, base, labels, bool_value(on));
        }
    }
}

fn push_header(out: &mut String, spec: &Spec) {
    out.push_str("# HELP ");
    out.push_str(spec.name);
    out.push(' ');
    out.push_str(spec.help);
    out.push_str("\n# TYPE ");
    out.push_str(spec.name);
    out.push_str(if spec.kind == MetricKind::Counter { " counter\n" } else { " gauge\n" });
}

/// A sample value as Go's client writes it. Most KSM values are 0 and 1,
/// counts, or Unix timestamps: those skip float formatting.
#[inline]
fn push_value(out: &mut String, value: f64) {
    if value == 0.0 {
        out.push('0');
    } else if value == 1.0 {
        out.push('1');
    } else if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        if value < 0.0 {
            out.push('-');
        }
        push_integer(out, value.abs() as u64);
    } else {
        out.push_str(&wasmon_sdk::text::format_float(value));
    }
}

/// Decimal digits of `n`, two at a time. Timestamps fit in 32 bits until
/// 2106, and 32-bit division is the cheaper one in wasm, which has no
/// 64-bit multiply-high to turn a division by 100 into a multiplication.
fn push_integer(out: &mut String, n: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut wide = n;
    while wide > u64::from(u32::MAX) {
        let pair = (wide % 100) as usize * 2;
        wide /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    let mut n = wide as u32;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + n as u8;
    }
    out.push_str(std::str::from_utf8(&digits[i..]).unwrap_or("0"));
}

fn is_unknown(status: &str) -> bool {
    status != "True" && status != "False"
}

pub fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

pub fn bool_label(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Allowlisted labels or annotations of one object, named for output.
pub type Pairs = Box<[(Str, Str)]>;

/// Metadata every object has, reduced to what metrics need. The uid is the
/// store's key and is not repeated here.
#[derive(Debug, Default)]
pub struct Meta {
    pub name: Str,
    pub namespace: Str,
    pub created: Option<i64>,
    pub deleted: Option<i64>,
    pub generation: Option<i64>,
    pub resource_version: Str,
    pub labels: Option<Pairs>,
    pub annotations: Option<Pairs>,
    pub owners: Box<[Owner]>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    #[serde(default)]
    pub kind: Str,
    #[serde(default)]
    pub name: Str,
    #[serde(default)]
    pub controller: Option<bool>,
}

/// `metadata` as the API server sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RawMeta {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    #[serde(deserialize_with = "time")]
    pub creation_timestamp: Option<i64>,
    #[serde(deserialize_with = "time")]
    pub deletion_timestamp: Option<i64>,
    pub generation: Option<i64>,
    pub resource_version: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub annotations: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub owner_references: Vec<Owner>,
}

impl RawMeta {
    /// The store key: the uid, or `namespace/name` for objects without one
    /// (hand-trimmed test objects).
    pub fn key(&self) -> String {
        if self.uid.is_empty() { format!("{}/{}", self.namespace, self.name) } else { self.uid.clone() }
    }

    /// Compact metadata; labels and annotations kept only as far as the
    /// allowlists of this kind ask.
    pub fn compact(self, labels: Option<&Allowlist>, annotations: Option<&Allowlist>) -> Meta {
        Meta {
            name: self.name.into(),
            namespace: self.namespace.into(),
            created: self.creation_timestamp,
            deleted: self.deletion_timestamp,
            generation: self.generation,
            resource_version: self.resource_version.into(),
            labels: labels.map(|list| allowed_pairs("label", &self.labels, list)),
            annotations: annotations.map(|list| {
                let mut annotations = self.annotations;
                for name in NEVER_EXPORTED_ANNOTATIONS {
                    annotations.remove(*name);
                }
                allowed_pairs("annotation", &annotations, list)
            }),
            owners: self.owner_references.into(),
        }
    }
}

/// The allowlisted entries of `map`, named `<prefix>_<sanitised key>` with
/// KSM's `_conflictN` suffixes when two keys sanitise to the same name.
pub fn allowed_pairs(prefix: &str, map: &BTreeMap<String, String>, list: &Allowlist) -> Pairs {
    let kept: Vec<(&String, &String)> = map.iter().filter(|(k, _)| list.allows(k)).collect();
    let mut names: Vec<String> = kept.iter().map(|(k, _)| format!("{prefix}_{}", sanitize_label_name(k))).collect();
    // Keys are sorted (BTreeMap), as KSM sorts them before naming.
    let mut seen: BTreeMap<String, (usize, usize)> = BTreeMap::new(); // name -> (count, first index)
    for i in 0..names.len() {
        let name = names[i].clone();
        match seen.get_mut(&name) {
            Some((count, first)) => {
                if *count == 1 {
                    names[*first] = format!("{name}_conflict1");
                }
                *count += 1;
                names[i] = format!("{name}_conflict{count}");
            }
            None => {
                seen.insert(name, (1, i));
            }
        }
    }
    names.into_iter().zip(kept).map(|(n, (_, v))| (n.into(), v.as_str().into())).collect()
}

/// KSM's label name sanitising: characters outside `[a-zA-Z0-9_]` become
/// `_`, then camelCase becomes snake_case (`fooBar` -> `foo_bar`).
pub fn sanitize_label_name(name: &str) -> String {
    let replaced: Vec<char> =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    let mut out = String::with_capacity(replaced.len() + 4);
    for (i, &c) in replaced.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && (replaced[i - 1].is_ascii_lowercase() || replaced[i - 1].is_ascii_digit())
        {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// KSM's resource label values: `ephemeral-storage` -> `ephemeral_storage`,
/// `nvidia.com/gpu` -> `nvidia_com_gpu` (no case change).
pub fn sanitize_resource_name(name: &str) -> Str {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect::<String>().into()
}

/// An RFC 3339 timestamp as whole Unix seconds (Go's `Time.Unix()`); `null`
/// and absent are `None`.
pub fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    match text {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
            .map(|dt| Some(dt.timestamp()))
            .map_err(|e| serde::de::Error::custom(format!("timestamp {t:?}: {e}"))),
    }
}

/// `null` read as the type's default (the API server writes `null` for
/// empty maps and lists in some objects).
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A Kubernetes quantity (`100m`, `70Mi`, `1e3`, `4`) as a number.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() || number.parse::<f64>().is_err() {
        return None;
    }
    // Decimal scales go through the exponent so that `475m` reads as 0.475
    // exactly as written, not 475 * 0.001.
    let decimal = |exp: i32| format!("{number}e{exp}").parse::<f64>().ok();
    let binary = |power: i32| number.parse::<f64>().ok().map(|n| n * 1024f64.powi(power));
    let value = match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => decimal(s[1..].parse::<i32>().ok()?),
        _ => return None,
    }?;
    value.is_finite().then_some(value)
}

/// A quantity field, kept as its number.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quantity(pub f64);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Quantity(n)),
            Raw::Text(t) => parse_quantity(&t)
                .map(Quantity)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid quantity {t:?}"))),
        }
    }
}

impl Quantity {
    /// Go's `MilliValue() / 1000`: rounded up to a thousandth.
    pub fn cores(self) -> f64 {
        (self.0 * 1000.0).ceil() / 1000.0
    }
    /// Go's `Value()`: rounded up to an integer.
    pub fn value(self) -> f64 {
        self.0.ceil()
    }
}

/// One entry of a resource list (`requests`, `capacity`, `hard`), with the
/// `resource` and `unit` labels KSM gives it.
#[derive(Debug)]
pub struct ResourceValue {
    pub resource: Str,
    pub unit: &'static str,
    pub value: f64,
}

/// Which units a resource list uses for names KSM does not know: pods and
/// nodes differ for attachable volumes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResourceContext {
    Container,
    Node,
}

/// A resource list as KSM reports it: cpu in cores, memory/storage and
/// hugepages in bytes, `pods` (nodes only), attachable volumes and extended
/// resources as integers; other names are skipped, as KSM does.
pub fn resource_values(list: &BTreeMap<String, Quantity>, context: ResourceContext) -> Box<[ResourceValue]> {
    let mut out = Vec::new();
    for (name, q) in list {
        let (unit, value) = match name.as_str() {
            "cpu" => ("core", q.cores()),
            "memory" | "storage" | "ephemeral-storage" => ("byte", q.value()),
            "pods" if context == ResourceContext::Node => ("integer", q.value()),
            n if n.starts_with("hugepages-") => ("byte", q.value()),
            n if n.starts_with("attachable-volumes-") => {
                (if context == ResourceContext::Node { "byte" } else { "integer" }, q.value())
            }
            n if is_extended_resource(n) => ("integer", q.value()),
            _ => continue,
        };
        out.push(ResourceValue { resource: sanitize_resource_name(name), unit, value });
    }
    out.into()
}

/// Extended resources: fully qualified names outside `kubernetes.io/`.
fn is_extended_resource(name: &str) -> bool {
    match name.split_once('/') {
        Some((domain, _)) => {
            !(domain == "kubernetes.io" || domain.ends_with(".kubernetes.io") || name.starts_with("requests."))
        }
        None => false,
    }
}

/// An `int-or-string` field (`maxSurge: 25%` or `maxSurge: 1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    Str(Str),
}

impl IntOrString {
    /// The absolute value against `total`, as Kubernetes'
    /// `GetScaledValueFromIntOrPercent`; `round_up` for surge.
    pub fn scaled(&self, total: i64, round_up: bool) -> Option<f64> {
        match self {
            IntOrString::Int(i) => Some(*i as f64),
            IntOrString::Str(s) => {
                let percent: f64 = s.strip_suffix('%')?.parse().ok()?;
                let v = percent * total as f64 / 100.0;
                Some(if round_up { v.ceil() } else { v.floor() })
            }
        }
    }
}

/// A condition of a status (`type`, `status`, `reason`, times).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type", default)]
    pub kind: Str,
    #[serde(default)]
    pub status: Str,
    #[serde(default)]
    pub reason: Option<Str>,
    #[serde(default, deserialize_with = "time")]
    pub last_transition_time: Option<i64>,
}

/// The owner labels KSM writes, `<none>` when there is no owner.
pub fn owner_labels(owner: Option<&Owner>) -> [(&'static str, &str); 3] {
    match owner {
        Some(o) => [
            ("owner_kind", &o.kind),
            ("owner_name", &o.name),
            ("owner_is_controller", bool_label(o.controller.unwrap_or(false))),
        ],
        None => [("owner_kind", "<none>"), ("owner_name", "<none>"), ("owner_is_controller", "<none>")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_values_are_written_as_go_writes_them() {
        for n in [
            0u64,
            1,
            9,
            10,
            11,
            99,
            100,
            101,
            999,
            1000,
            4_294_967_295,
            4_294_967_296,
            1_764_590_400,
            999_999_999_999_999,
        ] {
            let mut out = String::new();
            push_integer(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        for (value, text) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-3.0, "-3"),
            (0.25, "0.25"),
            (1e300, "1e+300"),
            (1e-5, "1e-05"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            let mut out = String::new();
            push_value(&mut out, value);
            assert_eq!(out, text, "{value}");
            let back: f64 = if text == "-Inf" { f64::NEG_INFINITY } else { out.parse().unwrap_or(f64::NAN) };
            assert!(back == value || (back.is_nan() && value.is_nan()), "{value} -> {out}");
        }
    }

    #[test]
    fn quantities() {
        for (text, want) in [
            ("100m", 0.1),
            ("475m", 0.475),
            ("1750m", 1.75),
            ("70Mi", 70.0 * 1048576.0),
            ("4", 4.0),
            ("1e3", 1000.0),
            ("1.5Gi", 1.5 * 1073741824.0),
            ("16954240Ki", 16954240.0 * 1024.0),
            ("0", 0.0),
            ("2k", 2000.0),
        ] {
            assert_eq!(parse_quantity(text), Some(want), "{text}");
        }
        for bad in ["", "abc", "1x", "1e", "--1"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
        assert_eq!(Quantity(0.0001).cores(), 0.001);
        assert_eq!(Quantity(0.5).value(), 1.0);
    }

    #[test]
    fn label_names_are_sanitised_like_ksm() {
        assert_eq!(sanitize_label_name("app.kubernetes.io/name"), "app_kubernetes_io_name");
        assert_eq!(sanitize_label_name("fooBar"), "foo_bar");
        assert_eq!(sanitize_label_name("k8s-app"), "k8s_app");
        assert_eq!(sanitize_label_name("ABC"), "abc");
    }

    #[test]
    fn conflicting_names_get_suffixes() {
        let map: BTreeMap<String, String> = [("a-b", "1"), ("a.b", "2"), ("a_b", "3"), ("c", "4")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let pairs = allowed_pairs("label", &map, &Allowlist::All);
        let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_ref()).collect();
        assert_eq!(names, ["label_a_b_conflict1", "label_a_b_conflict2", "label_a_b_conflict3", "label_c"]);
    }

    #[test]
    fn timestamps() {
        #[derive(Deserialize)]
        struct T {
            #[serde(deserialize_with = "time")]
            t: Option<i64>,
        }
        let t: T = serde_json::from_str(r#"{"t":"2019-08-09T05:12:19Z"}"#).unwrap();
        assert_eq!(t.t, Some(1565327539));
        let t: T = serde_json::from_str(r#"{"t":"2025-09-11T20:55:09.139040Z"}"#).unwrap();
        assert_eq!(t.t, Some(1757624109));
        let t: T = serde_json::from_str(r#"{"t":null}"#).unwrap();
        assert_eq!(t.t, None);
        assert!(serde_json::from_str::<T>(r#"{"t":"yesterday"}"#).is_err());
    }
}
