//! `cargo xtask datasets`: one aligned row per dataset, unavailable ones with the reason.

use anyhow::Result;
use datasets::catalog::{self, DatasetInfo};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

const HEADER: [&str; 6] = [
    "dataset", "modality", "rows", "features", "classes", "source",
];

fn row(d: &DatasetInfo) -> [String; 6] {
    [
        d.name.clone(),
        d.modality.to_string(),
        d.rows.to_string(),
        d.features.to_string(),
        d.classes
            .map_or_else(|| "regression".to_string(), |c| c.to_string()),
        d.source.clone(),
    ]
}

/// Renders the table: columns padded to their widest cell (counted in chars, since `×`
/// is multi-byte), numbers right-aligned, unavailable entries after the available ones.
pub fn render(entries: &[Result<DatasetInfo, catalog::Unavailable>]) -> String {
    let rows: Vec<[String; 6]> = entries
        .iter()
        .filter_map(|e| e.as_ref().ok())
        .map(row)
        .collect();
    let mut width = HEADER.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let right = [false, false, true, true, true, false];
    let line = |cells: &[String; 6]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            if i > 0 {
                s.push_str("  ");
            }
            if right[i] {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else if i + 1 < cells.len() {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(c);
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&HEADER.map(String::from));
    for r in &rows {
        out.push_str(&line(r));
    }
    let missing: Vec<_> = entries.iter().filter_map(|e| e.as_ref().err()).collect();
    out.push_str(&format!(
        "\n{} datasets available, {} unavailable\n",
        rows.len(),
        missing.len()
    ));
    if !missing.is_empty() {
        out.push_str("\nunavailable:\n");
        let w = missing
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        for (name, reason) in missing {
            let pad = w - name.chars().count();
            out.push_str(&format!("  {name}{}  {reason}\n", " ".repeat(pad)));
        }
    }
    out
}

/// `<workspace>/../shared/data/x` → `/work/shared/data/x`: loaders report the configured,
/// possibly relative, roots; the listing shows where the files really are.
fn tidy_paths(entries: &mut [Result<DatasetInfo, catalog::Unavailable>]) {
    let roots: Vec<(String, String)> = [
        datasets::paths::data_dir(),
        datasets::paths::shared_data_dir(),
    ]
    .into_iter()
    .filter_map(|r| {
        let canon = r.canonicalize().ok()?;
        Some((r.display().to_string(), canon.display().to_string()))
    })
    .filter(|(raw, canon)| raw != canon)
    .collect();
    for e in entries.iter_mut() {
        let text = match e {
            Ok(d) => &mut d.source,
            Err((_, reason)) => reason,
        };
        for (raw, canon) in &roots {
            *text = text.replace(raw.as_str(), canon);
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let mut entries = catalog::list_all();
    tidy_paths(&mut entries);
    if args.json {
        for e in &entries {
            let v = match e {
                Ok(d) => serde_json::to_value(d)?,
                Err((name, reason)) => {
                    serde_json::json!({ "name": name, "unavailable": reason })
                }
            };
            println!("{v}");
        }
    } else {
        print!("{}", render(&entries));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datasets::catalog::{Features, Modality, Rows};

    #[test]
    fn aligned_rows_and_unavailable_reasons() {
        let entries = vec![
            Ok(DatasetInfo {
                name: "Iris".into(),
                modality: Modality::Tabular,
                rows: Rows::All(150),
                features: Features::Columns(4),
                classes: Some(3),
                source: "data/sklearn/iris.csv".into(),
            }),
            Ok(DatasetInfo {
                name: "STS-B".into(),
                modality: Modality::Text,
                rows: Rows::Split {
                    train: 5749,
                    eval: 1500,
                    eval_name: "dev",
                },
                features: Features::Text { segments: 2 },
                classes: None,
                source: "glue/STS-B".into(),
            }),
            Err(("Office-31".into(), "not obtainable here".into())),
        ];
        let out = render(&entries);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("dataset"));
        // Every table line has its `source` column starting at the same char offset.
        let col = |l: &str, pat: &str| l.find(pat).map(|b| l[..b].chars().count());
        assert_eq!(col(lines[1], "data/"), col(lines[2], "glue/"));
        assert_eq!(col(lines[0], "source"), col(lines[1], "data/"));
        assert!(lines[1].contains("150") && lines[1].contains(" 3 "));
        assert!(lines[2].contains("5,749/1,500 (train/dev)") && lines[2].contains("regression"));
        assert!(out.contains("2 datasets available, 1 unavailable"));
        assert!(out.contains("Office-31  not obtainable here"));
    }
}
