//! A missing data file says which file is expected where and how to get it. (Own test
//! binary: it changes the process environment.)

use datasets::uci::load_builtin;
use datasets::DataError;

#[test]
fn missing_files_say_where_they_are_expected() {
    let empty = std::env::temp_dir().join(format!("hyper-no-data-{}", std::process::id()));
    std::env::set_var("HYPER_DATA", &empty);
    std::env::set_var("HYPER_SHARED_DATA", &empty);

    let e = load_builtin("iris").unwrap_err();
    assert!(matches!(e, DataError::Unavailable { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("sklearn/iris.csv") && msg.contains("cargo xtask fetch"),
        "{msg}"
    );

    let msg = load_builtin("car_evaluation").unwrap_err().to_string();
    assert!(msg.contains("uci/car_evaluation/car.data"), "{msg}");
    assert!(
        msg.contains("HYPER_SHARED_DATA") && msg.contains("shared/data"),
        "{msg}"
    );
}
