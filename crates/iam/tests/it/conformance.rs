//! Runs every conformance file, unmodified, through the engine.

use std::path::{Path, PathBuf};

use portcullis_iam::suite::Suite;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The project's copy of the shared vectors (`tests/conformance/iam`).
fn vendored_dir() -> PathBuf {
    repo_root().join("tests/conformance/iam")
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_case_of_every_file_passes() {
    let files = json_files(&vendored_dir());
    assert_eq!(files.len(), 14, "expected the 14 conformance files");
    let (mut passed, mut failed) = (0, Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let suite = Suite::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for outcome in suite.run() {
            if outcome.passed() {
                passed += 1;
            } else {
                failed.push(format!(
                    "{} / {}: expected {}, got\n{}",
                    outcome.suite, outcome.case, outcome.expected, outcome.explanation
                ));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert_eq!(passed, 314, "expected 314 cases");
}

/// The vendored copy must stay byte-identical to the shared vectors when they are present.
#[test]
fn vendored_vectors_match_the_shared_ones() {
    let shared = repo_root().join("../shared/conformance/iam");
    if !shared.is_dir() {
        return; // a clone without the shared folder beside it: the vendored copy is all there is
    }
    let ours = json_files(&vendored_dir());
    let theirs = json_files(&shared);
    assert_eq!(
        ours.iter().map(|p| p.file_name()).collect::<Vec<_>>(),
        theirs.iter().map(|p| p.file_name()).collect::<Vec<_>>()
    );
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(
            std::fs::read(a).unwrap(),
            std::fs::read(b).unwrap(),
            "{} differs from the shared copy; copy it again",
            a.display()
        );
    }
}
