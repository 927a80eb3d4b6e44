use super::*;
use proptest::prelude::*;

struct Mock;

fn sample(labels: &[(&str, &str)], value: f64) -> QuerySample {
    QuerySample { labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), value }
}

impl QueryFn for Mock {
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
        match expr {
            "up" => Ok(vec![
                sample(&[("__name__", "up"), ("job", "a"), ("instance", "h1:9100")], 1.0),
                sample(&[("__name__", "up"), ("job", "b"), ("instance", "h2:9100")], 0.0),
            ]),
            "x" => Ok(vec![sample(&[("__value__", "3.5")], 3.0)]),
            "big" => Ok(vec![sample(&[], 1234567.0)]),
            "unsorted" => Ok(vec![
                sample(&[("job", "c"), ("n", "1")], 1.0),
                sample(&[("job", "a"), ("n", "2")], 2.0),
                sample(&[("job", "b"), ("n", "3")], 3.0),
                sample(&[("job", "a"), ("n", "4")], 4.0),
            ]),
            "empty" => Ok(vec![]),
            _ => Err("boom".into()),
        }
    }
}

fn ctx_with(value: f64) -> Context {
    Context {
        labels: [("instance", "host1:9100"), ("job", "node")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        value,
        external_labels: [("cluster".to_string(), "c1".to_string())].into_iter().collect(),
        external_url: "http://prom.example/prometheus".into(),
    }
}

fn render_with(text: &str, value: f64) -> Result<String, TemplateError> {
    Template::parse("test", text)?.render(&ctx_with(value), &Mock)
}

#[track_caller]
fn ok(text: &str) -> String {
    match render_with(text, 42.5) {
        Ok(s) => s,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

#[track_caller]
fn check(text: &str, want: &str) {
    assert_eq!(ok(text), want, "template {text:?}");
}

#[track_caller]
fn render_err(text: &str) -> TemplateError {
    let t = Template::parse("test", text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"));
    match t.render(&ctx_with(42.5), &Mock) {
        Ok(s) => panic!("{text:?} rendered {s:?}, wanted an error"),
        Err(e) => e,
    }
}

#[track_caller]
fn parse_err(text: &str) -> TemplateError {
    match Template::parse("test", text) {
        Ok(_) => panic!("{text:?} parsed, wanted an error"),
        Err(e) => e,
    }
}

#[test]
fn labels_and_value() {
    check("{{ $labels.instance }} is down", "host1:9100 is down");
    check("{{ .Labels.job }}", "node");
    check("{{ index $labels \"job\" }}", "node");
    check("{{ $externalLabels.cluster }} {{ .ExternalLabels.cluster }}", "c1 c1");
    check("{{ $externalURL }}", "http://prom.example/prometheus");
    check("{{ $value }} {{ .Value }}", "42.5 42.5");
    // missingkey=zero: a missing label of map[string]string is "".
    check("[{{ $labels.missing }}][{{ .Labels.nope }}][{{ index $labels \"x\" }}]", "[][][]");
    check("{{ $ }}", "{map[instance:host1:9100 job:node] map[cluster:c1] http://prom.example/prometheus 42.5}");
}

#[test]
fn value_prints_like_go_v() {
    for (v, want) in [
        (1e6, "1e+06"),
        (0.1, "0.1"),
        (3.0, "3"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-0.0, "-0"),
        (1e21, "1e+21"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (1.0 / 3.0, "0.3333333333333333"),
    ] {
        assert_eq!(render_with("{{ $value }}", v).unwrap(), want, "value {v}");
    }
}

#[test]
fn humanize_functions() {
    check("{{ 1234567.0 | humanize }}", "1.235M");
    check("{{ humanize 0.00123 }}", "1.23m");
    check("{{ humanize 0 }}|{{ humanize 1 }}|{{ humanize 0.12 }}|{{ humanize 1000 }}", "0|1|120m|1k");
    check("{{ humanize -1234 }}|{{ humanize \"1234567\" }}|{{ humanize \"NaN\" }}", "-1.234k|1.235M|NaN");
    check("{{ humanize \"+Inf\" }}|{{ humanize \"-Inf\" }}", "+Inf|-Inf");
    assert_eq!(render_with("{{ $value | humanize }}", 1234567.0).unwrap(), "1.235M");
    check("{{ humanize1024 2048 }}|{{ humanize1024 0 }}|{{ humanize1024 1 }}", "2ki|0|1");
    check("{{ humanize1024 1048576 }}|{{ humanize1024 0.12 }}|{{ humanize1024 1023 }}", "1Mi|0.12|1023");
    let durations = [
        ("0", "0s"),
        ("1", "1s"),
        ("90", "1m 30s"),
        ("0.5", "500ms"),
        ("60", "1m 0s"),
        ("3600", "1h 0m 0s"),
        ("86400", "1d 0h 0m 0s"),
        ("90000", "1d 1h 0m 0s"),
        ("-183845", "-2d 3h 4m 5s"),
        ("899.99", "14m 59s"),
        ("0.1", "100ms"),
        ("0.0001", "100us"),
        ("0.12345", "123.5ms"),
        ("60.1", "1m 0s"),
        ("1.2345", "1.234s"),
        ("12.345", "12.35s"),
        ("\"NaN\"", "NaN"),
    ];
    for (arg, want) in durations {
        check(&format!("{{{{ humanizeDuration {arg} }}}}"), want);
    }
    check("{{ humanizePercentage 0.1234 }}|{{ humanizePercentage 0 }}|{{ humanizePercentage 0.5 }}", "12.34%|0%|50%");
    check("{{ humanizePercentage 1.23 }}|{{ humanizePercentage -0.8 }}", "123%|-80%");
    check("{{ humanizeTimestamp 1435065584.128 }}", "2015-06-23 13:19:44.128 +0000 UTC");
    check("{{ humanizeTimestamp \"1435065584.128\" }}", "2015-06-23 13:19:44.128 +0000 UTC");
    check(
        "{{ humanizeTimestamp 0 }}|{{ humanizeTimestamp -1 }}",
        "1970-01-01 00:00:00 +0000 UTC|1969-12-31 23:59:59 +0000 UTC",
    );
    check("{{ humanizeTimestamp \"NaN\" }}|{{ humanizeTimestamp \"Inf\" }}", "NaN|+Inf");
    check("{{ 1435065584.128 | toTime }}", "2015-06-23 13:19:44.128 +0000 UTC");
    check("{{ (toTime 1435065584).Unix }}", "1435065584");
    let e = render_err("{{ humanizeTimestamp 1e20 }}");
    assert!(
        e.message.ends_with("1e+20 cannot be represented as a nanoseconds timestamp since it overflows int64"),
        "{e}"
    );
    let e = render_err("{{ toTime \"NaN\" }}");
    assert!(e.message.ends_with("error calling toTime: value is NaN or Inf"), "{e}");
}

#[test]
fn humanize_error_matches_prometheus() {
    let e = render_err("{{ humanize \"one\" }}");
    assert_eq!(
        e.to_string(),
        "template: test:1:4: executing \"test\" at <humanize \"one\">: error calling humanize: \
         strconv.ParseFloat: parsing \"one\": invalid syntax"
    );
    let e = render_err("{{ humanize .Labels }}");
    assert!(e.message.ends_with("can't convert map[string]string to float"), "{e}");
}

#[test]
fn printf_verbs() {
    check("{{ printf \"%.2f\" $value }}", "42.50");
    check("{{ printf \"%d\" $value }}", "%!d(float64=42.5)");
    check("{{ printf \"%s\" $labels.job }}|{{ printf \"%q\" $labels.job }}", "node|\"node\"");
    check(
        "{{ printf \"%5.1f|%-6s|%05d|%x|%X|%o|%e|%g|%v|%t\" 3.14159 \"ab\" 42 255 255 8 1234.5678 0.000012345 \"x\" true }}",
        "  3.1|ab    |00042|ff|FF|10|1.234568e+03|1.2345e-05|x|true",
    );
    check("{{ printf \"%d %d\" 1 }}", "1 %!d(MISSING)");
    check("{{ printf \"x\" 1 \"a\" }}", "x%!(EXTRA int=1, string=a)");
    check("{{ printf \"100%%\" }}", "100%");
    check("{{ printf \"%v\" $labels }}", "map[instance:host1:9100 job:node]");
    check("{{ printf \"%T %T %T %T\" 1 1.5 \"s\" $labels }}", "int float64 string map[string]string");
    check("{{ printf \"%6.2f%%\" 12.345 }}", " 12.35%");
    check("{{ printf \"%+d|% d|%+.1e\" 5 5 12345.0 }}", "+5| 5|+1.2e+04");
    check("{{ printf \"%x|%c|%U|%#x|%q\" \"hi\" 65 65 255 65 }}", "6869|A|U+0041|0xff|'A'");
    check("{{ printf \"%[2]d %[1]d\" 1 2 }}", "2 1");
    check("{{ printf \"%*d|%-*d|\" 5 42 4 7 }}", "   42|7   |");
    check("{{ printf \"%.3s|%5.2s|\" \"abcdef\" \"xyz\" }}", "abc|   xy|");
    check("{{ printf \"%08.3f|%+08.2f|%8.3e\" -3.14159 2.5 1234.5 }}", "-003.142|+0002.50|1.234e+03");
    check(
        "{{ printf \"%e|%g|%G|%.3g|%.10g\" 0.0 100000000.0 1e-7 1234.5678 1.0 }}",
        "0.000000e+00|1e+08|1E-07|1.23e+03|1",
    );
    check("{{ printf \"%.0f %.0f %.0f %.1f\" 0.5 1.5 2.5 0.25 }}", "0 2 2 0.2");
    check("{{ printf \"%v %v %v\" 1e6 0.1 3.0 }}", "1e+06 0.1 3");
    check("{{ printf \"%5v|%-5v|%05v\" 1.5 true 7 }}", "  1.5|true |00007");
    check(
        "{{ printf \"%s\" 3 }}|{{ printf \"%z\" \"a\" }}|{{ printf \"%d\" nil }}",
        "%!s(int=3)|%!z(string=a)|%!d(<nil>)",
    );
    check(
        "{{ printf \"%f|%.2f|%8.2f|\" \"NaN\" (humanize 1) 1e23 }}",
        "%!f(string=NaN)|%!f(string=1)|99999999999999991611392.00|",
    );
    check("{{ printf \"%x %X %b\" 1.0 0.5 2.0 }}", "0x1p+00 0X1P-01 4503599627370496p-51");
    check("{{ printf \"%q\" \"a\\\"b\\n\\u00e9\" }}", "\"a\\\"b\\né\"");
    check("{{ printf \"%+q|%#q\" \"é\" \"raw\" }}", "\"\\u00e9\"|`raw`");
    check("{{ printf \"%d%\" 1 }}|{{ printf \"%!\" }}", "1%!(NOVERB)|%!!(MISSING)");
    check("{{ $value | printf \"%.1f\" }}", "42.5");
    check("{{ printf \"%5s|%-5s|%x|%.3d|%#o|%08b\" \"é\" \"ab\" -255 7 8 5 }}", "    é|ab   |-ff|007|010|00000101");
    check(
        "{{ printf \"%6.2v|%g|%v|%v|%v\" 3.14159 123456789.0 100000.0 1e20 1e100 }}",
        "   3.1|1.23456789e+08|100000|1e+20|1e+100",
    );
    check("{{ \"x\" | printf \"%s-%s\" \"y\" }}", "y-x");
    check("{{ printf \"%v\" (query \"x\" | first) }}", "&{map[__value__:3.5] 3}");
    check("{{ printf \"%+v\" (query \"x\" | first) }}", "&{Labels:map[__value__:3.5] Value:3}");
    check("{{ query \"x\" | first }}", "{map[__value__:3.5] 3}");
}

#[test]
fn print_and_println() {
    check("{{ print 1 2 \"a\" \"b\" 3 }}", "1 2ab3");
    check("{{ print 1.5 true nil }}", "1.5 true <nil>");
    check("{{ println 1 \"a\" }}", "1 a\n");
    check("{{ print }}|{{ println }}", "|\n");
}

#[test]
fn conditionals() {
    check("{{ if gt $value 80.0 }}high{{ else }}ok{{ end }}", "ok");
    assert_eq!(render_with("{{ if gt $value 80.0 }}high{{ else }}ok{{ end }}", 90.0).unwrap(), "high");
    check("{{ if eq $labels.job \"node\" }}yes{{ end }}", "yes");
    check("{{ if and (eq .Labels.job \"node\") (lt .Value 100.0) }}both{{ end }}", "both");
    check("{{ if lt $value 10.0 }}a{{ else if lt $value 50.0 }}b{{ else if true }}c{{ else }}d{{ end }}", "b");
    check("{{ if $labels.missing }}set{{ else }}unset{{ end }}", "unset");
    check("{{ with $labels.job }}job={{ . }}{{ end }}", "job=node");
    check("{{ with $labels.none }}x{{ else }}none{{ end }}", "none");
    check("{{ with $labels.none }}x{{ else with $labels.job }}{{ . }}{{ end }}", "node");
    check("{{ if 0 }}a{{ end }}{{ if 0.0 }}b{{ end }}{{ if \"\" }}c{{ end }}{{ if \"x\" }}d{{ end }}", "d");
    // Go does not compare float64 with an int constant.
    let e = render_err("{{ if gt $value 80 }}high{{ end }}");
    assert!(e.message.ends_with("error calling gt: incompatible types for comparison"), "{e}");
    assert_eq!((e.line, e.column), (1, 7));
    check(
        "{{ eq 1 2 3 1 }}|{{ ne \"a\" \"b\" }}|{{ le 1 1 }}|{{ ge 1.5 2.5 }}|{{ lt \"a\" \"b\" }}",
        "true|true|true|false|true",
    );
    check("{{ eq .Labels.job \"x\" \"node\" }}|{{ eq (safeHtml \"a\") \"a\" }}", "true|true");
    check("{{ and 1 0 2 }}|{{ or 0 \"\" \"x\" }}|{{ and 1 2 }}|{{ or 0 false }}|{{ not 0 }}", "0|x|2|false|true");
    // and/or short-circuit: the failing query is never run.
    check("{{ or 1 (query \"fail\") }}|{{ and 0 (query \"fail\") }}", "1|0");
    let e = render_err("{{ lt true false }}");
    assert!(e.message.ends_with("invalid type for comparison"), "{e}");
}

#[test]
fn ranges() {
    check("{{ range query \"up\" }}{{ .Labels.job }}={{ .Value }} {{ end }}", "a=1 b=0 ");
    check("{{ range $i, $s := query \"up\" }}{{ $i }}:{{ $s.Labels.job }},{{ end }}", "0:a,1:b,");
    check("{{ range $s := query \"up\" }}{{ $s.Value }}{{ end }}", "10");
    check("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", "instance=host1:9100;job=node;");
    check("{{ range $labels }}{{ . }} {{ end }}", "host1:9100 node ");
    check("{{ range query \"empty\" }}x{{ else }}none{{ end }}", "none");
    check("{{ range $i, $s := query \"up\" }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ $s.Labels.job }}{{ end }}", "a");
    check("{{ range $i, $s := query \"up\" }}{{ if eq $i 0 }}{{ continue }}{{ end }}{{ $s.Labels.job }}{{ end }}", "b");
    check("{{ range 3 }}{{ . }}{{ end }}", "012");
    check(
        "{{ range query \"up\" }}{{ if eq .Value 1.0 }}{{ range $k, $v := .Labels }}{{ $k }} {{ end }}{{ end }}{{ end }}",
        "__name__ instance job ",
    );
    check("{{ range sortByLabel \"job\" (query \"unsorted\") }}{{ .Labels.n }}{{ end }}", "2431");
    check("{{ range (args 1 \"b\") }}{{ . }}{{ end }}", "1b");
    // The range variables go out of scope at {{end}}; dot comes back.
    check("{{ range $x := query \"up\" }}{{ end }}{{ .Labels.job }}", "node");
    let e = render_err("{{ range 1.5 }}{{ end }}");
    assert!(e.message.ends_with("range can't iterate over 1.5"), "{e}");
}

#[test]
fn query_functions() {
    check("{{ with query \"x\" }}{{ . | first | value }}{{ else }}none{{ end }}", "3");
    check("{{ with query \"empty\" }}{{ . | first | value }}{{ else }}none{{ end }}", "none");
    check("{{ query \"up\" | first | label \"job\" }}", "a");
    check("{{ with query \"big\" }}{{ . | first | value | humanize }}{{ end }}", "1.235M");
    check("{{ (query \"up\" | first).Labels.job }}|{{ (first (query \"up\")).Value }}", "a|1");
    check("{{ query \"x\" | first | strvalue }}", "3.5");
    check("{{ len (query \"up\") }}|{{ (index (query \"up\") 1).Labels.job }}", "2|b");
    let e = render_err("{{ query \"fail\" }}");
    assert_eq!(e.message, "executing \"test\" at <query \"fail\">: error calling query: boom");
    let e = render_err("{{ first (query \"empty\") }}");
    assert!(e.message.ends_with("error calling first: first() called on vector with no elements"), "{e}");
    let e = render_err("{{ label \"job\" \"notasample\" }}");
    assert!(e.message.ends_with("wrong type for value; expected *template.sample; got string"), "{e}");
    assert_eq!(e.column, 16);
}

#[test]
fn trim_markers_and_comments() {
    check("a  {{- \"b\" -}}  c", "abc");
    check("{{ 3 }} {{- 4 }}", "34");
    check("x\n  {{- /* comment */ -}}\n  y", "xy");
    check("a{{/* hi\n there */}}b", "ab");
    check("{{-3}}", "-3");
    check("{{- 3 -}}\n", "3");
    check("[\n{{- range query \"up\" }}\n  {{ .Labels.job }}\n{{- end }}\n]", "[\n  a\n  b\n]");
}

#[test]
fn variables() {
    check("{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ $x }}", "12");
    check("{{ $x := \"out\" }}{{ if true }}{{ $x := \"in\" }}{{ $x }}{{ end }}{{ $x }}", "inout");
    check("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "2");
    check("{{ $v := $value }}{{ $v }}", "42.5");
    check("{{ $labels := .ExternalLabels }}{{ $labels.cluster }}", "c1");
    check("{{ with $x := $labels.job }}{{ $x }}{{ . }}{{ end }}", "nodenode");
    let e = parse_err("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}");
    assert_eq!(e.message, "undefined variable \"$y\"");
}

#[test]
fn literals() {
    check("{{ \"a\\tb\\u00e9\\x41\\101\" }}", "a\tbéAA");
    check("{{ `a\\n` }}", "a\\n");
    check("{{ 'a' }}|{{ '\\n' }}|{{ 0x10 }}|{{ 1e3 }}|{{ 1.5 }}|{{ -2 }}|{{ true }}", "97|10|16|1000|1.5|-2|true");
    check("{{ 1_000 }}|{{ 0o17 }}|{{ 017 }}|{{ 0b101 }}|{{ .5 }}|{{ 0x1p-2 }}", "1000|15|15|5|0.5|0.25");
    check("{{ printf \"%T %T %T\" 1 1.0 'x' }}", "int float64 int");
    let e = parse_err("{{ 3x }}");
    assert_eq!(e.message, "bad number syntax: \"3x\"");
    let e = parse_err("{{ 08 }}");
    assert_eq!(e.message, "integer overflow: \"08\"");
    let e = parse_err("{{ \"\\q\" }}");
    assert_eq!(e.message, "invalid syntax");
    assert_eq!(parse_err("{{ 99999999999999999999 }}").message, "integer overflow: \"99999999999999999999\"");
    let e = render_err("{{ 18446744073709551615 }}");
    assert!(e.message.ends_with("18446744073709551615 overflows int"), "{e}");
}

#[test]
fn builtins() {
    check("{{ len \"héllo\" }}|{{ len $labels }}|{{ len (args) }}", "6|2|0");
    check("{{ index \"abc\" 1 }}|{{ slice \"abcdef\" 1 3 }}|{{ slice \"abc\" 1 }}|{{ slice \"abc\" }}", "98|bc|bc|abc");
    check("{{ html \"<a href='x'>&\\\"\" }}", "&lt;a href=&#39;x&#39;&gt;&amp;&#34;");
    check(
        "{{ js \"it's <b>\\\"x\\\"</b> = 1\\n\" }}",
        "it\\'s \\u003Cb\\u003E\\\"x\\\"\\u003C/b\\u003E \\u003D 1\\u000A",
    );
    check("{{ urlquery \"a b&c=d/é\" }}", "a+b%26c%3Dd%2F%C3%A9");
    check("{{ html 1 \"<\" 2 }}|{{ print nil }}", "1&lt;2|<nil>");
    check("{{ with args 1 \"x\" }}{{ .arg0 }} {{ .arg1 }} {{ .arg2 }}{{ end }}", "1 x <no value>");
    let e = render_err("{{ index \"abc\" 5 }}");
    assert!(e.message.ends_with("error calling index: index out of range: 5"), "{e}");
    let e = render_err("{{ slice \"abc\" 2 1 }}");
    assert!(e.message.ends_with("invalid slice index: 2 > 1"), "{e}");
    let e = render_err("{{ call $labels }}");
    assert!(e.message.ends_with("error calling call: non-function $labels of type map[string]string"), "{e}");
    let e = render_err("{{ len 3 }}");
    assert!(e.message.ends_with("error calling len: len of type int"), "{e}");
}

#[test]
fn prometheus_string_functions() {
    check("{{ reReplaceAll \"(a)(b)\" \"$2$1\" \"xaby\" }}", "xbay");
    check("{{ reReplaceAll \":.*\" \"\" $labels.instance }}", "host1");
    check("{{ reReplaceAll \"(?P<h>[a-z]+)[0-9]\" \"${h}X\" \"web1 db2\" }}", "webX dbX");
    check("{{ match \"^h.*1\" \"host1\" }}|{{ match \"^x\" \"host1\" }}", "true|false");
    check("{{ \"aa bb CC\" | title }}|{{ title \"don't stop\" }}", "Aa Bb CC|Don't Stop");
    check("{{ \"Hello World\" | toUpper }}|{{ toLower \"ÀB\" }}", "HELLO WORLD|àb");
    check(
        "{{ stripPort \"host1:9100\" }}|{{ stripPort \"[::1]:80\" }}|{{ stripPort \"host\" }}|{{ stripPort \"::1\" }}",
        "host1|::1|host|::1",
    );
    check(
        "{{ stripDomain \"foo.example.com:9100\" }}|{{ stripDomain \"foo.example.com\" }}|{{ stripDomain \"192.168.1.1:9100\" }}|{{ stripDomain \"[2001:db8::1]:80\" }}",
        "foo:9100|foo|192.168.1.1:9100|[2001:db8::1]:80",
    );
    check("{{ graphLink \"up == 0\" }}", "/graph?g0.expr=up+%3D%3D+0&g0.tab=0");
    check("{{ tableLink \"rate(x[5m])\" }}", "/graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1");
    check("{{ \"<b>\" | safeHtml }}", "<b>");
    check(
        "{{ parseDuration \"1h30m\" }}|{{ parseDuration \"500ms\" }}|{{ parseDuration \"1d\" }}|{{ parseDuration \"0\" }}",
        "5400|0.5|86400|0",
    );
    check("{{ externalURL }}|{{ pathPrefix }}", "http://prom.example/prometheus|/prometheus");
    let e = render_err("{{ parseDuration \"1.5h\" }}");
    assert!(e.message.ends_with("error calling parseDuration: unknown unit \".\" in duration \"1.5h\""), "{e}");
    let e = render_err("{{ reReplaceAll \"(\" \"\" \"x\" }}");
    assert!(e.message.contains("error calling reReplaceAll: regexp: Compile(\"(\")"), "{e}");
    let e = render_err("{{ toUpper (safeHtml \"x\") }}");
    assert!(e.message.ends_with("wrong type for value; expected string; got template.HTML"), "{e}");
}

#[test]
fn define_and_template() {
    check("{{ define \"x\" }}[{{ . }}]{{ end }}{{ template \"x\" $labels.job }}", "[node]");
    check("{{ template \"x\" }}{{ define \"x\" }}<{{ . }}>{{ end }}", "<<no value>>");
    check("{{ block \"b\" . }}B{{ .Labels.job }}{{ end }}", "Bnode");
    let e = render_err("{{ template \"nope\" }}");
    assert_eq!(e.message, "executing \"test\" at <\"nope\">: template \"nope\" not defined");
    let e = render_err("{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}");
    assert!(e.message.contains("exceeded maximum template depth"), "{e}");
    assert!(e.message.starts_with("executing \"r\""), "{e}");
    let e = parse_err("{{ define \"x\" }}{{ $labels }}{{ end }}");
    assert_eq!(e.message, "undefined variable \"$labels\"");
    let e = parse_err("{{ define \"x\" }}a{{ end }}{{ define \"x\" }}b{{ end }}");
    assert_eq!(e.message, "template: multiple definition of template \"x\"");
    let e = parse_err("{{ if true }}{{ define \"x\" }}{{ end }}{{ end }}");
    assert_eq!(e.message, "unexpected <define> in command");
}

#[test]
fn parse_errors_with_positions() {
    let e = parse_err("{{ foo 1 }}");
    assert_eq!((e.line, e.column, e.message.as_str()), (1, 4, "function \"foo\" not defined"));
    assert_eq!(e.to_string(), "template: test:1:4: function \"foo\" not defined");
    let e = parse_err("line1\n  {{ bar }}");
    assert_eq!((e.line, e.column), (2, 6));
    let e = parse_err("é{{ now }}");
    assert_eq!((e.line, e.column), (1, 5));
    assert_eq!(parse_err("{{ .x").message, "unclosed action");
    assert_eq!(parse_err("{{ if true }}x").message, "unexpected EOF");
    assert_eq!(parse_err("{{ end }}").message, "unexpected {{end}}");
    assert_eq!(parse_err("{{ else }}").message, "unexpected {{else}}");
    assert_eq!(parse_err("{{ $undefined }}").message, "undefined variable \"$undefined\"");
    assert_eq!(parse_err("{{ \"a\" | \"b\" }}").message, "non executable command in pipeline stage 2");
    assert_eq!(parse_err("{{ break }}").message, "{{break}} outside {{range}}");
    assert_eq!(parse_err("{{ \"unterminated }}").message, "unterminated quoted string");
    assert_eq!(parse_err("{{ }}").message, "missing value for command");
    assert_eq!(parse_err("{{ if }}{{ end }}").message, "missing value for if");
    assert_eq!(parse_err("{{ (1 }}").message, "unclosed left paren");
    assert_eq!(parse_err("{{ 1) }}").message, "unexpected right paren");
    assert_eq!(parse_err("{{ /* x */ }}").message, "unexpected \"/\" in command");
    assert_eq!(parse_err("{{ \u{1F600} }}").message, "unrecognized character in action: U+1F600 '\u{1F600}'");
    assert_eq!(parse_err("{{/* x */ }}").message, "comment ends before closing delimiter");
    assert_eq!(parse_err("{{/* x ").message, "unclosed comment");
    assert_eq!(parse_err("{{ \"a\".b }}").message, "unexpected . after term \"\\\"a\\\"\"");
    assert_eq!(parse_err("{{ range $a, $b, $c := . }}{{ end }}").message, "too many declarations in range");
    assert_eq!(parse_err("{{ if true }}{{ else }}{{ else }}{{ end }}").message, "expected end; found {{else}}");
    assert_eq!(parse_err("{{ x := 1 }}").message, "function \"x\" not defined");
    assert_eq!(parse_err("{{ .a-b }}").message, "bad character U+002D '-'");
}

#[test]
fn exec_errors_with_positions() {
    let e = render_err("{{ .Labels.job.foo }}");
    assert!(e.message.ends_with("can't evaluate field foo in type string"), "{e}");
    let e = render_err("{{ .Foo }}");
    assert!(e.message.contains("can't evaluate field Foo in type struct {"), "{e}");
    let e = render_err("ok\n  {{ humanize 1 2 }}");
    assert_eq!((e.line, e.column), (2, 6));
    assert!(e.message.ends_with("wrong number of args for humanize: want 1 got 2"), "{e}");
    let e = render_err("{{ nil }}");
    assert!(e.message.ends_with("nil is not a command"), "{e}");
    let e = render_err("{{ 1 2 }}");
    assert!(e.message.ends_with("can't give argument to non-function 1"), "{e}");
    let e = render_err("{{ printf 1 }}");
    assert!(e.message.ends_with("wrong type for value; expected string; got int"), "{e}");
    let e = render_err("{{ $x = 1 }}");
    assert!(e.message.ends_with("undefined variable: $x"), "{e}");
    let e = render_err(
        "{{ printf \"%s\" (query \"up\" | sortByLabel \"job\" | first | label \"aaaaaaaaaaaaaaaaaaaa\") | humanize }}",
    );
    assert!(e.message.starts_with("executing \"test\" at <humanize>:"), "{e}");
    let e = render_err("{{ query \"fail\" | printf \"%v %v %v %v %v %v %v\" 1 2 3 4 5 6 }}");
    assert!(e.message.starts_with("executing \"test\" at <query \"fail\">"), "{e}");
    let e = render_err("{{ printf \"%v %v %v %v %v %v %v\" 1 2 3 4 5 6 (query \"fail\") }}");
    assert!(e.message.starts_with("executing \"test\" at <query \"fail\">"), "{e}");
    let e = render_err("{{ range 100000000 }}x{{ end }}");
    assert!(e.message.contains("exceeded"), "{e}");
}

#[test]
fn template_is_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<TemplateError>();
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(parse_err(&deep).message.contains("nesting depth"));
    let ifs = "{{ if true }}".repeat(3000);
    assert!(parse_err(&ifs).message.contains("nesting depth"));
    let elifs = format!("{{{{ if false }}}}{}{{{{ end }}}}", "{{ else if false }}".repeat(3000));
    assert!(parse_err(&elifs).message.contains("nesting depth"));
}

#[test]
fn deep_execution_stays_within_a_small_stack() {
    // Worst cases allowed by the parser, run on a thread with a 1 MiB stack
    // (half of Rust's and tokio's default) in an unoptimised build.
    let nested_ifs = format!("{}x{}", "{{ if true }}".repeat(99), "{{ end }}".repeat(99));
    let parens = format!("{{{{ {}1{} }}}}", "(print ".repeat(98), ")".repeat(98));
    let ranges = format!("{}{{{{ . }}}}{}", "{{ range query \"up\" }}".repeat(8), "{{ end }}".repeat(8));
    let recursive = format!(
        "{{{{ define \"r\" }}}}{}{{{{ template \"r\" . }}}}{}{{{{ end }}}}{{{{ template \"r\" . }}}}",
        "{{ if true }}{{ with . }}".repeat(45),
        "{{ end }}{{ end }}".repeat(45)
    );
    let handle = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            assert!(render_with(&nested_ifs, 1.0).unwrap().ends_with('x'));
            assert_eq!(render_with(&parens, 1.0).unwrap(), "1");
            assert!(render_with(&ranges, 1.0).is_ok());
            let e = render_with(&recursive, 1.0).unwrap_err();
            assert!(e.message.contains("exceeded maximum"), "{e}");
        })
        .unwrap();
    handle.join().unwrap();
}

/// Fragments that make random templates likely to parse and exercise much.
const FRAGMENTS: &[&str] = &[
    "{{",
    "}}",
    "{{-",
    "-}}",
    " ",
    "\n",
    "x",
    "{{ end }}",
    "{{ else }}",
    "{{ if ",
    "{{ range ",
    "{{ with ",
    "$labels",
    "$value",
    "$x",
    "$x := ",
    "$i, $v := ",
    ".Labels",
    ".Value",
    ".job",
    ".",
    "$",
    "(",
    ")",
    "|",
    "\"job\"",
    "\"%v\"",
    "`raw`",
    "'a'",
    "1",
    "2.5",
    "-3",
    "1e3",
    "0x1f",
    "true",
    "nil",
    "query \"up\"",
    "query \"x\"",
    "query \"empty\"",
    "first",
    "value",
    "label ",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "printf ",
    "print ",
    "println ",
    "index ",
    "slice ",
    "len ",
    "eq ",
    "lt ",
    "and ",
    "or ",
    "not ",
    "html ",
    "js ",
    "urlquery ",
    "args ",
    "reReplaceAll ",
    "match ",
    "title ",
    "sortByLabel ",
    "parseDuration ",
    "stripDomain ",
    "{{ break }}",
    "{{ continue }}",
    "{{/* c */}}",
    "{{ define \"t\" }}",
    "{{ template \"t\" . }}",
    "\"%d %s %.2f %x %q %[2]v %*d\"",
    "\"(a)\"",
    "\"$1\"",
    "\"1h\"",
    "\"NaN\"",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
        if let Ok(t) = Template::parse("fuzz", &text) {
            let _ = t.render(&ctx_with(1.5), &Mock);
        }
    }

    #[test]
    fn template_like_text_never_panics(parts in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..24), value in any::<f64>()) {
        let text: String = parts.concat();
        if let Ok(t) = Template::parse("fuzz", &text) {
            let _ = t.render(&ctx_with(value), &Mock);
        }
    }

    #[test]
    fn printf_never_panics(format in "[%0-9.*\\[\\]#+ vdsqxXfeEgGtTcUbo!a-z]{0,24}", i in any::<i64>(), f in any::<f64>(), s in "\\PC{0,8}") {
        let _ = gofmt::sprintf(&format, &[Value::Int(i), Value::Float(f), Value::Str(s.clone())]);
        let text = format!("{{{{ printf {} {i} {} {} }}}}", gofmt::go_quote(&format, false), gofmt::float_v(f), gofmt::go_quote(&s, false));
        if let Ok(t) = Template::parse("fuzz", &text) {
            let _ = t.render(&ctx_with(f), &Mock);
        }
    }

    #[test]
    fn float_formatting_round_trips(f in any::<f64>()) {
        // %v is the shortest representation that parses back to the same float.
        let s = gofmt::float_v(f);
        if f.is_finite() {
            let back: f64 = s.parse().unwrap_or(f64::NAN);
            prop_assert_eq!(back.to_bits(), f.to_bits(), "{} printed as {}", f, s);
        }
        let _ = humanize::humanize(f);
        let _ = humanize::humanize1024(f);
        let _ = humanize::humanize_duration(f);
        let _ = humanize::humanize_timestamp(f);
    }
}
