//! Grafana dashboards for the official ClickHouse plugin (`grafana-clickhouse-datasource` v4):
//! what a dashboard must look like for its SQL to be tested, and how the SQL is rendered before
//! ClickHouse sees it, so a test can run every query.
//!
//! Rendering takes two steps, as in Grafana:
//!
//! 1. **Template variables**, in the browser: Grafana's template service with the plugin's
//!    format function (`format` in `src/data/CHDatasource.ts`). `$var` and `${var}` become the
//!    bare value when one value is selected and `'a','b'` for several (a multi-value selection,
//!    or All: every option of the variable); `${var:singlequote}` (Grafana's formatter) quotes
//!    every value, escaping `'` as `\'`. Another format, the old `[[var]]` syntax, a
//!    `${__global}` or an unknown variable is an error.
//! 2. **Macros**, in the plugin's backend (`pkg/macros/macros.go`, parsed by sqlds: `$__name`,
//!    then an optional parenthesised argument list split at top-level commas and trimmed), for
//!    a time range FROM..TO in epoch seconds and an interval of N seconds:
//!    `$__timeFilter(c)` → `c >= toDateTime(FROM) AND c <= toDateTime(TO)`,
//!    `$__fromTime` → `toDateTime(FROM)`, `$__toTime` → `toDateTime(TO)`,
//!    `$__timeInterval(c)` → `toStartOfInterval(toDateTime(c), INTERVAL N second)` (which
//!    ClickHouse 18.16 lacks), `$__interval_s` → `N`. Any other `$__name` is an error, so no
//!    macro this code does not know can ship untested.

use serde_json::Value;
use std::collections::BTreeMap;

pub const PLUGIN: &str = "grafana-clickhouse-datasource";
/// Every query must go through the dashboard's `datasource` variable.
pub const DATASOURCE_UID: &str = "${datasource}";

/// A variable's selection.
#[derive(Debug, Clone, PartialEq)]
pub enum Selected {
    /// One value of a single-value variable (Grafana hands the format function a string).
    One(String),
    /// Several values, or All (every option).
    Many(Vec<String>),
}

#[derive(Debug, Clone, Copy)]
pub struct TimeRange {
    pub from: i64,
    pub to: i64,
    pub interval_s: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum VariableKind {
    Datasource,
    Constant(String),
    Query { sql: String, multi: bool },
}

#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    pub kind: VariableKind,
}

#[derive(Debug, Clone)]
pub struct PanelQuery {
    pub panel: String,
    pub ref_id: String,
    pub sql: String,
    /// 0: time series, 1: table.
    pub format: u64,
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    pub uid: String,
    pub variables: Vec<Variable>,
    pub queries: Vec<PanelQuery>,
}

fn uses_datasource_variable(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some(PLUGIN)
        && value.get("uid").and_then(Value::as_str) == Some(DATASOURCE_UID)
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Reads a dashboard, or lists everything that would let a query escape the tests: a panel
/// without SQL, a datasource other than the variable, a variable whose values no query gives.
pub fn parse(json: &Value) -> Result<Dashboard, Vec<String>> {
    let mut problems = Vec::new();
    let variables = parse_variables(json, &mut problems);
    if !variables
        .iter()
        .any(|v| v.name == "datasource" && v.kind == VariableKind::Datasource)
    {
        problems.push(format!(
            "no `datasource` variable of type datasource for {PLUGIN}"
        ));
    }
    let annotations = json
        .pointer("/annotations/list")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for annotation in annotations {
        if annotation
            .pointer("/datasource/type")
            .and_then(Value::as_str)
            != Some("grafana")
        {
            problems.push(format!(
                "annotation `{}`: only Grafana's built-in annotations (a query here would go untested)",
                text(annotation, "name")
            ));
        }
    }
    let mut queries = Vec::new();
    let mut titles = Vec::new();
    match json.get("panels").and_then(Value::as_array) {
        Some(panels) => parse_panels(panels, &mut queries, &mut titles, &mut problems),
        None => problems.push("no panels".into()),
    }
    let count = titles.len();
    titles.sort_unstable();
    titles.dedup();
    if titles.len() != count {
        problems.push("panel titles must be unique (tests find panels by title)".into());
    }
    let uid = text(json, "uid").to_string();
    if uid.is_empty() {
        problems.push("no uid".into());
    }
    if problems.is_empty() {
        Ok(Dashboard {
            uid,
            variables,
            queries,
        })
    } else {
        Err(problems)
    }
}

fn parse_variables(json: &Value, problems: &mut Vec<String>) -> Vec<Variable> {
    let list = json
        .pointer("/templating/list")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let mut variables = Vec::new();
    for var in list {
        let name = text(var, "name").to_string();
        let kind = match text(var, "type") {
            "datasource" if text(var, "query") == PLUGIN => VariableKind::Datasource,
            "constant" => VariableKind::Constant(text(var, "query").to_string()),
            "query" => {
                // The plugin reads a string, or an object's `rawSql` (newer editors).
                let sql = var
                    .get("query")
                    .and_then(|q| q.as_str().or_else(|| q.get("rawSql")?.as_str()))
                    .unwrap_or_default()
                    .to_string();
                if !uses_datasource_variable(var.get("datasource").unwrap_or(&Value::Null)) {
                    problems.push(format!(
                        "variable `{name}`: datasource must be {PLUGIN} via ${{datasource}}"
                    ));
                }
                if sql.trim().is_empty() {
                    problems.push(format!("variable `{name}`: no SQL"));
                }
                let multi = var.get("multi").and_then(Value::as_bool).unwrap_or(false);
                let all = var
                    .get("includeAll")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let custom_all = var.get("allValue").is_some_and(|v| !v.is_null());
                if all && custom_all {
                    problems.push(format!(
                        "variable `{name}`: a custom allValue is not rendered by the tests"
                    ));
                }
                VariableKind::Query { sql, multi }
            }
            other => {
                problems.push(format!(
                    "variable `{name}`: type `{other}` is not one the tests render (datasource of {PLUGIN}, constant, query)"
                ));
                continue;
            }
        };
        variables.push(Variable { name, kind });
    }
    variables
}

fn parse_panels(
    panels: &[Value],
    queries: &mut Vec<PanelQuery>,
    titles: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    for panel in panels {
        let title = text(panel, "title").to_string();
        if text(panel, "type") == "row" {
            // A collapsed row keeps its panels inside it.
            if let Some(inner) = panel.get("panels").and_then(Value::as_array) {
                parse_panels(inner, queries, titles, problems);
            }
            continue;
        }
        if title.is_empty() {
            problems.push("a panel without a title".into());
        }
        titles.push(title.clone());
        if !uses_datasource_variable(panel.get("datasource").unwrap_or(&Value::Null)) {
            problems.push(format!(
                "panel `{title}`: datasource must be {PLUGIN} via ${{datasource}}"
            ));
        }
        let targets = panel
            .get("targets")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        if targets.is_empty() {
            problems.push(format!("panel `{title}`: no SQL target"));
        }
        for target in targets {
            let ref_id = text(target, "refId").to_string();
            let sql = text(target, "rawSql").to_string();
            let format = target.get("format").and_then(Value::as_u64);
            if !uses_datasource_variable(target.get("datasource").unwrap_or(&Value::Null)) {
                problems.push(format!(
                    "panel `{title}` target {ref_id}: datasource must be {PLUGIN} via ${{datasource}}"
                ));
            }
            if text(target, "editorType") != "sql" || sql.trim().is_empty() {
                problems.push(format!(
                    "panel `{title}` target {ref_id}: needs editorType sql and rawSql"
                ));
            }
            match format {
                Some(format @ (0 | 1)) => queries.push(PanelQuery {
                    panel: title.clone(),
                    ref_id,
                    sql,
                    format,
                }),
                _ => problems.push(format!(
                    "panel `{title}` target {ref_id}: format must be 0 (time series) or 1 (table)"
                )),
            }
        }
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn word_len(text: &str) -> usize {
    text.find(|c: char| !is_word(c)).unwrap_or(text.len())
}

fn format_value(name: &str, value: &Selected, format: Option<&str>) -> Result<String, String> {
    let quote = |v: &String| format!("'{}'", v.replace('\'', "\\'"));
    match (format, value) {
        (None, Selected::One(v)) => Ok(v.clone()),
        (None, Selected::Many(vs)) => Ok(format!("'{}'", vs.join("','"))),
        (Some("singlequote"), Selected::One(v)) => Ok(quote(v)),
        (Some("singlequote"), Selected::Many(vs)) => {
            Ok(vs.iter().map(quote).collect::<Vec<_>>().join(","))
        }
        (Some(other), _) => Err(format!(
            "${{{name}:{other}}}: format not rendered by the tests"
        )),
    }
}

/// Step 1: template variables, as Grafana and the plugin's format function do.
pub fn interpolate(sql: &str, values: &BTreeMap<String, Selected>) -> Result<String, String> {
    let lookup = |name: &str| {
        values
            .get(name)
            .ok_or_else(|| format!("${name}: unknown variable"))
    };
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find(['$', '[']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(inner) = tail.strip_prefix("[[") {
            let len = word_len(inner);
            if len > 0 && (inner[len..].starts_with("]]") || inner[len..].starts_with(':')) {
                return Err(format!("[[{}]]: deprecated syntax", &inner[..len]));
            }
            out.push('[');
            rest = &tail[1..];
        } else if let Some(braced) = tail.strip_prefix("${") {
            let end = braced.find('}').ok_or_else(|| "unclosed ${".to_string())?;
            let (name, format) = match braced[..end].split_once(':') {
                Some((name, format)) => (name, Some(format)),
                None => (&braced[..end], None),
            };
            if name.starts_with("__") || name.is_empty() || word_len(name) != name.len() {
                return Err(format!("${{{}}}: not a dashboard variable", &braced[..end]));
            }
            out.push_str(&format_value(name, lookup(name)?, format)?);
            rest = &braced[end + 1..];
        } else if tail.starts_with('$') && word_len(&tail[1..]) > 0 {
            let name = &tail[1..1 + word_len(&tail[1..])];
            if name.starts_with("__") {
                // A macro: the backend expands it (step 2).
                out.push('$');
                out.push_str(name);
            } else {
                out.push_str(&format_value(name, lookup(name)?, None)?);
            }
            rest = &tail[1 + name.len()..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A bracketed argument list at the start of `text`: the trimmed arguments (split at
/// top-level commas) and the length consumed, closing bracket included.
fn parse_args(text: &str) -> Result<(Vec<String>, usize), String> {
    let mut depth = 0;
    let mut args = Vec::new();
    let mut start = 1;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    args.push(text[start..i].trim().to_string());
                    return Ok((args, i + 1));
                }
            }
            ',' if depth == 1 => {
                args.push(text[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    Err("macro arguments without a closing bracket".into())
}

fn expand(name: &str, args: Option<&[String]>, range: &TimeRange) -> Result<String, String> {
    let TimeRange {
        from,
        to,
        interval_s,
    } = *range;
    let column = || match args {
        Some([column]) if !column.is_empty() => Ok(column.clone()),
        _ => Err(format!("$__{name} takes one argument")),
    };
    let none = || match args {
        None => Ok(()),
        Some(_) => Err(format!("$__{name} takes no arguments")),
    };
    match name {
        "timeFilter" => {
            let c = column()?;
            Ok(format!(
                "{c} >= toDateTime({from}) AND {c} <= toDateTime({to})"
            ))
        }
        "fromTime" => none().map(|()| format!("toDateTime({from})")),
        "toTime" => none().map(|()| format!("toDateTime({to})")),
        "timeInterval" => Ok(format!(
            "toStartOfInterval(toDateTime({}), INTERVAL {} second)",
            column()?,
            interval_s.max(1)
        )),
        "interval_s" => none().map(|()| interval_s.max(1).to_string()),
        other => Err(format!("$__{other}: not a macro the tests render")),
    }
}

/// Step 2: the plugin backend's macros.
pub fn expand_macros(sql: &str, range: &TimeRange) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find("$__") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let name = &after[..word_len(after)];
        let mut tail = &after[name.len()..];
        let args = if tail.starts_with('(') {
            let (args, len) = parse_args(tail)?;
            tail = &tail[len..];
            Some(args)
        } else {
            None
        };
        out.push_str(&expand(name, args.as_deref(), range)?);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// Both steps: the SQL ClickHouse receives.
pub fn render(
    sql: &str,
    values: &BTreeMap<String, Selected>,
    range: &TimeRange,
) -> Result<String, String> {
    expand_macros(&interpolate(sql, values)?, range)
}
