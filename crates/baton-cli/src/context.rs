//! Finding the coordinator: `--url`/`BATON_URL` and `--token`/`BATON_TOKEN`, or
//! else the `url` and `token` files that `baton up` wrote into its data directory
//! (`.baton/` of this repository, found by walking up from here).

use std::path::{Path, PathBuf};

use baton_client::Client;

use crate::error::CliError;

/// The data directory's name inside a repository.
pub const DATA_DIR_NAME: &str = ".baton";

/// The data directory of the nearest enclosing repository that has a running
/// `baton up`, walking up from `start`.
pub fn find_data_dir(start: &Path) -> Option<PathBuf> {
    start.ancestors().map(|d| d.join(DATA_DIR_NAME)).find(|d| d.join("url").is_file())
}

/// A client of the coordinator for this command.
pub fn client(url: Option<&str>, token: Option<&str>) -> Result<Client, CliError> {
    let found =
        find_data_dir(&std::env::current_dir().map_err(|e| CliError::io("cannot read the current directory", e))?);
    let url = match url {
        Some(u) => u.to_owned(),
        None => match &found {
            Some(dir) => read_trimmed(&dir.join("url"))?,
            None => {
                return Err(CliError::NoCoordinator);
            }
        },
    };
    let token = match token {
        Some(t) => Some(t.to_owned()),
        None => match &found {
            Some(dir) if dir.join("token").is_file() => Some(read_trimmed(&dir.join("token"))?),
            _ => None,
        },
    };
    // A coordinator whose certificate a private CA signed.
    let ca = std::env::var_os("BATON_CA").map(PathBuf::from);
    Ok(Client::with_ca(&url, token, ca.as_deref())?)
}

fn read_trimmed(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| CliError::io(format!("cannot read {}", path.display()), e))
}

/// Reads `text`, or stdin when it is `-`.
pub fn text_or_stdin(text: &str) -> Result<String, CliError> {
    if text != "-" {
        return Ok(text.to_owned());
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| CliError::io("cannot read stdin", e))?;
    Ok(s)
}
