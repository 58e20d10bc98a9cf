//! A small per-container TTL cache. Entries expire on read; the map is pruned when it grows.
//! [`TtlCache::get_or_load`] loads a missing entry once however many calls want it at once:
//! when an entry expires under a flood of calls, the store sees one read, not one per call.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

const PRUNE_AT: usize = 4096;

pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// Keys being loaded, and how their loads' waiters are woken.
    loading: Mutex<HashMap<K, Arc<Notify>>>,
}

/// Ends a load however it ends (a dropped caller included): its waiters look again.
struct Loading<'a, K: Eq + Hash, V> {
    cache: &'a TtlCache<K, V>,
    key: &'a K,
    notify: Arc<Notify>,
}

impl<K: Eq + Hash, V> Drop for Loading<'_, K, V> {
    fn drop(&mut self) {
        if let Ok(mut loading) = self.cache.loading.lock() {
            loading.remove(self.key);
        }
        self.notify.notify_waiters();
    }
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
        }
    }

    /// The live entry, else what `load` gives (cached if it succeeds). While one call loads
    /// a key, the others wanting it wait for that load instead of sending their own; if it
    /// fails, each of them loads on its own (so one error is not handed to them all).
    pub async fn get_or_load<E, Fut>(&self, key: &K, load: impl FnOnce() -> Fut) -> Result<V, E>
    where
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(hit) = self.get(key) {
            return Ok(hit);
        }
        let (notify, mine) = match self.loading.lock() {
            Ok(mut loading) => match loading.get(key) {
                Some(n) => (Some(n.clone()), false),
                None => {
                    let n = Arc::new(Notify::new());
                    loading.insert(key.clone(), n.clone());
                    (Some(n), true)
                }
            },
            // A poisoned map: load without sharing.
            Err(_) => (None, false),
        };
        let _loading = match (notify, mine) {
            (Some(notify), true) => Some(Loading {
                cache: self,
                key,
                notify,
            }),
            (Some(notify), false) => {
                let woken = notify.notified();
                tokio::pin!(woken);
                // Registered before looking again, so the end of the load is not missed.
                woken.as_mut().enable();
                let still = self
                    .loading
                    .lock()
                    .is_ok_and(|l| l.get(key).is_some_and(|n| Arc::ptr_eq(n, &notify)));
                if still {
                    woken.await;
                }
                if let Some(hit) = self.get(key) {
                    return Ok(hit);
                }
                None
            }
            (None, _) => None,
        };
        let value = load().await?;
        self.insert(key.clone(), value.clone());
        Ok(value)
    }

    /// A live entry, if any. A poisoned lock behaves as a miss.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= PRUNE_AT {
                let ttl = self.ttl;
                entries.retain(|_, (at, _)| at.elapsed() < ttl);
                // Still full of live entries: start over rather than scan on every insert.
                if entries.len() >= PRUNE_AT / 2 {
                    entries.clear();
                }
            }
            entries.insert(key, (Instant::now(), value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let c = TtlCache::new(Duration::from_millis(30));
        c.insert("a", 1);
        assert_eq!(c.get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get(&"a"), None);
    }

    #[tokio::test]
    async fn calls_wanting_one_key_at_once_load_it_once() {
        let c = Arc::new(TtlCache::new(Duration::from_secs(60)));
        let loads = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let calls = (0..50).map(|_| {
            let (c, loads) = (c.clone(), loads.clone());
            tokio::spawn(async move {
                c.get_or_load(&"org", || async {
                    loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok::<_, ()>(7)
                })
                .await
            })
        });
        for r in futures_util::future::join_all(calls).await {
            assert_eq!(r.unwrap(), Ok(7));
        }
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_or_dropped_load_lets_the_waiters_load_themselves() {
        let c = Arc::new(TtlCache::new(Duration::from_secs(60)));
        let failing = {
            let c = c.clone();
            tokio::spawn(async move {
                c.get_or_load(&"org", || async {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Err::<u32, &str>("store down")
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let waiter = c.get_or_load(&"org", || async { Ok::<_, &str>(1) });
        assert_eq!(waiter.await, Ok(1));
        assert_eq!(failing.await.unwrap(), Err("store down"));

        // A loader dropped mid-load (its caller timed out) wakes the waiters too.
        let c = Arc::new(TtlCache::new(Duration::from_secs(60)));
        let stuck = {
            let c = c.clone();
            tokio::spawn(async move {
                c.get_or_load(&"org", std::future::pending::<Result<u32, ()>>)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.get_or_load(&"org", || async { Ok::<_, ()>(2) }).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        stuck.abort();
        let got = tokio::time::timeout(Duration::from_secs(1), waiter).await;
        assert_eq!(got.unwrap().unwrap(), Ok(2));
    }

    #[test]
    fn zero_ttl_disables_caching() {
        let c = TtlCache::new(Duration::ZERO);
        c.insert("a", 1);
        assert_eq!(c.get(&"a"), None);
    }
}
