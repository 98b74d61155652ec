//! `tether liveperson-key`: LivePerson's signing key, described for its console or generated.

use super::{EXIT_FATAL, EXIT_INVALID};
use crate::config;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn liveperson_key(
    config: Option<PathBuf>,
    key: Option<PathBuf>,
    generate: Option<PathBuf>,
) -> ExitCode {
    use crate::signing::keys;
    let path = match (config, key, generate) {
        (Some(config), _, _) => match config::load_file(&config) {
            Ok(config) => config.signing_key().1.to_path_buf(),
            Err(err) => {
                eprintln!("{err}");
                return ExitCode::from(EXIT_INVALID);
            }
        },
        (None, Some(key), _) => key,
        (None, None, Some(path)) => {
            if let Err(err) = keys::generate_pem().and_then(|pem| write_new_key(&path, &pem)) {
                eprintln!("cannot write {}: {err}", path.display());
                return ExitCode::from(EXIT_FATAL);
            }
            eprintln!("wrote a new signing key to {}", path.display());
            path
        }
        (None, None, None) => {
            eprintln!("expected --config PATH, --key PATH or --generate PATH");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let described = keys::load_signing_key(&path).and_then(|key| {
        Ok(format!(
            "kid: {}\npublic key (LivePerson console, \"JWT public key\"):\n{}",
            key.kid,
            keys::console_public_key(&key)?
        ))
    });
    match described {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// Creates `path` readable by its owner only; refuses to replace an existing key.
fn write_new_key(path: &std::path::Path, pem: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| e.to_string())?;
    file.write_all(pem.as_bytes()).map_err(|e| e.to_string())
}
