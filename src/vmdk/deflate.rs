//! A pool of deflate workers that lives as long as a stream: grains go in
//! as they are filled, come out compressed in the order they went in, and
//! at most a fixed number are in flight, so memory stays bounded while
//! compression overlaps reading and writing.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A grain to compress: its place in the order, its data.
type Job = (u64, Vec<u8>);
/// A compressed grain: its place, the deflated bytes, and the input buffer
/// back for reuse.
type Done = (u64, Vec<u8>, Vec<u8>);

/// Grains in flight per worker (queued, being compressed, or waiting for
/// an earlier one to come out).
const PER_WORKER: usize = 32;

pub struct DeflatePool {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    /// Results that came back before an earlier one.
    early: BTreeMap<u64, Vec<u8>>,
    /// Input buffers to fill again.
    spare: Vec<Vec<u8>>,
    next_in: u64,
    next_out: u64,
    limit: u64,
}

impl DeflatePool {
    /// Start `threads` workers deflating (zlib format) at `level`.
    pub fn new(level: i32, threads: usize) -> DeflatePool {
        let threads = threads.max(1);
        let limit = (threads * PER_WORKER) as u64;
        let (jobs, queue) = mpsc::sync_channel::<Job>(limit as usize);
        let (done_tx, done) = mpsc::channel::<Done>();
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads)
            .map(|_| {
                let queue = Arc::clone(&queue);
                let done: Sender<Done> = done_tx.clone();
                std::thread::spawn(move || {
                    let lvl = libdeflater::CompressionLvl::new(level).unwrap_or_default();
                    let mut z = libdeflater::Compressor::new(lvl);
                    loop {
                        // The lock is held only while taking a job.
                        let job = queue.lock().map(|q| q.recv());
                        let Ok(Ok((seq, data))) = job else { return };
                        let mut out = vec![0u8; z.zlib_compress_bound(data.len())];
                        let n = z
                            .zlib_compress(&data, &mut out)
                            .expect("the output buffer is at least the compress bound");
                        out.truncate(n);
                        if done.send((seq, out, data)).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        DeflatePool {
            jobs: Some(jobs),
            done,
            workers,
            early: BTreeMap::new(),
            spare: Vec::new(),
            next_in: 0,
            next_out: 0,
            limit,
        }
    }

    /// A buffer of `len` bytes to fill, reused when one came back.
    pub fn buffer(&mut self, len: usize) -> Vec<u8> {
        match self.spare.pop() {
            Some(mut b) => {
                b.clear();
                b.resize(len, 0);
                b
            }
            None => vec![0u8; len],
        }
    }

    /// Queue `data`; returns the results ready in order (waiting for the
    /// oldest while the pool is full), for the caller to write out.
    pub fn submit(&mut self, data: Vec<u8>) -> Vec<Vec<u8>> {
        let mut ready = Vec::new();
        while self.next_in - self.next_out >= self.limit {
            ready.push(self.wait_next());
        }
        let jobs = self.jobs.as_ref().expect("the pool is open");
        jobs.send((self.next_in, data))
            .expect("the workers live as long as the pool");
        self.next_in += 1;
        while let Some(next) = self.try_next() {
            ready.push(next);
        }
        ready
    }

    /// Every result still in flight, in order.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut ready = Vec::new();
        while self.next_out < self.next_in {
            ready.push(self.wait_next());
        }
        ready
    }

    /// The next result in order, if it has come back.
    fn try_next(&mut self) -> Option<Vec<u8>> {
        while let Ok(done) = self.done.try_recv() {
            self.keep(done);
        }
        self.take_next()
    }

    /// The next result in order, waiting for it.
    fn wait_next(&mut self) -> Vec<u8> {
        loop {
            if let Some(next) = self.take_next() {
                return next;
            }
            let done = self
                .done
                .recv()
                .expect("the workers live as long as the pool");
            self.keep(done);
        }
    }

    fn keep(&mut self, (seq, compressed, input): Done) {
        self.early.insert(seq, compressed);
        if self.spare.len() < PER_WORKER {
            self.spare.push(input);
        }
    }

    fn take_next(&mut self) -> Option<Vec<u8>> {
        let next = self.early.remove(&self.next_out)?;
        self.next_out += 1;
        Some(next)
    }
}

impl Drop for DeflatePool {
    fn drop(&mut self) {
        // Closing the queue ends the workers.
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grains_come_out_compressed_in_the_order_they_went_in() {
        let mut pool = DeflatePool::new(6, 3);
        let mut out = Vec::new();
        for i in 0..500u32 {
            let mut data = pool.buffer(65536);
            // Some grains compress far worse than others, so workers
            // finish out of order.
            for (k, b) in data.iter_mut().enumerate() {
                *b = match i % 3 {
                    0 => ((k as u32).wrapping_mul(2654435761) >> 13) as u8 ^ i as u8,
                    _ => i as u8,
                };
            }
            out.extend(pool.submit(data));
        }
        out.extend(pool.drain());
        assert_eq!(out.len(), 500);
        let mut d = libdeflater::Decompressor::new();
        for (i, c) in out.iter().enumerate() {
            let mut plain = vec![0u8; 65536];
            d.zlib_decompress(c, &mut plain).unwrap();
            assert_eq!(plain[0], i as u8, "grain {i}");
        }
    }
}
