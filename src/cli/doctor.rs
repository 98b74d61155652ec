//! `tether doctor --config PATH`: `check`, then the online checks (`crate::doctor`), one line
//! each. Exit 0 all good, 1 a check failed, 2 the configuration is invalid.

use super::{current_thread_runtime, serve, EXIT_FATAL, EXIT_INVALID};
use crate::config;
use std::path::Path;
use std::process::ExitCode;

pub fn main(path: &Path) -> ExitCode {
    let config = match config::load_file(path)
        .and_then(|config| serve::check_named_files(&config).map(|()| config))
    {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    println!("ok    config: {}", path.display());
    let runtime = match current_thread_runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let findings = runtime.block_on(crate::doctor::examine(&config));
    let mut failed = 0;
    for finding in &findings {
        match &finding.outcome {
            Ok(seen) if seen.is_empty() => println!("ok    {}", finding.name),
            Ok(seen) => println!("ok    {}: {seen}", finding.name),
            Err(why) => {
                failed += 1;
                println!("FAIL  {}: {why}", finding.name);
                if let Some(remedy) = &finding.remedy {
                    println!("      -> {remedy}");
                }
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{failed} of {} checks failed", findings.len() + 1);
        ExitCode::from(EXIT_FATAL)
    }
}
