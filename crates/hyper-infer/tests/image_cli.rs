//! Image models through the real binary with the committed CV generator
//! (checkpoints/cv/best and its backbone): `generate --image-set|--images` writes a PEFT
//! adapter directory, `eval` scores it, `predict` labels a folder; bad image folders are
//! clear errors naming the file; a folder of mixed sizes loads at its most common size.

use std::path::Path;
use std::process::Command;

use test_support::run_command as run;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hyper-infer"))
}

fn top1(out: &str) -> f64 {
    out.split("top-1 ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no top-1 in {out}"))
}

/// Grey `size×size` PNG with a bright square whose position depends on `class`.
fn write_png(path: &Path, size: u32, class: u32, k: u32) {
    let img = image::GrayImage::from_fn(size, size, |x, y| {
        let on = (x / (size / 2) + 2 * (y / (size / 2))) == class % 4;
        image::Luma([if on {
            200 + (k % 50) as u8
        } else {
            (k * 7 % 30) as u8
        }])
    });
    img.save(path).unwrap();
}

fn class_folders(root: &Path, classes: u32, per_class: u32, size: u32) {
    for c in 0..classes {
        let d = root.join(format!("c{c}"));
        std::fs::create_dir_all(&d).unwrap();
        for k in 0..per_class {
            write_png(&d.join(format!("{k}.png")), size, c, k);
        }
    }
}

#[test]
fn image_set_generate_eval_predict() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mnist");
    let (ok, s) = run(bin()
        .args(["generate", "--image-set", "mnist5k", "--out"])
        .arg(&out));
    assert!(ok, "{s}");
    assert!(
        s.contains("requirement: ") && s.contains("\"task\":\"img_cls\""),
        "{s}"
    );
    assert!(
        s.contains("note: the Model Generator asked for resnet50"),
        "{s}"
    );
    for f in [
        "adapter_config.json",
        "adapter_model.safetensors",
        "model.json",
        "requirement.txt",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(cfg["modules_to_save"][0], "fc");
    let (ok, s) = run(bin()
        .args(["eval", "--image-set", "mnist5k", "--model"])
        .arg(&out));
    assert!(ok, "{s}");
    // 1,000 test digits, ten classes: chance is 10%.
    assert!(top1(&s) > 0.5, "{s}");
    // predict: a flat folder of images → one CSV row each.
    let imgs = dir.path().join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    for k in 0..3 {
        write_png(&imgs.join(format!("{k}.png")), 28, k, k);
    }
    let csv = dir.path().join("pred.csv");
    let (ok, s) = run(bin()
        .args(["predict", "--model"])
        .arg(&out)
        .arg("--images")
        .arg(&imgs)
        .arg("--out")
        .arg(&csv));
    assert!(ok, "{s}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("file,prediction,confidence,p_0,"),
        "{text}"
    );
    let probs: f64 = lines[1]
        .split(',')
        .skip(3)
        .map(|v| v.parse::<f64>().unwrap())
        .sum();
    assert!((probs - 1.0).abs() < 1e-3, "{text}");
    // An image model scored as a table is refused with the reason.
    let (ok, s) = run(bin()
        .args(["eval", "--dataset", "iris", "--model"])
        .arg(&out));
    assert!(!ok && s.contains("image model"), "{s}");
}

#[test]
fn class_folder_generate_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    class_folders(&data, 3, 4, 16);
    let out = dir.path().join("model");
    let (ok, s) = run(bin()
        .args([
            "generate",
            "--description",
            "bright squares",
            "--finetune-epochs",
            "1",
        ])
        .arg("--images")
        .arg(&data)
        .arg("--out")
        .arg(&out));
    assert!(ok, "{s}");
    assert!(
        s.contains("16×16 RGB images") && s.contains("classes: c0, c1, c2"),
        "{s}"
    );
    let (ok, s) = run(bin()
        .arg("eval")
        .arg("--images")
        .arg(&data)
        .arg("--model")
        .arg(&out));
    assert!(ok, "{s}");
    assert!(s.contains("(12 images of"), "{s}");
    // Other classes than the model's: refused, naming both.
    let other = dir.path().join("other");
    class_folders(&other, 2, 2, 16);
    let (ok, s) = run(bin()
        .arg("eval")
        .arg("--images")
        .arg(&other)
        .arg("--model")
        .arg(&out));
    assert!(
        !ok && s.contains("[c0, c1]") && s.contains("[c0, c1, c2]"),
        "{s}"
    );
}

/// A label set the generator never saw, at 0 epochs: the `fc` is fitted on the training
/// split's features (recorded in model.json), and the held-out test split scores far above
/// chance (1/3).
#[test]
fn an_unseen_label_set_gets_a_fitted_head() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("quadrants");
    class_folders(&data, 3, 30, 16);
    let out = dir.path().join("model");
    let (ok, s) = run(bin()
        .args(["generate", "--seed", "1", "--images"])
        .arg(&data)
        .arg("--out")
        .arg(&out));
    assert!(ok, "{s}");
    assert!(
        s.contains("head: fitted on the training images' features"),
        "{s}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("model.json")).unwrap()).unwrap();
    assert_eq!(info["head"]["kind"], "fitted", "{info}");
    assert!(
        info["head"]["support_rows"].as_u64().unwrap() <= 54,
        "{info}"
    );
    let (ok, s) = run(bin()
        .args(["eval", "--split", "test", "--images"])
        .arg(&data)
        .arg("--model")
        .arg(&out));
    assert!(ok, "{s}");
    assert!(s.contains("(27 images of"), "{s}");
    assert!(top1(&s) >= 0.9, "{s}");
}

#[test]
fn bad_image_folders_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let gen = |data: &Path| {
        run(bin()
            .args(["generate", "--images"])
            .arg(data)
            .arg("--out")
            .arg(dir.path().join("never")))
    };
    // A corrupt image.
    let corrupt = dir.path().join("corrupt");
    class_folders(&corrupt, 2, 2, 8);
    std::fs::write(corrupt.join("c1/1.png"), b"not a png at all").unwrap();
    let (ok, s) = gen(&corrupt);
    assert!(
        !ok && s.contains("c1/1.png") && s.contains("cannot decode"),
        "{s}"
    );
    // An empty class folder.
    let empty = dir.path().join("empty");
    class_folders(&empty, 2, 2, 8);
    std::fs::create_dir_all(empty.join("c2")).unwrap();
    let (ok, s) = gen(&empty);
    assert!(
        !ok && s.contains("c2") && s.contains("no .jpg/.jpeg/.png"),
        "{s}"
    );
    // Mixed sizes are not an error: the odd image is resized to the most common size.
    let mixed = dir.path().join("mixed");
    class_folders(&mixed, 2, 2, 8);
    write_png(&mixed.join("c1/9.png"), 12, 1, 9);
    let (ok, s) = run(bin()
        .args(["generate", "--images"])
        .arg(&mixed)
        .arg("--out")
        .arg(dir.path().join("mixed-model")));
    assert!(ok && s.contains("over 8×8 RGB images"), "{s}");
    // One class only.
    let one = dir.path().join("one");
    class_folders(&one, 1, 2, 8);
    let (ok, s) = gen(&one);
    assert!(!ok && s.contains("only one class folder"), "{s}");
    assert!(!dir.path().join("never").exists());
}
