//! Fetched files are checked against `assets.toml` on first use (issue 14, defect 7): a
//! bit-flipped data file is refused with the fix, a good one is cached by (size, mtime)
//! and not hashed again. One test: it points `$HYPER_DATA` at a temporary directory.

use std::time::{Duration, SystemTime};

use datasets::{assets, paths, uci};

#[test]
fn a_flipped_byte_is_refused_and_a_verified_file_is_cached_by_size_and_mtime() {
    let real = std::fs::read(paths::data_dir().join("sklearn/iris.csv"))
        .expect("run `cargo xtask fetch` first");
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("HYPER_DATA", dir.path());
    let iris = dir.path().join("sklearn/iris.csv");
    std::fs::create_dir_all(iris.parent().unwrap()).unwrap();
    let set_mtime = |secs: u64| {
        let f = std::fs::File::options().write(true).open(&iris).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    };

    let mut flipped = real.clone();
    flipped[200] ^= 0x02;
    std::fs::write(&iris, &flipped).unwrap();
    let err = uci::load_builtin("iris").unwrap_err().to_string();
    assert!(
        err.contains("sklearn/iris.csv")
            && err.contains("does not match assets.toml")
            && err.contains("cargo xtask fetch --force"),
        "{err}"
    );
    assert!(
        !dir.path().join(assets::CACHE_FILE).exists(),
        "a failure is never cached"
    );

    std::fs::write(&iris, &real).unwrap();
    set_mtime(1_000_000);
    assert_eq!(uci::load_builtin("iris").unwrap().n_rows(), 150);
    let cache = std::fs::read_to_string(dir.path().join(assets::CACHE_FILE)).unwrap();
    assert!(cache.contains("sklearn/iris.csv"), "{cache}");

    // Same size and mtime: the cache vouches for the file without hashing it (the cheap
    // check the issue asks for; `cargo xtask fetch` always hashes).
    std::fs::write(&iris, &flipped).unwrap();
    set_mtime(1_000_000);
    assets::verify_file(&iris).unwrap();

    // Any other mtime is a new version of the file: hashed again, refused again.
    set_mtime(2_000_000);
    assert!(assets::verify_file(&iris).is_err());
}
