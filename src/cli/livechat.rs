//! `tether livechat authorize`: the agent's refresh token, from LiveChat's authorization-code
//! grant, kept in the store where `tether run` finds it.

use super::{current_thread_runtime, EXIT_FATAL, EXIT_INVALID};
use crate::config::{self, Config, Grant};
use crate::store_commands::{CommandError, NamedValues};
use crate::vendors::livechat::authorize::{self, AuthorizeError, Loopback};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// How long the Owner has to sign in and consent.
const CONSENT_WAIT: Duration = Duration::from_secs(600);

#[derive(Subcommand)]
pub enum LiveChatCommand {
    /// Connect LiveChat: the authorization-code grant of the server-side app. Prints the URL an
    /// Owner or Admin opens, receives the code on livechat.authorize_redirect_uri (or takes
    /// --code), and keeps the agent's refresh token in the store for `tether run`.
    Authorize {
        #[arg(long, short, value_name = "PATH")]
        config: PathBuf,
        /// The code from LiveChat's redirect, when it went to a page that is not this machine.
        #[arg(long, value_name = "CODE")]
        code: Option<String>,
    },
}

pub fn main(command: LiveChatCommand) -> ExitCode {
    let LiveChatCommand::Authorize { config, code } = command;
    let config = match load(&config) {
        Ok(config) => config,
        Err(why) => {
            eprintln!("{why}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let runtime = match current_thread_runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(authorize(&config, code)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid(why)) => {
            eprintln!("{why}");
            ExitCode::from(EXIT_INVALID)
        }
        Err(Failure::Fatal(why)) => {
            eprintln!("{why}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

enum Failure {
    Invalid(String),
    Fatal(String),
}

impl From<CommandError> for Failure {
    fn from(err: CommandError) -> Self {
        match err {
            CommandError::Invalid(why) => Self::Invalid(why),
            CommandError::Failed(why) => Self::Fatal(why),
        }
    }
}

impl From<AuthorizeError> for Failure {
    fn from(err: AuthorizeError) -> Self {
        Self::Fatal(err.to_string())
    }
}

fn load(path: &Path) -> Result<Config, String> {
    let config = config::load_file(path).map_err(|err| err.to_string())?;
    if !config.livechat.enabled {
        return Err(format!("{}: [livechat] is not enabled", path.display()));
    }
    if let Grant::Cookie { .. } = config.livechat.grant() {
        return Err(format!(
            "{}: livechat.grant = \"cookie\" needs no agent token; authorize is for the \
             agent_token grant",
            path.display()
        ));
    }
    Ok(config)
}

async fn authorize(config: &Config, code: Option<String>) -> Result<(), Failure> {
    let livechat = &config.livechat;
    // Find the store first: a code is good for minutes, and once.
    let values = NamedValues::open(config).await?;
    let code = match code {
        Some(code) => code,
        None => match receive_code(config).await? {
            Some(code) => code,
            None => return Ok(()),
        },
    };
    let (granted, scopes) = authorize::exchange(livechat, &code).await?;
    let kept = match &values {
        NamedValues::Store(store) => authorize::keep_authorized(
            store,
            &livechat.refresh_token,
            granted,
            livechat.request_timeout * 2,
        )
        .await
        .map_err(|err| Failure::Fatal(format!("keeping the grant in the store: {err}"))),
        NamedValues::Running(_) => {
            let previous = values.value(authorize::STATE_KEY).await?;
            let state =
                authorize::authorized_state(previous.as_deref(), &livechat.refresh_token, granted)
                    .map_err(|why| Failure::Fatal(why.to_string()))?;
            Ok(values.set_value(authorize::STATE_KEY, state).await?)
        }
    };
    kept?;
    println!("LiveChat authorized Tether; scopes granted: {}", scopes.0);
    let missing: Vec<&str> = ["customers:own"]
        .into_iter()
        .chain(livechat.sync_customer_profile.then_some("customers:rw"))
        .filter(|scope| !scopes.has(scope))
        .collect();
    if !missing.is_empty() {
        return Err(Failure::Fatal(format!(
            "the grant lacks {}: add {} to the app (Developer Console, your app, Authorization, \
             Scopes), then run this again",
            missing.join(" and "),
            if missing.len() > 1 { "them" } else { "it" }
        )));
    }
    println!("The agent's refresh token is in the store; `tether run` uses it from now on.");
    Ok(())
}

/// Prints the consent URL and waits for LiveChat's redirect on this machine; None when the
/// redirect URI is elsewhere (the operator then runs again with --code).
async fn receive_code(config: &Config) -> Result<Option<String>, Failure> {
    let livechat = &config.livechat;
    let state = crate::signing::base64url::b64(&crate::random::bytes::<16>());
    let url = authorize::consent_url(livechat, &state);
    let Some(loopback) = Loopback::bind(&livechat.authorize_redirect_uri).await? else {
        println!("{url}");
        eprintln!(
            "Open that URL as the LiveChat Owner or an Admin and allow access. LiveChat then \
             sends the browser to {} with ?code=...; run this again with --code CODE within a \
             few minutes.",
            livechat.authorize_redirect_uri
        );
        return Ok(None);
    };
    println!("{url}");
    eprintln!(
        "Open that URL as the LiveChat Owner or an Admin and allow access; waiting for LiveChat \
         at {} (10 minutes)...",
        livechat.authorize_redirect_uri
    );
    match tokio::time::timeout(CONSENT_WAIT, loopback.receive(&state)).await {
        Ok(code) => Ok(Some(code?)),
        Err(_) => Err(Failure::Fatal(
            "no answer from LiveChat within 10 minutes; run this again".into(),
        )),
    }
}
