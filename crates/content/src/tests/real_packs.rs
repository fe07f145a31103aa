//! The packs shipped in the repository must load cleanly.

use super::*;

#[test]
fn shipped_packs_load_without_errors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let packs = root.join("packs");
    let report = load_packs(&LoadOptions {
        packs_paths: vec![packs.clone()],
        configs_dir: root.join("conf/configs"),
    });
    assert!(report.errors.is_empty(), "{:#?}", messages(&report));
    assert!(report.failed_packs.is_empty());
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    // Each shipped pack directory must have been picked up.
    for name in ["core", "examples", "openstack"] {
        if packs.join(name).join("pack.yaml").is_file() {
            assert!(
                report.packs.iter().any(|p| p.pack.path.ends_with(name)),
                "pack {name} not loaded"
            );
        }
    }
}
