//! Every query of every Grafana dashboard in `charts/customersignal/dashboards` (panels and
//! template variables) runs against the real ClickHouse on a database migrated by the
//! evaluator and filled through its store functions, with the macros and variables rendered as
//! the ClickHouse plugin renders them (`support/grafana.rs` documents how). Key panels are
//! checked against what was inserted, and one tenant's selection never shows another's data.

#[path = "support/dashboard_fixture.rs"]
mod fixture;
#[path = "support/grafana.rs"]
mod grafana;

use evaluator::store::schema::migrate;
use fixture::RANGE;
use grafana::{Dashboard, Selected, VariableKind};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn dashboards_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/customersignal/dashboards")
}

/// Every dashboard file, by file name, parsed (panics listing every problem found).
fn dashboards() -> Vec<(String, Value, Dashboard)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dashboards_dir())
        .expect("charts/customersignal/dashboards")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards");
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("read");
            let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let dashboard = grafana::parse(&json)
                .unwrap_or_else(|problems| panic!("{name}:\n  {}", problems.join("\n  ")));
            (name, json, dashboard)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Checks that need no server.

#[test]
fn dashboards_are_well_formed_small_and_point_at_the_default_database() {
    let mut uids = Vec::new();
    for (name, json, dashboard) in dashboards() {
        let size = serde_json::to_string(&json).unwrap().len();
        // A ConfigMap holds at most 1 MiB; leave room for the rest of the object.
        assert!(size < 512 * 1024, "{name} is {size} bytes");
        assert!(!dashboard.queries.is_empty(), "{name} has no queries");
        let database = dashboard.variables.iter().find(|v| v.name == "database");
        assert_eq!(
            database.map(|v| &v.kind),
            Some(&VariableKind::Constant("customersignal".into())),
            "{name}: a `database` constant naming the evaluator's default database"
        );
        uids.push(dashboard.uid);
    }
    let count = uids.len();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), count, "dashboard uids are unique");
}

#[test]
fn rendering_follows_the_plugin() {
    let values = BTreeMap::from([
        ("one".to_string(), Selected::One("acme".into())),
        (
            "many".to_string(),
            Selected::Many(vec!["a".into(), "o'b".into()]),
        ),
    ]);
    let render = |sql: &str| grafana::render(sql, &values, &RANGE);
    assert_eq!(
        render("x IN (${many:singlequote}) AND y = ${one:singlequote}"),
        Ok(r"x IN ('a','o\'b') AND y = 'acme'".into())
    );
    // The plugin's own format: bare for one value (so `IN ($one)` would be broken SQL).
    assert_eq!(
        render("$one ${one} ${many}"),
        Ok("acme acme 'a','o'b'".into())
    );
    let (from, to) = (RANGE.from, RANGE.to);
    assert_eq!(
        render("$__timeFilter( toDateTime(intDiv(t, 1000)) ) AND a < $__toTime + $__interval_s"),
        Ok(format!(
            "toDateTime(intDiv(t, 1000)) >= toDateTime({from}) AND toDateTime(intDiv(t, 1000)) <= toDateTime({to}) AND a < toDateTime({to}) + 3600"
        ))
    );
    assert_eq!(
        render("$__timeInterval(at)"),
        Ok("toStartOfInterval(toDateTime(at), INTERVAL 3600 second)".into())
    );
    assert_eq!(
        render("arr[1] = [[1, 2]][1] AND $ 5"),
        Ok("arr[1] = [[1, 2]][1] AND $ 5".into())
    );
}

#[test]
fn what_would_ship_untested_is_rejected() {
    let values = BTreeMap::from([("one".to_string(), Selected::One("acme".into()))]);
    for sql in [
        "$__timeFilter_ms(t)",
        "$__timeFilter",
        "$__fromTime(t)",
        "$__timeGroup(t, 1h)",
        "$__conditionalAll(x IN ($one), $one)",
        "${__from}",
        "$unknown",
        "${one:csv}",
        "[[one]]",
        "$__timeFilter(t",
    ] {
        assert!(
            grafana::render(sql, &values, &RANGE).is_err(),
            "{sql} rendered"
        );
    }
    let ds = json!({"type": grafana::PLUGIN, "uid": grafana::DATASOURCE_UID});
    let good_target = json!({"refId": "A", "datasource": ds, "editorType": "sql", "format": 1, "rawSql": "SELECT 1"});
    let bad = json!({
        "uid": "bad",
        "annotations": {"list": [{"name": "deploys", "datasource": ds}]},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": grafana::PLUGIN},
            {"name": "free", "type": "textbox", "query": "x"},
            {"name": "v", "type": "query", "datasource": {"type": "prometheus", "uid": "p"}, "query": "up"}
        ]},
        "panels": [
            {"type": "stat", "title": "no targets", "datasource": ds},
            {"type": "stat", "title": "prometheus", "datasource": {"type": "prometheus", "uid": "p"},
             "targets": [{"refId": "A", "datasource": {"type": "prometheus", "uid": "p"}, "expr": "up"}]},
            {"type": "row", "title": "row", "collapsed": true, "panels": [
                {"type": "table", "title": "builder", "datasource": ds,
                 "targets": [{"refId": "A", "datasource": ds, "editorType": "builder", "format": 1}]},
                {"type": "table", "title": "fixed uid", "datasource": {"type": grafana::PLUGIN, "uid": "abc"},
                 "targets": [good_target]}
            ]}
        ]
    });
    let problems = grafana::parse(&bad).expect_err("bad dashboard accepted");
    let joined = problems.join("\n");
    for expected in [
        "annotation `deploys`",
        "variable `free`",
        "variable `v`: datasource",
        "panel `no targets`: no SQL target",
        "panel `prometheus`: datasource",
        "panel `prometheus` target A: datasource",
        "panel `prometheus` target A: needs editorType sql",
        "panel `builder` target A: needs editorType sql",
        "panel `fixed uid`: datasource",
    ] {
        assert!(
            joined.contains(expected),
            "missing `{expected}` in:\n{joined}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Running every query.

type Row = Map<String, Value>;

/// Runs rendered SQL over ClickHouse's HTTP interface; rows as JSON objects.
async fn query(http: &reqwest::Client, sql: &str) -> Result<Vec<Row>, String> {
    let url = format!(
        "{}/?default_format=JSON&output_format_json_quote_64bit_integers=0",
        tests::clickhouse_url()
    );
    let response = http
        .post(&url)
        .body(sql.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let ok = response.status().is_success();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if !ok {
        return Err(body);
    }
    let json: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    let rows = json
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no data: {body}"))?;
    Ok(rows.iter().filter_map(|r| r.as_object().cloned()).collect())
}

/// The server's rendering of an epoch time (ClickHouse prints DateTime in its own time zone).
async fn server_time(http: &reqwest::Client, secs: i64) -> String {
    let rows = query(http, &format!("SELECT toString(toDateTime({secs})) AS t"))
        .await
        .expect("time");
    text(&rows[0], "t")
}

fn text(row: &Row, column: &str) -> String {
    match row.get(column) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => panic!("no column {column} in {row:?}"),
    }
}

fn number(row: &Row, column: &str) -> f64 {
    match row.get(column) {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => s.parse().unwrap_or_else(|_| panic!("{column}: {s}")),
        _ => f64::NAN,
    }
}

/// The plugin turns a time-series result into series when it has a `time` column in
/// ascending order (long to wide).
fn time_series(rows: Vec<Row>) -> Result<Vec<Row>, String> {
    let times: Vec<String> = rows
        .iter()
        .map(|r| r.get("time").map(Value::to_string).unwrap_or_default())
        .collect();
    if times.iter().any(String::is_empty) {
        return Err("a time series without a `time` column".into());
    }
    if times.windows(2).any(|w| w[0] > w[1]) {
        return Err("a time series not in time order".into());
    }
    Ok(rows)
}

/// What a user picks: one tenant (None: All), one source (None: All), and the top movers' metric.
struct Scenario {
    name: &'static str,
    tenant: Option<&'static str>,
    source: Option<&'static str>,
    property: &'static str,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario {
        name: "acme",
        tenant: Some("acme"),
        source: None,
        property: "value",
    },
    Scenario {
        name: "acme-count",
        tenant: Some("acme"),
        source: None,
        property: "(count)",
    },
    Scenario {
        name: "acme-web",
        tenant: Some("acme"),
        source: Some("web"),
        property: "value",
    },
    Scenario {
        name: "all",
        tenant: None,
        source: None,
        property: "value",
    },
];

impl Scenario {
    /// The selection of a query variable among its options. A single chosen value is handed
    /// over as a string, which the plugin leaves unquoted, so SQL that works only with the
    /// quoting of a multi-value selection fails here; All is every option.
    fn choose(&self, name: &str, multi: bool, options: &[String]) -> Result<Selected, String> {
        let pick = match name {
            "tenant" => self.tenant,
            "source" => self.source,
            "event" => Some("checkout_completed"),
            "property" => Some(self.property),
            _ => None,
        };
        match (pick, multi) {
            (Some(value), _) if options.iter().any(|o| o == value) => {
                Ok(Selected::One(value.into()))
            }
            (Some(value), _) => Err(format!("`{value}` is not among {options:?}")),
            (None, true) => Ok(Selected::Many(options.to_vec())),
            (None, false) => options
                .first()
                .map(|o| Selected::One(o.clone()))
                .ok_or_else(|| "no options".into()),
        }
    }
}

/// Rows of each panel target and options of each query variable, per scenario and file.
#[derive(Default)]
struct Results {
    panels: BTreeMap<(String, String, String), Vec<Row>>,
    options: BTreeMap<(String, String, String), Vec<String>>,
    failures: Vec<String>,
}

impl Results {
    fn rows(&self, scenario: &str, file: &str, panel: &str) -> &[Row] {
        self.panels
            .get(&(scenario.into(), file.into(), panel.into()))
            .unwrap_or_else(|| panic!("no results for {scenario} / {file} / {panel}"))
    }

    fn options(&self, scenario: &str, file: &str, variable: &str) -> &[String] {
        &self.options[&(scenario.into(), file.into(), variable.into())]
    }
}

async fn run_all(http: &reqwest::Client, database: &str) -> Results {
    let mut results = Results::default();
    for (file, _, dashboard) in dashboards() {
        for scenario in &SCENARIOS {
            let key = |item: &str| (scenario.name.to_string(), file.clone(), item.to_string());
            let mut values = BTreeMap::new();
            for variable in &dashboard.variables {
                let failure = |e: String| {
                    format!(
                        "{file} / variable {} / {}: {e}",
                        variable.name, scenario.name
                    )
                };
                match &variable.kind {
                    VariableKind::Datasource => {}
                    VariableKind::Constant(_) => {
                        values.insert(variable.name.clone(), Selected::One(database.into()));
                    }
                    VariableKind::Query { sql, multi } => {
                        let options = match grafana::render(sql, &values, &RANGE) {
                            Ok(sql) => query(http, &sql).await.map_err(|e| format!("{e}\n{sql}")),
                            Err(e) => Err(e),
                        };
                        let options: Vec<String> = match options {
                            Ok(rows) => rows
                                .iter()
                                .filter_map(|r| r.values().next())
                                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                                .collect(),
                            Err(e) => {
                                results.failures.push(failure(e));
                                Vec::new()
                            }
                        };
                        match scenario.choose(&variable.name, *multi, &options) {
                            Ok(selected) => {
                                values.insert(variable.name.clone(), selected);
                            }
                            Err(e) => results.failures.push(failure(e)),
                        }
                        results.options.insert(key(&variable.name), options);
                    }
                }
            }
            for panel in &dashboard.queries {
                let rendered = grafana::render(&panel.sql, &values, &RANGE);
                let rows = match rendered {
                    Ok(sql) => query(http, &sql).await.map_err(|e| format!("{e}\n{sql}")),
                    Err(e) => Err(e),
                };
                let rows = rows.and_then(|rows| match panel.format {
                    0 => time_series(rows),
                    _ => Ok(rows),
                });
                match rows {
                    Ok(rows) => {
                        results
                            .panels
                            .entry(key(&panel.panel))
                            .or_default()
                            .extend(rows);
                    }
                    Err(e) => results.failures.push(format!(
                        "{file} / panel {} {} / {}: {e}",
                        panel.panel, panel.ref_id, scenario.name
                    )),
                }
            }
        }
    }
    results
}

#[tokio::test]
async fn every_dashboard_query_runs_and_key_panels_show_what_was_stored() {
    let (client, database) = tests::clickhouse_database("cs_dashboards").await.unwrap();
    migrate(&client).await.unwrap();
    fixture::seed_events(&client).await;
    fixture::seed_alerts(&client).await;
    let http = tests::http();
    let results = run_all(&http, &database).await;
    assert!(
        results.failures.is_empty(),
        "failing queries:\n\n{}",
        results.failures.join("\n\n")
    );
    assert_no_other_tenant(&results);
    fixture::assert_events(&http, &results).await;
    fixture::assert_alerts(&http, &results).await;
    fixture::assert_movers(&http, &results).await;
    client
        .query(&format!("DROP DATABASE {database}"))
        .execute()
        .await
        .unwrap();
}

/// With acme selected, nothing of globex shows anywhere; with All, it does.
fn assert_no_other_tenant(results: &Results) {
    let mut seen_with_all = false;
    for ((scenario, file, panel), rows) in &results.panels {
        let leaks = rows.iter().any(|row| {
            row.values()
                .any(|v| v.to_string().contains("globex") || v.to_string().contains("g-huge"))
        });
        if scenario == "all" {
            seen_with_all |= leaks;
        } else {
            assert!(
                !leaks,
                "{file} / {panel} / {scenario} shows globex: {rows:?}"
            );
        }
    }
    assert!(seen_with_all, "globex shows nowhere with All selected");
}
