//! What every `reproduce` of a LoRA experiment (NLP, CV) records beside its table: the
//! command, machine, versions, config and checkpoint, and how results/<stem>.{json,md}
//! are written.

use std::path::Path;

use anyhow::Result;
use hyper_core::checkpoint::CheckpointHeader;
use hyper_core::io::atomic_write;

/// The provenance fields of a results JSON (`report` and extras are added by the caller).
pub fn provenance(
    command: &str,
    config_arg: Option<&Path>,
    config: &Path,
    checkpoint: &Path,
    header: &CheckpointHeader,
    machine: String,
    wall_secs: f64,
) -> serde_json::Map<String, serde_json::Value> {
    let root = crate::pretrain::root();
    let rel = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
    let state = |k: &str| header.state.get(k);
    let json = serde_json::json!({
        "command": crate::reproduce::command_line(command, config_arg),
        "machine": machine,
        "candle_version": crate::seeds::candle_version(),
        "git_commit": crate::seeds::git_commit(),
        "config": rel(config),
        "checkpoint": rel(checkpoint),
        "checkpoint_step": state("step").and_then(|v| v.as_integer()).unwrap_or(0),
        "meta_grad": state("meta_grad").and_then(|v| v.as_str()).unwrap_or("?"),
        "wall_secs": wall_secs,
    });
    match json {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

/// `# <title> results (`command`)` and the provenance line under it.
pub fn markdown_header(title: &str, j: &serde_json::Value) -> String {
    let s = |k: &str| j[k].as_str().unwrap_or("").to_string();
    format!(
        "# {title} results (`{}`)\n\nConfig `{}`, checkpoint `{}` (step {}, meta-grad {}); machine: {}; candle {}; commit {}; this run took {:.0} s.\n\n",
        s("command"),
        s("config"),
        s("checkpoint"),
        j["checkpoint_step"],
        s("meta_grad"),
        s("machine"),
        s("candle_version"),
        s("git_commit"),
        j["wall_secs"].as_f64().unwrap_or(0.0)
    )
}

/// Prints the table and writes results/<stem>.json and results/<stem>.md atomically.
pub fn write(stem: &str, report: &impl serde::Serialize, md: &str) -> Result<()> {
    println!("{md}");
    let res = crate::pretrain::root().join("results");
    std::fs::create_dir_all(&res)?;
    atomic_write(
        &res.join(format!("{stem}.json")),
        serde_json::to_string_pretty(report)?.as_bytes(),
    )?;
    atomic_write(&res.join(format!("{stem}.md")), md.as_bytes())?;
    eprintln!("wrote results/{stem}.json and results/{stem}.md");
    Ok(())
}

/// One table row: method, its score cells, the average, #epoch, and (for timed methods,
/// not the majority baseline or the control) E2E seconds and Finetune's E2E ÷ its E2E.
pub fn method_row(
    method: &str,
    cells: &[String],
    average: String,
    epochs: usize,
    e2e_secs: f64,
    finetune_e2e: f64,
) -> String {
    let timed = !method.starts_with("Majority") && !method.starts_with("Control");
    let (e2e, eff) = if timed {
        (
            format!("{e2e_secs:.1}"),
            format!("{:.1}x", finetune_e2e / e2e_secs),
        )
    } else {
        (String::new(), String::new())
    };
    format!(
        "| {method} | {} | {average} | {epochs} | {e2e} | {eff} |\n",
        cells.join(" | ")
    )
}
