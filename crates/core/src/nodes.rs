//! Nodes and their tags, read on every StartSession and tag check, so kept in a small cache.
//!
//! Every write to a node or its tags goes through this module and updates the cache, so on
//! one server the cache is exact. Entries also expire after [`NODE_CACHE_TTL`], which bounds
//! how stale another server's view can be once several share a store.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::model::{Node, Tag};
use crate::service::{now, Service};

pub const NODE_CACHE_TTL: Duration = Duration::from_secs(5);

/// When an entry was read, the node, and its tags.
type Entry = (Instant, Node, Vec<Tag>);

#[derive(Debug, Default)]
pub(crate) struct NodeCache {
    entries: RwLock<HashMap<String, Entry>>,
    /// Nodes whose agent holds a control channel to this server right now.
    connected: RwLock<HashSet<String>>,
    /// Nodes whose control channel to this server closed, and when (unix seconds): a
    /// heartbeat from before that no longer makes them online.
    lost: RwLock<HashMap<String, i64>>,
}

impl NodeCache {
    fn get(&self, id: &str) -> Option<(Node, Vec<Tag>)> {
        let entries = self.entries.read().ok()?;
        let (at, node, tags) = entries.get(id)?;
        (at.elapsed() < NODE_CACHE_TTL).then(|| (node.clone(), tags.clone()))
    }

    fn put(&self, node: Node, tags: Vec<Tag>) {
        if let Ok(mut entries) = self.entries.write() {
            entries.insert(node.id.clone(), (Instant::now(), node, tags));
        }
    }

    pub(crate) fn is_connected(&self, id: &str) -> bool {
        self.connected.read().is_ok_and(|c| c.contains(id))
    }

    /// When this node's control channel to this server closed, if it did and no heartbeat
    /// has come since.
    pub(crate) fn lost_at(&self, id: &str) -> Option<i64> {
        self.lost.read().ok()?.get(id).copied()
    }

    pub(crate) fn forget(&self, id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(id);
        }
    }
}

impl Service {
    /// A node and its tags, or `(None, [])` when there is no such node.
    pub(crate) async fn node_and_tags(&self, id: &str) -> Result<(Option<Node>, Vec<Tag>)> {
        if let Some((node, tags)) = self.nodes.get(id) {
            return Ok((Some(node), tags));
        }
        match self.store.node(id).await? {
            Some(node) => {
                let tags = self.store.node_tags(id).await?;
                self.nodes.put(node.clone(), tags.clone());
                Ok((Some(node), tags))
            }
            None => Ok((None, Vec::new())),
        }
    }

    /// Replaces a node's tags.
    pub(crate) async fn write_node_tags(&self, id: &str, tags: &[Tag]) -> Result<()> {
        let result = self.store.set_node_tags(id, tags).await;
        self.nodes.forget(id);
        Ok(result?)
    }

    pub(crate) async fn remove_node(&self, id: &str) -> Result<()> {
        let result = self.store.delete_node(id).await;
        self.nodes.forget(id);
        Ok(result?)
    }

    /// Records that a node's agent opened (or lost) its control channel to this server.
    pub async fn set_node_connected(&self, node_id: &str, connected: bool) -> Result<()> {
        if let Ok(mut set) = self.nodes.connected.write() {
            if connected {
                set.insert(node_id.to_owned());
            } else {
                set.remove(node_id);
            }
        }
        if !connected {
            // The agent is gone now: its last heartbeat must not keep the node online (a
            // session started then would never reach an agent).
            if let Ok(mut lost) = self.nodes.lost.write() {
                lost.insert(node_id.to_owned(), now());
            }
        }
        if connected {
            self.node_heartbeat(node_id).await?;
        }
        Ok(())
    }

    /// Records an agent's heartbeat.
    pub async fn node_heartbeat(&self, node_id: &str) -> Result<()> {
        let at = now();
        self.store.touch_node(node_id, at).await?;
        if let Ok(mut lost) = self.nodes.lost.write() {
            lost.remove(node_id);
        }
        if let Some((mut node, tags)) = self.nodes.get(node_id) {
            node.last_ping = Some(at);
            self.nodes.put(node, tags);
        }
        Ok(())
    }
}
