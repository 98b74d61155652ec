//! Traffic during the chaos run: token requests for returning and new users, and plain requests,
//! spread over the replicas a load balancer would route to. Everything that came back is booked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;

/// Counts of outcomes; a phase's are the difference of two snapshots.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub tokens_ok: u64,
    pub tokens_503: u64,
    pub tokens_other: u64,
    pub plain_ok: u64,
    pub plain_failed: u64,
    /// Requests to a replica that died under them (SIGKILL).
    pub unreachable: u64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts {
            tokens_ok: self.tokens_ok - o.tokens_ok,
            tokens_503: self.tokens_503 - o.tokens_503,
            tokens_other: self.tokens_other - o.tokens_other,
            plain_ok: self.plain_ok - o.plain_ok,
            plain_failed: self.plain_failed - o.plain_failed,
            unreachable: self.unreachable - o.unreachable,
        }
    }
}

#[derive(Default)]
pub struct Book {
    /// The first customer acknowledged for each user.
    pub entities: Mutex<HashMap<String, String>>,
    /// The same users in the order they were first acknowledged, for picking a returning one.
    acknowledged: Mutex<Vec<String>>,
    /// Later answers naming another customer for a user: must stay 0.
    pub mismatches: AtomicU64,
    /// 503 answers without Retry-After: must stay 0.
    pub missing_retry_after: AtomicU64,
    /// New users whose first login was refused (503): asked for again by returning-user requests
    /// and by the final check, so each of them ends up with exactly one customer too.
    pub refused_first_logins: Mutex<Vec<String>>,
    /// Statuses nobody expected, with the phase they came in.
    pub surprises: Mutex<Vec<String>>,
    tokens_ok: AtomicU64,
    tokens_503: AtomicU64,
    tokens_other: AtomicU64,
    plain_ok: AtomicU64,
    plain_failed: AtomicU64,
    unreachable: AtomicU64,
    new_users: AtomicU64,
}

impl Book {
    pub fn counts(&self) -> Counts {
        Counts {
            tokens_ok: self.tokens_ok.load(SeqCst),
            tokens_503: self.tokens_503.load(SeqCst),
            tokens_other: self.tokens_other.load(SeqCst),
            plain_ok: self.plain_ok.load(SeqCst),
            plain_failed: self.plain_failed.load(SeqCst),
            unreachable: self.unreachable.load(SeqCst),
        }
    }

    pub fn users(&self) -> Vec<(String, String)> {
        let entities = self.entities.lock().unwrap();
        entities
            .iter()
            .map(|(u, e)| (u.clone(), e.clone()))
            .collect()
    }

    /// Books a customer for `user`: the first one, or a check against it.
    pub fn acknowledge(&self, user: &str, entity: &str) {
        let mut entities = self.entities.lock().unwrap();
        match entities.get(user) {
            Some(first) if first != entity => {
                self.mismatches.fetch_add(1, SeqCst);
            }
            Some(_) => {}
            None => {
                entities.insert(user.to_string(), entity.to_string());
                self.acknowledged.lock().unwrap().push(user.to_string());
            }
        }
    }

    /// The `n`-th returning user (round robin), if any was acknowledged yet.
    fn returning(&self, n: usize) -> Option<String> {
        let users = self.acknowledged.lock().unwrap();
        users.get(n % users.len().max(1)).cloned()
    }
}

pub struct Load {
    pub book: Arc<Book>,
    /// Which replicas the balancer routes to now.
    pub routable: Arc<Vec<AtomicBool>>,
    stop: Arc<AtomicBool>,
    tasks: JoinSet<()>,
}

impl Load {
    /// `workers` token clients (one in three asks for a new user) and one plain client.
    pub fn start(client: reqwest::Client, replicas: Vec<String>, workers: usize) -> Self {
        let book = Arc::new(Book::default());
        let routable: Arc<Vec<AtomicBool>> =
            Arc::new(replicas.iter().map(|_| AtomicBool::new(true)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let replicas = Arc::new(replicas);
        let mut tasks = JoinSet::new();
        for worker in 0..=workers {
            let (client, replicas, routable, book, stop) = (
                client.clone(),
                replicas.clone(),
                routable.clone(),
                book.clone(),
                stop.clone(),
            );
            tasks.spawn(async move {
                let mut n = worker;
                while !stop.load(SeqCst) {
                    n += 1;
                    let Some(base) = pick(&replicas, &routable, n) else {
                        tokio::task::yield_now().await;
                        continue;
                    };
                    if worker == workers {
                        plain(&client, base, &book).await;
                    } else {
                        token(&client, base, &book, n).await;
                    }
                }
            });
        }
        Self {
            book,
            routable,
            stop,
            tasks,
        }
    }

    pub fn route(&self, replica: usize, on: bool) {
        self.routable[replica].store(on, SeqCst);
    }

    pub async fn stop(mut self) -> Arc<Book> {
        self.stop.store(true, SeqCst);
        while let Some(done) = self.tasks.join_next().await {
            done.unwrap();
        }
        self.book
    }
}

fn pick<'a>(replicas: &'a [String], routable: &[AtomicBool], n: usize) -> Option<&'a str> {
    (0..replicas.len())
        .map(|i| (n + i) % replicas.len())
        .find(|&i| routable[i].load(SeqCst))
        .map(|i| replicas[i].as_str())
}

async fn token(client: &reqwest::Client, base: &str, book: &Book, n: usize) {
    let retry = book.refused_first_logins.lock().unwrap().pop();
    let user = if let Some(user) = retry {
        user
    } else if n % 3 == 0 {
        format!("new-{}", book.new_users.fetch_add(1, SeqCst))
    } else {
        // A returning user (one already acknowledged), or a new one while there are none.
        book.returning(n)
            .unwrap_or_else(|| format!("new-{}", book.new_users.fetch_add(1, SeqCst)))
    };
    let sent = client
        .get(format!("{base}/.tether/livechat/token"))
        .header("cookie", format!("session={user}"))
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(_) => {
            book.unreachable.fetch_add(1, SeqCst);
            return;
        }
    };
    match response.status().as_u16() {
        200 => {
            let Ok(body) = response.json::<serde_json::Value>().await else {
                book.unreachable.fetch_add(1, SeqCst);
                return;
            };
            book.acknowledge(&user, body["entityId"].as_str().unwrap_or_default());
            book.tokens_ok.fetch_add(1, SeqCst);
        }
        503 => {
            if !book.entities.lock().unwrap().contains_key(&user) {
                book.refused_first_logins.lock().unwrap().push(user);
            }
            if !response.headers().contains_key("retry-after") {
                book.missing_retry_after.fetch_add(1, SeqCst);
            }
            book.tokens_503.fetch_add(1, SeqCst);
        }
        other => {
            book.tokens_other.fetch_add(1, SeqCst);
            book.surprises
                .lock()
                .unwrap()
                .push(format!("token for {user}: {other}"));
        }
    }
}

async fn plain(client: &reqwest::Client, base: &str, book: &Book) {
    match client.get(format!("{base}/echo")).send().await {
        Ok(response) if response.status() == 200 => {
            book.plain_ok.fetch_add(1, SeqCst);
        }
        _ => {
            book.plain_failed.fetch_add(1, SeqCst);
        }
    }
}
