//! Inputs the fuzz targets (`fuzz/`, see docs/TESTING.md) found failing,
//! replayed as plain tests, minimized.

use std::sync::Arc;

use kvgit_core::{MemoryBackend, Repo, RepoOptions};

fn repo_with_cache(cache_bytes: usize) -> Repo {
    Repo::new(
        Arc::new(MemoryBackend::new()),
        RepoOptions {
            cache_bytes,
            ..RepoOptions::default()
        },
    )
}

/// `tree_model` (crash-1e244284): with a cache too small to keep them,
/// `apply` re-read the nodes it had just built (collapsing a root with a
/// single child) before handing them to the backend, and failed with
/// `MissingObject`. Fixed: pending nodes are written before the collapse.
/// Seen with budgets up to 64 KiB, e.g. 100 puts into an empty tree with
/// no cache, or 1,000 with 64 KiB.
#[test]
fn apply_with_a_tiny_cache() {
    for (cache, n) in [(0usize, 100u32), (1 << 10, 339), (64 << 10, 1000)] {
        let repo = repo_with_cache(cache);
        let empty = repo.empty_tree().expect("empty");
        let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
            .map(|i| (format!("k{:04}", 3065 + i).into_bytes(), vec![0xff; 255]))
            .collect();
        let edits = entries.iter().map(|(k, v)| (k.clone(), Some(v.clone())));
        let tree = repo
            .apply(&empty, edits)
            .unwrap_or_else(|e| panic!("cache {cache} B, {n} puts: {e}"));
        assert_eq!(tree, repo.build_tree(entries).expect("build"));
    }
}
