//! HTTP API shapes and error bodies, checked against what Alertmanager 0.25 answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

async fn setup() -> (wasmon_notify::Notifier, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "route:\n  receiver: web\n  group_by: [alertname]\n  {TIMINGS}\nreceivers:\n  - name: web\n    webhook_configs: [{{url: 'http://127.0.0.1:9/web'}}]\n  - name: other\n"
    );
    let n = notifier(&yaml, dir.path());
    let api = serve(n.router()).await;
    (n, format!("http://{api}/api/v2"), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_post_and_get() {
    let (n, api, _dir) = setup().await;
    let ends = now() + chrono::Duration::minutes(10);
    // Prometheus' body: startsAt, endsAt, generatorURL.
    let (status, body) = http(
        "POST",
        &format!("{api}/alerts"),
        Some(json!([{
            "labels": {"alertname": "Foo", "job": "x"},
            "annotations": {"summary": "hi"},
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": ends.to_rfc3339(),
            "generatorURL": "http://prom/graph?g0.expr=up",
        }])),
    )
    .await;
    assert_eq!((status, body), (200, serde_json::Value::Null));
    let (status, alerts) = http("GET", &format!("{api}/alerts"), None).await;
    assert_eq!(status, 200);
    let a = &alerts[0];
    assert_eq!(a["fingerprint"], "77c7c0a24f9bac0f", "same fingerprint as Alertmanager");
    assert_eq!(a["startsAt"], "2026-01-01T00:00:00.000Z");
    assert_eq!(a["endsAt"], wasmon_notify::model::fmt_api_time(&ends));
    assert_eq!(a["generatorURL"], "http://prom/graph?g0.expr=up");
    assert_eq!(a["receivers"], json!([{"name": "web"}]));
    assert_eq!(a["status"], json!({"inhibitedBy": [], "silencedBy": [], "state": "active"}));
    assert!(a["updatedAt"].as_str().unwrap().ends_with('Z'));
    // Invalid alerts: the first problem of each, joined, as Alertmanager reports them;
    // the valid alert of the batch is still taken.
    let (status, body) = http(
        "POST",
        &format!("{api}/alerts"),
        Some(json!([
            {"labels": {}},
            {"labels": {"a-b": "x"}},
            {"labels": {"ok": "1"}, "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2019-01-01T00:00:00Z"},
            {"labels": {"alertname": "Bar"}},
        ])),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "at least one label pair required; invalid label set: invalid name \"a-b\"; start time must be before end time"
    );
    let (_, alerts) = http("GET", &format!("{api}/alerts?filter=alertname%3D%22Bar%22"), None).await;
    assert_eq!(alerts.as_array().unwrap().len(), 1);
    // Without endsAt: resolve_timeout (5m) from now.
    let end = chrono::DateTime::parse_from_rfc3339(alerts[0]["endsAt"].as_str().unwrap()).unwrap();
    assert!(end.with_timezone(&chrono::Utc) > now() + chrono::Duration::minutes(4));
    let (status, body) = http("POST", &format!("{api}/alerts"), Some(json!({"labels": {}}))).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], 400);
    let (status, body) = http("GET", &format!("{api}/alerts?filter=foo"), None).await;
    assert_eq!((status, body), (400, json!("bad matcher format: foo")));
    let (_, alerts) = http("GET", &format!("{api}/alerts?receiver=oth.*"), None).await;
    assert_eq!(alerts, json!([]));
    assert_eq!(n.stats().alerts_invalid, 3);
    assert_eq!(n.stats().alerts_received, 2);
}

fn silence_body(matchers: serde_json::Value, hours: i64) -> serde_json::Value {
    let start = now();
    json!({
        "matchers": matchers,
        "startsAt": start.to_rfc3339(),
        "endsAt": (start + chrono::Duration::hours(hours)).to_rfc3339(),
        "createdBy": "me",
        "comment": "why",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_crud_and_errors() {
    let (_n, api, _dir) = setup().await;
    let foo = json!([{"name": "alertname", "value": "Foo", "isRegex": false, "isEqual": true}]);
    let (status, body) = http("POST", &format!("{api}/silences"), Some(silence_body(foo.clone(), -1))).await;
    assert_eq!((status, body), (400, json!("Failed to create silence: start time must be before end time")));
    let mut past = silence_body(foo.clone(), 1);
    past["startsAt"] = json!("2020-01-01T00:00:00Z");
    past["endsAt"] = json!("2020-01-02T00:00:00Z");
    let (status, body) = http("POST", &format!("{api}/silences"), Some(past)).await;
    assert_eq!((status, body), (400, json!("Failed to create silence: end time can't be in the past")));
    let all = json!([{"name": "a", "value": ".*", "isRegex": true}]);
    let (status, body) = http("POST", &format!("{api}/silences"), Some(silence_body(all, 1))).await;
    assert_eq!((status, body), (400, json!("silence invalid: at least one matcher must not match the empty string")));
    let mut no_comment = silence_body(foo.clone(), 1);
    no_comment.as_object_mut().unwrap().remove("comment");
    let (status, body) = http("POST", &format!("{api}/silences"), Some(no_comment)).await;
    assert_eq!((status, body), (422, json!({"code": 422, "message": "comment in body is required"})));

    let (status, body) = http("POST", &format!("{api}/silences"), Some(silence_body(foo.clone(), 1))).await;
    assert_eq!(status, 200);
    let id = body["silenceID"].as_str().unwrap().to_string();
    let (status, s) = http("GET", &format!("{api}/silence/{id}"), None).await;
    assert_eq!(status, 200);
    for key in ["id", "status", "updatedAt", "comment", "createdBy", "endsAt", "matchers", "startsAt"] {
        assert!(s.get(key).is_some(), "missing {key} in {s}");
    }
    assert_eq!(s["matchers"], foo);
    // Extending keeps the id; changing matchers replaces the silence.
    let mut longer = s.clone();
    longer["endsAt"] = json!((now() + chrono::Duration::hours(3)).to_rfc3339());
    let (status, body) = http("POST", &format!("{api}/silences"), Some(longer.clone())).await;
    assert_eq!((status, body["silenceID"].as_str()), (200, Some(id.as_str())));
    let mut other = longer;
    other["matchers"] = json!([{"name": "alertname", "value": "Bar", "isRegex": false, "isEqual": true}]);
    let (_, body) = http("POST", &format!("{api}/silences"), Some(other)).await;
    let id2 = body["silenceID"].as_str().unwrap().to_string();
    assert_ne!(id2, id);
    let (_, list) = http("GET", &format!("{api}/silences"), None).await;
    let states: Vec<_> =
        list.as_array().unwrap().iter().map(|s| (s["id"].clone(), s["status"]["state"].clone())).collect();
    assert_eq!(states, [(json!(id2), json!("active")), (json!(id), json!("expired"))]);
    // Filters match the silences' matchers.
    let (_, list) = http("GET", &format!("{api}/silences?filter=alertname%3DBar"), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id2.as_str());
    let mut unknown = silence_body(foo, 1);
    unknown["id"] = json!("00000000-0000-4000-8000-000000000000");
    let (status, _) = http("POST", &format!("{api}/silences"), Some(unknown)).await;
    assert_eq!(status, 404);

    let (status, body) = http("GET", &format!("{api}/silence/nope"), None).await;
    assert_eq!((status, body), (404, serde_json::Value::Null));
    assert_eq!(http("DELETE", &format!("{api}/silence/{id2}"), None).await.0, 200);
    // Expiring twice is fine, as in Alertmanager 0.25.
    assert_eq!(http("DELETE", &format!("{api}/silence/{id2}"), None).await.0, 200);
    assert_eq!(http("DELETE", &format!("{api}/silence/nope"), None).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_receivers() {
    let (_n, api, _dir) = setup().await;
    let (status, s) = http("GET", &format!("{api}/status"), None).await;
    assert_eq!(status, 200);
    assert_eq!(s["cluster"], json!({"peers": [], "status": "disabled"}));
    assert_eq!(s["versionInfo"]["version"], "0.25.0");
    for key in ["branch", "buildDate", "buildUser", "goVersion", "revision"] {
        assert!(s["versionInfo"][key].is_string(), "{key}");
    }
    assert!(s["uptime"].as_str().unwrap().ends_with('Z'));
    let original = s["config"]["original"].as_str().unwrap();
    let cfg = wasmon_notify::Config::from_yaml(original).unwrap();
    assert_eq!(cfg.receivers.len(), 2);
    let (_, r) = http("GET", &format!("{api}/receivers"), None).await;
    assert_eq!(r, json!([{"name": "web"}, {"name": "other"}]));
}
