//! Remotes configured in a store: name -> URL, kept in the store's
//! metadata under `remote/<name>/url`.

use kvgit_core::refs;
use kvgit_core::Repo;

use crate::error::{Error, Result};

fn url_key(name: &str) -> Vec<u8> {
    format!("remote/{name}/url").into_bytes()
}

/// Adds remote `name` at `url` (replacing its URL if it exists). The URL
/// must parse ([`crate::RemoteUrl`]).
pub fn add_remote(repo: &Repo, name: &str, url: &str) -> Result<()> {
    refs::validate_remote_name(name)?;
    url.parse::<crate::RemoteUrl>()?;
    repo.backend()
        .put_meta(vec![(url_key(name), Some(url.as_bytes().to_vec()))])?;
    Ok(())
}

/// The URL of remote `name`.
pub fn remote_url(repo: &Repo, name: &str) -> Result<String> {
    refs::validate_remote_name(name)?;
    let bytes = repo
        .backend()
        .get_meta(&url_key(name))?
        .ok_or_else(|| Error::UnknownRemote(name.to_string()))?;
    String::from_utf8(bytes).map_err(|_| {
        Error::Core(kvgit_core::Error::Storage(format!(
            "the URL of remote {name:?} is not UTF-8"
        )))
    })
}

/// The configured remotes, `(name, url)`, sorted by name.
pub fn list_remotes(repo: &Repo) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (key, value) in repo.backend().scan_meta(b"remote/")? {
        let key = String::from_utf8_lossy(&key).into_owned();
        if let Some(name) = key
            .strip_prefix("remote/")
            .and_then(|k| k.strip_suffix("/url"))
        {
            if !name.contains('/') {
                out.push((
                    name.to_string(),
                    String::from_utf8_lossy(&value).into_owned(),
                ));
            }
        }
    }
    Ok(out)
}

/// Removes remote `name` and its remote-tracking refs.
pub fn remove_remote(repo: &Repo, name: &str) -> Result<()> {
    remote_url(repo, name)?;
    let prefix = format!("{}{name}/", refs::REMOTES);
    for (branch, id) in repo.list_refs(&prefix)? {
        repo.delete_ref(&format!("{prefix}{branch}"), Some(&id))?;
    }
    repo.backend().put_meta(vec![(url_key(name), None)])?;
    Ok(())
}
