//! `evaluator check`: load standalone YAML and print what would run.

use model::standalone::Catalog;
use std::path::Path;
use std::process::ExitCode;

pub fn run(path: &Path) -> ExitCode {
    let catalog = Catalog::load(path);
    print!("{}", render(&catalog));
    for error in &catalog.errors {
        eprintln!("error: {error}");
    }
    if catalog.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{} invalid document(s); the others loaded",
            catalog.errors.len()
        );
        ExitCode::FAILURE
    }
}

/// The sources and rules of a catalog as two aligned tables.
fn render(catalog: &Catalog) -> String {
    let mut sources = vec![row(["TENANT", "SOURCE", "WRITE KEYS", "RETENTION", "PLAN"])];
    for s in &catalog.sources {
        let plan = s
            .spec
            .tracking_plan
            .as_ref()
            .map_or("-".to_string(), |p| format!("{:?}", p.mode));
        sources.push(row([
            &s.tenant,
            &s.name,
            &s.spec.write_keys.len().to_string(),
            &format!("{}d", s.spec.retention_days),
            &plan,
        ]));
    }
    let mut rules = vec![row([
        "TENANT",
        "RULE",
        "SOURCE",
        "AGGREGATE",
        "WINDOW",
        "GROUP BY",
        "TRIGGER",
        "WEBHOOK",
    ])];
    for r in &catalog.rules {
        let c = &r.compiled;
        let aggregate = match &c.field {
            Some(field) => format!("{}({field})", c.function.as_str()),
            None => format!("{}()", c.function.as_str()),
        };
        rules.push(row([
            &c.tenant,
            &c.name,
            c.source.as_deref().unwrap_or("*"),
            &aggregate,
            &humantime::format_duration(c.window).to_string(),
            r.spec.group_by.as_deref().unwrap_or("-"),
            &format!("{} {}", c.comparator.symbol(), c.threshold),
            c.webhook.as_ref().map_or("-", |w| w.url.as_str()),
        ]));
    }
    format!(
        "{} source(s)\n{}\n{} rule(s)\n{}",
        catalog.sources.len(),
        table(&sources),
        catalog.rules.len(),
        table(&rules)
    )
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_examples_as_tables() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let text = render(&Catalog::load(&examples));
        assert!(
            text.starts_with("2 source(s)\nTENANT  SOURCE  WRITE KEYS"),
            "{text}"
        );
        let line = text
            .lines()
            .find(|l| l.contains("big-spenders"))
            .expect("big-spenders row");
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cells[..7],
            [
                "acme",
                "big-spenders",
                "web",
                "sum(value)",
                "7days",
                "account",
                ">"
            ]
        );
    }
}
