//! Every backend's migrations carry the same version numbers and names, so
//! a schema version means the same thing on every database.

use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn migrations_have_the_same_versions_and_names_in_every_backend() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut sets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for backend in std::fs::read_dir(&root).unwrap() {
        let backend = backend.unwrap();
        let mut names: Vec<String> = std::fs::read_dir(backend.path())
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in &names {
            let (version, rest) = n.split_once('_').unwrap_or_else(|| panic!("{n}: want NNNN_name.sql"));
            assert!(
                version.len() == 4 && version.bytes().all(|b| b.is_ascii_digit()),
                "{n}: version"
            );
            assert!(rest.ends_with(".sql"), "{n}");
        }
        sets.insert(backend.file_name().to_string_lossy().into_owned(), names);
    }
    let backends: Vec<&String> = sets.keys().collect();
    assert_eq!(backends, ["mysql", "oracle", "postgres", "sqlite"]);
    let first = sets.values().next().unwrap();
    for (backend, names) in &sets {
        assert_eq!(names, first, "{backend} differs from {}", backends[0]);
    }
}

#[test]
fn backend_crates_embed_their_own_migrations() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for backend in ["sqlite", "mysql", "postgres", "oracle"] {
        let link = crates.join(format!("wetoken-store-{backend}/migrations"));
        let target = std::fs::read_link(&link).unwrap_or_else(|_| panic!("{} is a symlink", link.display()));
        assert_eq!(target, Path::new("../../migrations").join(backend));
    }
}
