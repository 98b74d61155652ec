//! The three ways to reach Redis, behind one connection type: one server (a connection manager
//! that reconnects by itself), a Sentinel-managed primary (asked of the sentinels on first use
//! and again after a failover shows), or a Redis Cluster (redis-rs follows its redirections and
//! slot moves). Sentinel and Cluster connect on first use, so Tether starts while Redis is down.

use crate::config::{RedisTopology, StoreConfig};
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// A connection to whichever topology the configuration names. Cheap to clone.
#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Sentinel(Lazy<MultiplexedConnection>),
    Cluster(Lazy<ClusterConnection>),
}

type Connect<C> = Arc<dyn Fn() -> RedisFuture<'static, C> + Send + Sync>;

/// A connection made on first use, and made again after an error that says it is stale.
pub struct Lazy<C> {
    connect: Connect<C>,
    current: Arc<Mutex<Option<C>>>,
}

impl<C> Clone for Lazy<C> {
    fn clone(&self) -> Self {
        Self {
            connect: self.connect.clone(),
            current: self.current.clone(),
        }
    }
}

impl<C: Clone + Send + 'static> Lazy<C> {
    fn new(connect: Connect<C>) -> Self {
        Self {
            connect,
            current: Arc::new(Mutex::new(None)),
        }
    }

    async fn get(&self) -> RedisResult<C> {
        let mut current = self.current.lock().await;
        if let Some(connection) = current.as_ref() {
            return Ok(connection.clone());
        }
        let connection = (self.connect)().await?;
        *current = Some(connection.clone());
        Ok(connection)
    }

    /// After a failover (or a dead connection), the next command connects anew.
    async fn forget(&self) {
        *self.current.lock().await = None;
    }
}

/// Errors after which the connection should be made again: it is gone, or it reaches a server
/// that is no longer the primary.
fn stale(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.kind() == ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
        || err.is_timeout()
}

impl Connection {
    /// The connection the configuration names (nothing is contacted yet).
    pub fn open(config: &StoreConfig) -> RedisResult<Self> {
        let timeout = config.timeout;
        match config.redis_topology() {
            RedisTopology::Single => {
                let url = config.url.as_ref().map(|url| url.expose()).unwrap_or("");
                let client = redis::Client::open(url)?;
                let manager = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    // Few, quick reconnection attempts per command: a request fails fast while
                    // Redis is down, and the next one tries again.
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                Ok(Self::Single(ConnectionManager::new_lazy_with_config(
                    client, manager,
                )?))
            }
            RedisTopology::Sentinel => sentinel(config),
            RedisTopology::Cluster => {
                let nodes: Vec<String> = config
                    .cluster
                    .iter()
                    .map(|url| url.expose().to_string())
                    .collect();
                let client = redis::cluster::ClusterClientBuilder::new(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .build()?;
                let client = Arc::new(client);
                Ok(Self::Cluster(Lazy::new(Arc::new(move || {
                    let client = client.clone();
                    Box::pin(async move { client.get_async_connection().await })
                }))))
            }
        }
    }

    /// Blocks until `replicas` replicas have every write this connection sent to the server
    /// holding `key` (WAIT), or `timeout` passes; how many had them.
    pub async fn wait_for_replicas(
        &mut self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> RedisResult<i64> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(timeout.as_millis().max(1) as u64);
        match self {
            // In a cluster, WAIT goes to the primary that holds the key (its slot's), over the
            // same multiplexed connection the write went over.
            Self::Cluster(lazy) => {
                let mut cluster = lazy.get().await?;
                let route = Route::with_key(key, SlotAddr::Master);
                let answer = cluster
                    .route_command(
                        wait,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                Ok(redis::from_redis_value(answer)?)
            }
            _ => wait.query_async(self).await,
        }
    }
}

impl Connection {
    /// The primaries of a Cluster, as (host, port); None for one server or Sentinel (one
    /// primary, the connection's own).
    pub async fn cluster_primaries(&mut self) -> RedisResult<Option<Vec<(String, u16)>>> {
        let Self::Cluster(lazy) = self else {
            return Ok(None);
        };
        let mut cluster = lazy.get().await?;
        let nodes = cluster
            .route_command(
                redis::cmd("CLUSTER").arg("NODES").to_owned(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        let nodes: String = redis::from_redis_value(nodes)?;
        // "<id> <ip:port@cport[,hostname]> <flags> ...": primaries that are not failing.
        let primaries = nodes
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let flags = fields.get(2)?;
                (flags.contains("master") && !flags.contains("fail")).then_some(())?;
                let address = fields.get(1)?.split('@').next()?;
                let (host, port) = address.rsplit_once(':')?;
                Some((host.to_string(), port.parse().ok()?))
            })
            .collect();
        Ok(Some(primaries))
    }

    /// A keyless `cmd` (INFO, CONFIG GET) on one primary: any of a Cluster's (they are set up
    /// alike), the one primary otherwise.
    pub async fn on_a_primary<T: redis::FromRedisValue>(&mut self, cmd: Cmd) -> RedisResult<T> {
        match self {
            Self::Cluster(lazy) => {
                let mut cluster = lazy.get().await?;
                let answer = cluster
                    .route_command(
                        cmd,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
                    )
                    .await?;
                Ok(redis::from_redis_value(answer)?)
            }
            connection => cmd.query_async(connection).await,
        }
    }

    /// `cmd` on one node of a Cluster (a SCAN of that node's keys); on the connection itself
    /// for one server or Sentinel.
    pub async fn on_node<T: redis::FromRedisValue>(
        &mut self,
        node: Option<&(String, u16)>,
        cmd: Cmd,
    ) -> RedisResult<T> {
        match (self, node) {
            (Self::Cluster(lazy), Some((host, port))) => {
                let mut cluster = lazy.get().await?;
                let answer = cluster
                    .route_command(
                        cmd,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port: *port,
                        }),
                    )
                    .await?;
                Ok(redis::from_redis_value(answer)?)
            }
            (connection, _) => cmd.query_async(connection).await,
        }
    }
}

/// The primary the sentinels name, asked again whenever the connection turns stale.
fn sentinel(config: &StoreConfig) -> RedisResult<Connection> {
    use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
    use redis::IntoConnectionInfo;
    let urls: Vec<String> = config
        .sentinels
        .iter()
        .map(|url| url.expose().to_string())
        .collect();
    // The sentinels' credentials and database are the primary's too.
    let first = urls[0].as_str().into_connection_info()?;
    let node = SentinelNodeConnectionInfo::default()
        .set_redis_connection_info(first.redis_settings().clone());
    let client = SentinelClient::build(
        urls,
        config.sentinel_master.clone(),
        Some(node),
        SentinelServerType::Master,
    )?;
    let client = Arc::new(Mutex::new(client));
    let timeout = config.timeout;
    Ok(Connection::Sentinel(Lazy::new(Arc::new(move || {
        let client = client.clone();
        Box::pin(async move {
            let primary = client.lock().await.async_get_client().await?;
            let settings = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout));
            primary
                .get_multiplexed_async_connection_with_config(&settings)
                .await
        })
    }))))
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(manager) => manager.req_packed_command(cmd),
            Self::Sentinel(lazy) => Box::pin(async move {
                let mut connection = lazy.get().await?;
                let answer = connection.req_packed_command(cmd).await;
                if answer.as_ref().is_err_and(stale) {
                    lazy.forget().await;
                }
                answer
            }),
            Self::Cluster(lazy) => Box::pin(async move {
                let mut connection = lazy.get().await?;
                let answer = connection.req_packed_command(cmd).await;
                if answer
                    .as_ref()
                    .is_err_and(|err| err.is_connection_refusal())
                {
                    lazy.forget().await;
                }
                answer
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(manager) => manager.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(lazy) => Box::pin(async move {
                let mut connection = lazy.get().await?;
                let answer = connection
                    .req_packed_commands(pipeline, offset, count)
                    .await;
                if answer.as_ref().is_err_and(stale) {
                    lazy.forget().await;
                }
                answer
            }),
            Self::Cluster(lazy) => Box::pin(async move {
                let mut connection = lazy.get().await?;
                connection
                    .req_packed_commands(pipeline, offset, count)
                    .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(manager) => manager.get_db(),
            _ => 0,
        }
    }
}
