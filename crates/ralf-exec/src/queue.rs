//! The queue between a task's output and whoever stores or sends it (the server's writer, a
//! runner's sender): items wait in order up to a budget of bytes; past it the sink asks the
//! task to wait ([`crate::OutputSink::room`]), so a task printing faster than its lines are
//! stored waits on its pipe instead of its lines piling up in memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::{Notify, mpsc};

/// How much output may wait for its consumer before the task waits: a few seconds of a fast
/// printer's output, a batch or two of the consumer's.
pub const QUEUED_BYTES: usize = 4 << 20;
/// What a queued line costs besides its text (its time, its `String`, the queue's slot).
pub const LINE_COST: usize = 64;

/// What a waiting task awaits.
pub type Room<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A queue holding at most about `budget` bytes (as its senders count them).
pub fn output_queue<T>(budget: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let level = Arc::new(Level {
        queued: AtomicUsize::new(0),
        budget,
        drained: Notify::new(),
        closed: AtomicBool::new(false),
    });
    (
        QueueSender {
            tx,
            level: level.clone(),
        },
        QueueReceiver { rx, level },
    )
}

/// How full the queue is.
struct Level {
    queued: AtomicUsize,
    budget: usize,
    /// Told when the queue goes below its budget, or its receiver is gone.
    drained: Notify,
    closed: AtomicBool,
}

impl Level {
    fn has_room(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.queued.load(Ordering::Acquire) < self.budget
    }
}

/// The sending side; clones share the queue.
pub struct QueueSender<T> {
    tx: mpsc::UnboundedSender<(T, usize)>,
    level: Arc<Level>,
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        QueueSender {
            tx: self.tx.clone(),
            level: self.level.clone(),
        }
    }
}

impl<T: Send> QueueSender<T> {
    /// Queues `item`, counted as `bytes`, without waiting (the budget is kept by
    /// [`QueueSender::room`]); dropped when the receiver is gone.
    pub fn send(&self, item: T, bytes: usize) {
        self.level.queued.fetch_add(bytes, Ordering::AcqRel);
        if let Err(mpsc::error::SendError((_, bytes))) = self.tx.send((item, bytes)) {
            self.level.queued.fetch_sub(bytes, Ordering::AcqRel);
        }
    }

    /// `None` while the queue is under its budget; else what to await until it is (or until
    /// the receiver is gone).
    pub fn room(&self) -> Option<Room<'_>> {
        if self.level.has_room() {
            return None;
        }
        Some(Box::pin(async move {
            loop {
                let drained = self.level.drained.notified();
                tokio::pin!(drained);
                drained.as_mut().enable();
                if self.level.has_room() {
                    return;
                }
                drained.await;
            }
        }))
    }
}

/// The receiving side.
pub struct QueueReceiver<T> {
    rx: mpsc::UnboundedReceiver<(T, usize)>,
    level: Arc<Level>,
}

impl<T> QueueReceiver<T> {
    /// The items queued now, in order: at least one (waiting for it), at most `max_items`,
    /// and no more once `max_bytes` are taken; `None` once every sender is dropped and the
    /// queue is empty.
    pub async fn recv_batch(&mut self, max_items: usize, max_bytes: usize) -> Option<Vec<T>> {
        let (first, mut bytes) = self.rx.recv().await?;
        let mut batch = vec![self.taken((first, bytes))];
        while batch.len() < max_items && bytes < max_bytes {
            let Ok((item, size)) = self.rx.try_recv() else {
                break;
            };
            bytes += size;
            batch.push(self.taken((item, size)));
        }
        Some(batch)
    }

    fn taken(&self, (item, bytes): (T, usize)) -> T {
        let before = self.level.queued.fetch_sub(bytes, Ordering::AcqRel);
        if before >= self.level.budget && before - bytes < self.level.budget {
            self.level.drained.notify_waiters();
        }
        item
    }
}

impl<T> Drop for QueueReceiver<T> {
    fn drop(&mut self) {
        self.level.closed.store(true, Ordering::Release);
        self.level.drained.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_full_queue_makes_the_sender_wait_until_it_drains() {
        let (tx, mut rx) = output_queue::<u32>(10);
        tx.send(1, 6);
        assert!(tx.room().is_none());
        tx.send(2, 6);
        let wait = tx.room().expect("12 bytes of 10 queued");
        let waiter = tokio::spawn({
            let tx = tx.clone();
            async move {
                if let Some(room) = tx.room() {
                    room.await;
                }
            }
        });
        drop(wait);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "the sender waits while the queue is full"
        );
        assert_eq!(rx.recv_batch(1, 100).await, Some(vec![1]));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("taking an item makes room")
            .unwrap();
        assert!(tx.room().is_none());
        tx.send(3, 1);
        tx.send(4, 1);
        drop(tx);
        assert_eq!(
            rx.recv_batch(10, 7).await,
            Some(vec![2, 3]),
            "a batch ends at its bytes"
        );
        assert_eq!(rx.recv_batch(10, 7).await, Some(vec![4]));
        assert_eq!(rx.recv_batch(10, 7).await, None);
    }

    #[tokio::test]
    async fn a_gone_receiver_never_keeps_a_sender_waiting() {
        let (tx, rx) = output_queue::<u32>(1);
        tx.send(1, 5);
        let waiter = tokio::spawn({
            let tx = tx.clone();
            async move {
                if let Some(room) = tx.room() {
                    room.await;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter is woken")
            .unwrap();
        tx.send(2, 5);
        assert!(tx.room().is_none());
    }
}
