//! Hearing a catalog rollout change, live: ralf's feed (`GET /api/ws`) carries a
//! `catalog_rollout` frame whenever a rollout of a project the caller may read changes (a step
//! started or ended, a service's state, the rollout's). The feed says that it changed and how
//! its services stand; what changed in detail is read with [`Client::rollout`]. The feed also
//! carries every task's lines, which are skipped here.

use futures::StreamExt;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Client, describe};
use crate::error::Error;
use crate::follow::{SILENCE, Socket};

/// An open feed, listening for one rollout.
pub struct RolloutFeed {
    client: Client,
    socket: Socket,
    project: i64,
    rollout: i64,
}

/// The part of a feed frame that tells whose it is.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    project_id: Option<i64>,
    #[serde(default)]
    rollout_id: Option<i64>,
}

impl Client {
    /// Opens the feed for rollout `rollout` of `project`; `None` when the server has no
    /// WebSocket feed to offer (a proxy in between that does not pass it, say).
    pub async fn rollout_feed(
        &self,
        project: i64,
        rollout: i64,
    ) -> Result<Option<RolloutFeed>, Error> {
        Ok(self
            .open_socket("/api/ws")
            .await?
            .map(|socket| RolloutFeed {
                client: self.clone(),
                socket,
                project,
                rollout,
            }))
    }
}

impl RolloutFeed {
    /// Waits until the server says the rollout changed. An error when the feed ends (the
    /// server went away, or said nothing for too long): the caller polls instead.
    pub async fn changed(&mut self) -> Result<(), Error> {
        loop {
            let message = match tokio::time::timeout(SILENCE, self.socket.next()).await {
                Err(_) => return Err(self.gone("the live feed went silent")),
                Ok(None) => return Err(self.gone("the live feed ended")),
                Ok(Some(Err(e))) => return Err(self.client.unreachable(describe(&e))),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else {
                        continue;
                    };
                    if frame.kind == "catalog_rollout"
                        && frame.project_id == Some(self.project)
                        && frame.rollout_id == Some(self.rollout)
                    {
                        return Ok(());
                    }
                }
                Message::Close(_) => return Err(self.gone("the server closed the live feed")),
                _ => {}
            }
        }
    }

    fn gone(&self, why: &str) -> Error {
        self.client.unreachable(why.to_owned())
    }
}
