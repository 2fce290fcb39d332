//! Group commit: on SQLite every commit at `synchronous=FULL` waits for the disk, one fsync per
//! transaction, which caps comment submissions at what the disk can flush one by one. Here one
//! writer thread takes every job waiting for it, runs each in a savepoint of one shared write
//! transaction, in arrival order (each job sees what the jobs before it wrote, exactly as if they
//! ran one after another), commits once, and only then answers each job. A job that fails rolls
//! back its own savepoint and nothing else; a commit that fails answers every job of the batch
//! with the error, and none of them is acknowledged as stored.

use std::sync::mpsc;

use diesel::Connection;

use super::{Db, DbConn, DbError};

/// The most jobs in one transaction; a busy batch beyond it waits for the next commit.
const MAX_BATCH: usize = 256;

/// A job: its work inside a savepoint, which returns the answer to send once the batch's fate
/// is known; or, if the batch could not start at all, `refuse`.
struct Job {
    work: Box<dyn FnOnce(&mut DbConn) -> Answer + Send>,
    refuse: Box<dyn FnOnce(&DbError) + Send>,
}

type Answer = Box<dyn FnOnce(Result<(), &DbError>) + Send>;

/// The queue of the writer thread.
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writer thread for `db`.
    pub fn start(db: Db) -> std::io::Result<GroupCommit> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("lectern-group-commit".into())
            .spawn(move || writer(db, queue))?;
        Ok(GroupCommit { jobs })
    }

    /// Runs `f` in the next batch; resolves once that batch is committed (or failed).
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<T, DbError>>();
        // Whichever of the two runs takes the reply.
        let reply = std::sync::Arc::new(std::sync::Mutex::new(Some(reply)));
        let refused = reply.clone();
        let take = |slot: &std::sync::Mutex<Option<_>>| {
            slot.lock().unwrap_or_else(|p| p.into_inner()).take()
        };
        let job = Job {
            work: Box::new(move |conn: &mut DbConn| {
                // A savepoint: a failing job leaves the batch's other jobs untouched.
                let outcome = conn.transaction(|conn| f(conn));
                Box::new(move |committed: Result<(), &DbError>| {
                    let result = match committed {
                        Ok(()) => outcome,
                        Err(e) => Err(copy_of(e)),
                    };
                    if let Some(reply) = take(&reply) {
                        let _ = reply.send(result);
                    }
                }) as Answer
            }),
            refuse: Box::new(move |e: &DbError| {
                if let Some(reply) = take(&refused) {
                    let _ = reply.send(Err(copy_of(e)));
                }
            }),
        };
        self.jobs
            .send(job)
            .map_err(|_| DbError::Task("the group commit writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| DbError::Task("the group commit writer dropped a job".into()))?
    }
}

/// The batch's error for one of its jobs: an unavailable database stays "unavailable" (503 with
/// the input kept), anything else says the write was not committed.
fn copy_of(e: &DbError) -> DbError {
    if e.is_unavailable() {
        DbError::Busy(e.to_string())
    } else {
        DbError::Task(format!("the write was not committed: {e}"))
    }
}

fn writer(db: Db, queue: mpsc::Receiver<Job>) {
    // Ends when every sender (the application) is gone.
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut refusals = Vec::with_capacity(batch.len());
        let mut works = Vec::with_capacity(batch.len());
        for job in batch {
            refusals.push(job.refuse);
            works.push(job.work);
        }
        let mut answers: Vec<Answer> = Vec::with_capacity(works.len());
        let committed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            db.write_blocking(|conn| -> Result<(), DbError> {
                for work in works.drain(..) {
                    answers.push(work(conn));
                }
                Ok(())
            })
        }))
        .unwrap_or_else(|_| Err(DbError::Task("a job of the batch panicked".into())));
        if let Err(e) = &committed {
            tracing::error!(error = %e, jobs = refusals.len(), "a group commit failed");
        }
        let started = answers.len();
        for answer in answers {
            answer(committed.as_ref().map(|_| ()));
        }
        // Jobs that never ran (no connection could be had) hear why.
        if let Err(e) = &committed {
            for refuse in refusals.into_iter().skip(started) {
                refuse(e);
            }
        }
    }
}
