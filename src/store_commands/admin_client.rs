//! Asking the running Tether that holds the embedded store, through its admin listener.

use super::CommandError;
use crate::config::Config;
use crate::redact::Secret;
use crate::store::Row;
use tokio::sync::mpsc;

pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl AdminClient {
    pub fn new(config: &Config) -> Result<Self, CommandError> {
        let in_use = format!(
            "{} is held by a running Tether",
            config.store.path.display()
        );
        let Some(listen) = config.server.admin_listen else {
            return Err(CommandError::Invalid(format!(
                "{in_use}, and it has no admin listener to ask: stop it first, or set server.admin_listen and server.admin_token"
            )));
        };
        let Some(token) = config.server.admin_token.clone() else {
            return Err(CommandError::Invalid(format!(
                "{in_use}: asking it needs server.admin_token (or stop it first)"
            )));
        };
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|err| CommandError::Failed(err.to_string()))?;
        Ok(Self {
            http,
            base: format!("http://{}", crate::io::reachable(listen)),
            token,
        })
    }

    /// Erases a user on the running Tether; true if a mapping was recorded.
    pub async fn erase(&self, user: &str) -> Result<bool, CommandError> {
        let path = percent_encoding::utf8_percent_encode(user, percent_encoding::NON_ALPHANUMERIC);
        let response = self
            .send(self.http.delete(format!("{}/users/{path}", self.base)))
            .await?;
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|err| CommandError::Failed(format!("the admin listener's answer: {err}")))?;
        body["erased"]
            .as_bool()
            .ok_or_else(|| CommandError::Failed(format!("unexpected answer: {body}")))
    }

    /// One named value of the running Tether's store.
    pub async fn value(&self, name: &str) -> Result<Option<String>, CommandError> {
        let url = self.value_url(name);
        let response = self
            .http
            .get(&url)
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|err| self.unreachable(err))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.check(response).await?;
        let data = response
            .text()
            .await
            .map_err(|err| CommandError::Failed(format!("the admin listener's answer: {err}")))?;
        Ok(Some(data))
    }

    /// Sets one named value in the running Tether's store.
    pub async fn set_value(&self, name: &str, data: String) -> Result<(), CommandError> {
        self.send(self.http.put(self.value_url(name)).body(data))
            .await
            .map(drop)
    }

    fn value_url(&self, name: &str) -> String {
        let name = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
        format!("{}/store/values/{name}", self.base)
    }

    /// Streams the running Tether's rows (`/store/export`, or `/store/backup` with values).
    pub async fn rows(
        &self,
        with_values: bool,
        sink: mpsc::Sender<Row>,
    ) -> Result<(), CommandError> {
        let path = if with_values { "backup" } else { "export" };
        let mut response = self
            .send(self.http.get(format!("{}/store/{path}", self.base)))
            .await?;
        let mut pending = Vec::new();
        let mut line_no = 0;
        // A body cut short ends in an error here, never in a shorter export.
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| CommandError::Failed(format!("the export stopped: {err}")))?
        {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                line_no += 1;
                let row = std::str::from_utf8(&line)
                    .map_err(|_| (1, "expected UTF-8".to_string()))
                    .and_then(Row::from_line)
                    .map_err(|(_, why)| {
                        CommandError::Failed(format!("line {line_no} of the export: {why}"))
                    })?;
                if sink.send(row).await.is_err() {
                    return Ok(());
                }
            }
        }
        if !pending.is_empty() {
            return Err(CommandError::Failed("the export ended mid-line".into()));
        }
        Ok(())
    }

    /// Sends with the admin token; a refusal or an unreachable listener is a command error.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CommandError> {
        let response = request
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|err| self.unreachable(err))?;
        self.check(response).await
    }

    /// A success, or the refusal as a command error.
    async fn check(&self, response: reqwest::Response) -> Result<reqwest::Response, CommandError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(CommandError::Failed(format!(
            "the running Tether's admin listener ({}) answered {status}: {}",
            self.base,
            body.trim()
        )))
    }

    fn unreachable(&self, err: reqwest::Error) -> CommandError {
        CommandError::Failed(format!(
            "the store file is held by a running Tether, but its admin listener {} does not answer: {err}",
            self.base
        ))
    }
}
