//! Real Redis topologies for the failover tests, started from the `redis-server` and
//! `redis-cli` on PATH (a failure under `CI=true` when missing): a primary with a replica
//! watched by three sentinels, and a Cluster of three primaries each with a replica.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One redis-server process (plain, replica, sentinel or cluster node) in its own directory.
pub struct Node {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
    dir: tempfile::TempDir,
}

impl Node {
    fn spawn(args: &[String], config: Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut args = args.to_vec();
        if let Some(config) = config {
            let path = dir.path().join("node.conf");
            std::fs::write(&path, config.replace("{port}", &port.to_string())).unwrap();
            args.insert(0, path.display().to_string());
        }
        let mut node = Self {
            child: None,
            port,
            args,
            dir,
        };
        node.run();
        node
    }

    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(&self.args)
            .args(["--port", &self.port.to_string()])
            .args([
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "no",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.dir.path().join("node.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
    }

    /// Starts a killed node again on its port and directory (a cluster node keeps its identity;
    /// a former primary is then made a replica by the sentinels or the cluster).
    pub async fn restart(&mut self) {
        self.kill();
        self.run();
        super::wait_until("a restarted node", Duration::from_secs(20), async || {
            self.query(&["PING"]).await.is_ok()
        })
        .await;
    }

    /// The end of the node's log (for a failed test's message).
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn query(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(self.url())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query_async(&mut connection).await
    }

    async fn info(&self, section: &str) -> Option<String> {
        match self.query(&["INFO", section]).await {
            Ok(value) => redis::from_redis_value(value).ok(),
            Err(_) => None,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether the redis binaries are here (None: skip; under CI=true, fail).
pub fn available() -> bool {
    let found = ["redis-server", "redis-cli"].iter().all(|name| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
    });
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "redis-server and redis-cli are needed (apt-get install redis-server)"
        );
        eprintln!("SKIPPED: redis-server or redis-cli is not on PATH");
    }
    found
}

/// A primary, its replica, and three sentinels watching `mymaster` (quorum 2).
pub struct Sentinels {
    pub primary: Node,
    pub replica: Node,
    pub sentinels: Vec<Node>,
}

pub const MASTER: &str = "mymaster";

impl Sentinels {
    pub async fn start() -> Option<Self> {
        if !available() {
            return None;
        }
        let primary = Node::spawn(&[], None);
        let replica = Node::spawn(
            &[
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary.port.to_string(),
            ],
            None,
        );
        let config = format!(
            "port {{port}}\nsentinel monitor {MASTER} 127.0.0.1 {} 2\n\
             sentinel down-after-milliseconds {MASTER} 1000\n\
             sentinel failover-timeout {MASTER} 5000\n\
             sentinel parallel-syncs {MASTER} 1\n",
            primary.port
        );
        let sentinels = (0..3)
            .map(|_| Node::spawn(&["--sentinel".into()], Some(config.clone())))
            .collect();
        let topology = Self {
            primary,
            replica,
            sentinels,
        };
        super::wait_until("the replica in sync", Duration::from_secs(20), async || {
            topology
                .replica
                .info("replication")
                .await
                .is_some_and(|info| info.contains("master_link_status:up"))
        })
        .await;
        super::wait_until(
            "the sentinels to know the replica",
            Duration::from_secs(20),
            async || {
                let mut all = true;
                for sentinel in &topology.sentinels {
                    let replicas = sentinel.query(&["SENTINEL", "REPLICAS", MASTER]).await;
                    all &= matches!(replicas, Ok(redis::Value::Array(list)) if !list.is_empty());
                }
                all
            },
        )
        .await;
        Some(topology)
    }

    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels.iter().map(Node::url).collect()
    }

    /// Kills the primary, waits until every sentinel knows the replica was promoted, and starts
    /// the old primary again (the sentinels make it the new primary's replica).
    ///
    /// Every sentinel, not one: a sentinel that still took the old primary for the primary when
    /// it came back (empty) made the promoted replica its replica, which flushed the replica's
    /// data (seen in a full test run's logs, 14 ms between one sentinel's update and the
    /// restart).
    pub async fn fail_over(&mut self) {
        self.primary.kill();
        let replica = self.replica.port.to_string();
        super::wait_until(
            "the replica promoted, as every sentinel knows",
            Duration::from_secs(30),
            async || {
                let mut agreed = true;
                for sentinel in &self.sentinels {
                    let answer = sentinel
                        .query(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER])
                        .await;
                    let addr: Option<Vec<String>> =
                        answer.ok().and_then(|v| redis::from_redis_value(v).ok());
                    agreed &= addr.is_some_and(|addr| addr.get(1) == Some(&replica));
                }
                agreed
                    && self
                        .replica
                        .info("replication")
                        .await
                        .is_some_and(|info| info.contains("role:master"))
            },
        )
        .await;
        self.primary.restart().await;
        // Sentinel converts a returning primary only once it has been up and claiming the role
        // for four publish periods (8 s), as read from its INFO, which a sentinel asks a replica
        // for every 10 s: 60 s leaves room for a loaded machine.
        let replicating = super::held_within(Duration::from_secs(60), async || {
            self.replica
                .info("replication")
                .await
                .is_some_and(|info| info.contains("connected_slaves:1"))
        })
        .await;
        assert!(
            replicating,
            "timed out waiting for the old primary to replicate again\n\
             old primary's log:\n{}\nnew primary's log:\n{}\na sentinel's log:\n{}",
            self.primary.log_tail(),
            self.replica.log_tail(),
            self.sentinels[0].log_tail()
        );
    }
}

/// Three primaries and three replicas, created with `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<Node>,
}

impl RedisCluster {
    pub async fn start() -> Option<Self> {
        if !available() {
            return None;
        }
        let args: Vec<String> = [
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            "1000",
            "--cluster-config-file",
            "nodes.conf",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let nodes: Vec<Node> = (0..6).map(|_| Node::spawn(&args, None)).collect();
        for node in &nodes {
            super::wait_until("a cluster node", Duration::from_secs(20), async || {
                node.query(&["PING"]).await.is_ok()
            })
            .await;
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = Self { nodes };
        cluster.wait_healthy().await;
        Some(cluster)
    }

    pub fn seed_urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    async fn wait_healthy(&self) {
        super::wait_until("the cluster ok on every node", Duration::from_secs(30), async || {
            let mut ok = true;
            for node in self.nodes.iter().filter(|node| node.child.is_some()) {
                ok &= matches!(
                        node.query(&["CLUSTER", "INFO"]).await,
                        Ok(redis::Value::BulkString(ref info)) if String::from_utf8_lossy(info).contains("cluster_state:ok")
                    );
            }
            ok
        })
        .await;
    }

    /// Kills the primary holding `key` and waits until its replica took over.
    pub async fn fail_over(&mut self, key: &str) {
        let slot: i64 = redis::from_redis_value(
            self.nodes[0]
                .query(&["CLUSTER", "KEYSLOT", key])
                .await
                .unwrap(),
        )
        .unwrap();
        let owner = self.owner_of(slot).await;
        let index = self
            .nodes
            .iter()
            .position(|node| node.port == owner)
            .unwrap();
        self.nodes[index].kill();
        super::wait_until(
            "the slot's replica promoted",
            Duration::from_secs(30),
            async || {
                self.owner_of_alive(slot)
                    .await
                    .is_some_and(|port| port != owner)
            },
        )
        .await;
        self.wait_healthy().await;
        // Back as a replica of the promoted node, so writes can be replicated again.
        self.nodes[index].restart().await;
        self.wait_healthy().await;
    }

    async fn owner_of(&self, slot: i64) -> u16 {
        self.owner_of_alive(slot).await.expect("an owner")
    }

    /// The port of the primary serving `slot`, as a live node sees it.
    async fn owner_of_alive(&self, slot: i64) -> Option<u16> {
        for node in self.nodes.iter().filter(|node| node.child.is_some()) {
            let Ok(slots) = node.query(&["CLUSTER", "SLOTS"]).await else {
                continue;
            };
            let slots: Vec<redis::Value> = redis::from_redis_value(slots).ok()?;
            for range in slots {
                let redis::Value::Array(range) = range else {
                    continue;
                };
                let start: i64 = redis::from_redis_value(range[0].clone()).ok()?;
                let end: i64 = redis::from_redis_value(range[1].clone()).ok()?;
                if (start..=end).contains(&slot) {
                    let redis::Value::Array(primary) = &range[2] else {
                        continue;
                    };
                    return redis::from_redis_value::<i64>(primary[1].clone())
                        .ok()
                        .map(|port| port as u16);
                }
            }
        }
        None
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
