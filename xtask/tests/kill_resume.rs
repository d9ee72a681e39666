//! `kill -9` during `cargo xtask pretrain tabular` (issue 14): a tiny config is killed four
//! times at seeded random moments mid-training, resuming each time, then run to the end. After every
//! kill each checkpoint present must load (no partial file is ever visible), and the
//! finished run must be bit-identical to an uninterrupted one.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TINY: &str = r#"datasets = ["iris", "wine"]

[architecture.model]
hidden = [8]

[architecture.generator]
hidden_dim = 16
latent_dim = 4

[train]
epochs = 40
batch_size = 16
requirements_per_task = 2
seed = 7
n_local_updates = { iris = 2 }
"#;

fn pretrain(config: &Path, out: &Path, resume: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(["pretrain", "tabular", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if resume {
        c.arg("--resume");
    }
    c
}

/// The epoch `out/last` records (0 before the first checkpoint).
fn epoch(out: &Path) -> i64 {
    std::fs::read_to_string(out.join("last.toml"))
        .ok()
        .and_then(|s| s.parse::<toml::Table>().ok())
        .and_then(|t| t.get("state")?.get("epoch")?.as_integer())
        .unwrap_or(0)
}

/// Every checkpoint whose header exists loads, with its hash verified.
fn assert_loadable(out: &Path, after: &str) {
    for stem in ["last", "best"] {
        let stem = out.join(stem);
        if stem.with_extension("toml").exists() {
            hyper_core::checkpoint::load(&stem, "tabular-generator", &candle_core::Device::Cpu)
                .unwrap_or_else(|e| panic!("{after}: {} does not load: {e:#}", stem.display()));
        }
    }
}

#[test]
fn killed_pretraining_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();

    let whole = dir.path().join("whole");
    let t0 = Instant::now();
    let o = pretrain(&config, &whole, false).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let full_ms = t0.elapsed().as_millis();

    // Four kills, each at a seeded random moment after the run's next checkpoint appears
    // (so every kill lands mid-training, some during a save), then a run to the end.
    let cut = dir.path().join("cut");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let (mut kills, mut runs, mut seen) = (0, 0, 0);
    loop {
        runs += 1;
        assert!(runs <= 10, "did not finish within 10 runs");
        let resume = cut.join("last.toml").exists();
        let mut child = pretrain(&config, &cut, resume).spawn().unwrap();
        if kills < 4 {
            while epoch(&cut) <= seen && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(2));
            }
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            std::thread::sleep(Duration::from_millis((state >> 33) % 40));
        }
        let status = match (kills < 4, child.try_wait().unwrap()) {
            (_, Some(status)) => status,
            (true, None) => {
                child.kill().unwrap(); // SIGKILL on Unix
                child.wait().unwrap();
                kills += 1;
                assert_loadable(&cut, &format!("kill {kills}"));
                seen = epoch(&cut);
                continue;
            }
            (false, None) => child.wait().unwrap(),
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(status.success(), "run {runs}: {err}");
        break;
    }
    for f in ["last.safetensors", "best.safetensors"] {
        let (a, b) = (
            std::fs::read(whole.join(f)).unwrap(),
            std::fs::read(cut.join(f)).unwrap(),
        );
        assert!(a == b, "{f} differs after {kills} kills ({runs} runs)");
    }
    println!("{kills} kills over {runs} runs; uninterrupted run {full_ms} ms");
}
