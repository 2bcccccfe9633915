//! The writer publishes its watermarks for followers in `<dir>/WATERMARKS`. What could go
//! wrong: the file cannot be created (here a directory squats its name) and the error is
//! dropped, so followers wait for ever on a writer that looks healthy.

use tidelog::forward::WATERMARKS_FILE;
use tidelog::{Engine, Options};

#[test]
fn a_watermark_file_that_cannot_be_created_is_reported_and_appends_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    assert!(
        engine.publication_failure().is_none(),
        "a healthy writer publishes"
    );
    engine.close().unwrap();
    drop(engine);
    let path = dir.path().join(WATERMARKS_FILE);
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir_all(path.join("squatter")).unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    assert!(
        engine.publication_failure().is_some(),
        "the failure to publish must be reported"
    );
    engine.append_durable(1, b"still written".to_vec()).unwrap();
    engine.close().unwrap();
}
