//! A scenario thread's program: its ops under the GIL, the signal handlers it runs, the hot
//! tick loop (its thread's life around them: `worker_thread.rs`).

use super::peer::{recv_once, send_all, sleep_until_or_stop};
use super::Shared;
use crate::beacon::Doing;
use crate::clock::now_ns;
use crate::engine::spin::spin;
use crate::gil::{Gil, ThreadCx};
use crate::log::{Ev, IoOp};
use crate::prim::SemWait;
use crate::return_cost::ReturnCost;
use crate::scenario::{write_offset, Op};
use crate::threading::{Cond, Lock};
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;

/// How a sequence of ops ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The program ended early: the peer closed the stream.
    End,
    /// The run's stop flag was seen.
    Stopped,
}

/// What a worker thread needs besides the shared state.
pub struct Worker<'s> {
    pub iters_per_tick: u32,
    /// The spin chain's running value (see [`spin`]).
    pub chain: u64,
    pub sock: Option<&'s TcpStream>,
    /// The scratch file of `write` ops (`Setup::files`), and where the next write goes.
    pub file: Option<&'s std::fs::File>,
    pub file_at: u64,
    pub buf: Vec<u8>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Signals whose handler this (main) thread has run.
    pub handled: usize,
    /// What the thread spins back from a blocking op ([`Self::come_back`]).
    pub return_cost: &'s ReturnCost,
}

impl Worker<'_> {
    /// Run `ops` in order; the caller holds the GIL.
    pub fn exec<G: Gil>(&mut self, sh: &Shared<G>, cx: &mut ThreadCx, ops: &[Op]) -> Flow {
        for op in ops {
            if sh.stop.load(Relaxed) {
                return Flow::Stopped;
            }
            if cx.main && cx.signal_is_pending() {
                self.run_handlers(sh, cx);
            }
            let flow = match op {
                Op::Cpu { ticks } => {
                    cx.beacon.doing(Doing::Cpu, *ticks);
                    self.cpu(sh, cx, *ticks)
                }
                Op::Native { ticks, call } => {
                    cx.beacon.doing(Doing::Native, *ticks);
                    let op = call.map_or(IoOp::Native, |c| c.io_op());
                    self.native(sh, cx, *ticks, op)
                }
                Op::Held { ticks } => {
                    cx.beacon.doing(Doing::Held, *ticks);
                    self.held(sh, cx, *ticks)
                }
                Op::Sleep { us } => {
                    cx.beacon.doing(Doing::Sleep, *us);
                    let until = now_ns() + (*us as i64) * 1000;
                    let away = self.away();
                    sh.gil.blocking(cx, IoOp::Sleep, || {
                        sleep_until_or_stop(until, &sh.stop);
                        0
                    });
                    self.come_back(sh, cx, away)
                }
                Op::Send { bytes } => {
                    cx.beacon.doing(Doing::Send, *bytes);
                    let sock = self.sock.expect("validated: send has a peer");
                    let n = *bytes as usize;
                    if self.buf.len() < n {
                        self.buf.resize(n, 0x33);
                    }
                    let away = self.away();
                    let buf = &self.buf[..n];
                    let ok = sh.gil.blocking(cx, IoOp::Send, || {
                        if send_all(sock, buf) {
                            n as i64
                        } else {
                            0
                        }
                    });
                    if ok == 0 {
                        Flow::End
                    } else {
                        self.bytes_sent += n as u64;
                        self.come_back(sh, cx, away)
                    }
                }
                Op::Write { bytes, fsync } => {
                    cx.beacon.doing(Doing::Write, *bytes);
                    self.write(sh, cx, *bytes, *fsync)
                }
                Op::Recv { bytes } => {
                    cx.beacon.doing(Doing::Recv, *bytes);
                    let sock = self.sock.expect("validated: recv has a driver");
                    let n = *bytes as usize;
                    if self.buf.len() < n {
                        self.buf.resize(n, 0);
                    }
                    let away = self.away();
                    let buf = &mut self.buf[..n];
                    let got = sh
                        .gil
                        .blocking(cx, IoOp::Recv, || recv_once(sock, buf) as i64);
                    if got == 0 {
                        Flow::End
                    } else {
                        self.bytes_received += got as u64;
                        self.come_back(sh, cx, away)
                    }
                }
                Op::Join { thread } => {
                    let j = sh.index[thread.as_str()];
                    let interruptible = sh.gil.interruptible();
                    let away = self.away();
                    loop {
                        cx.beacon.doing(Doing::Join, j as u64);
                        let r = sh.gil.blocking(cx, IoOp::Join, || loop {
                            // Wait for the thread's exit, then pass the token on to other
                            // joiners. EINTR: 3.2+ returns to run the handler; 2.x retries.
                            match sh.done[j].wait_once() {
                                SemWait::Acquired => {
                                    sh.done[j].post();
                                    return 0;
                                }
                                SemWait::Interrupted if interruptible => return -1,
                                SemWait::Interrupted => {}
                            }
                        });
                        if r == 0 {
                            break;
                        }
                        // Interrupted: with the GIL held again, run the handler, then go
                        // back to waiting (a handler that does not raise).
                        self.run_handlers(sh, cx);
                    }
                    self.come_back(sh, cx, away)
                }
                Op::Acquire { lock } => {
                    let l = sh.lock_index[lock.as_str()];
                    cx.beacon.doing(Doing::Lock, l as u64);
                    let f = self.acquire(sh, cx, &sh.objects.locks[l], IoOp::Lock);
                    sh.gil.tick(cx);
                    f
                }
                Op::Release { lock } => {
                    let l = sh.lock_index[lock.as_str()];
                    cx.beacon.doing(Doing::Lock, l as u64);
                    sh.objects.locks[l].release();
                    sh.gil.tick(cx);
                    Flow::Continue
                }
                Op::Put { queue } => {
                    let q = sh.queue_index[queue.as_str()];
                    cx.beacon.doing(Doing::Put, q as u64);
                    let f = self.queue_op(sh, cx, q, Cond::NotFull);
                    sh.gil.tick(cx);
                    f
                }
                Op::Get { queue } => {
                    let q = sh.queue_index[queue.as_str()];
                    cx.beacon.doing(Doing::Get, q as u64);
                    let f = self.queue_op(sh, cx, q, Cond::NotEmpty);
                    sh.gil.tick(cx);
                    f
                }
                Op::Loop { times, body } => self.repeat(sh, cx, *times, body),
                Op::Hang => {
                    // Test-only: a hang, holding the GIL, that ends only when the run stops.
                    cx.beacon.doing(Doing::Hang, 0);
                    while !sh.stop.load(Relaxed) {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    Flow::Stopped
                }
            };
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    /// `lock.acquire()` as the policy's interpreter does it (`threading.rs`): 3.2+ tries
    /// with the GIL held and releases it only to wait, interruptibly; 2.x always releases it
    /// around a `sem_wait` retried on `EINTR`. `io` names the wait in the log (`lock`, or a
    /// condition wait's `get`/`put`).
    fn acquire<G: Gil>(
        &mut self,
        sh: &Shared<G>,
        cx: &mut ThreadCx,
        lock: &Lock,
        io: IoOp,
    ) -> Flow {
        let py3 = sh.gil.interruptible();
        if py3 && lock.sem.try_wait() {
            // A try can take a post of the stop's (`Objects::wake_all`) as well as a release:
            // after a stop, whatever was taken, the program ends.
            if sh.stop.load(Relaxed) {
                return Flow::Stopped;
            }
            lock.took(cx.idx, false);
            return Flow::Continue;
        }
        let away = self.away();
        loop {
            // 2.x waits whether or not the lock is taken; whether it was is read, for `meta`,
            // with `sem_getvalue` (no call CPython makes, and not counted in `prim`).
            let mut waited = py3;
            let r = sh.gil.blocking(cx, io, || {
                if py3 {
                    match lock.sem.wait_once() {
                        SemWait::Acquired => 0,
                        SemWait::Interrupted => -1,
                    }
                } else {
                    waited = lock.sem.value() <= 0;
                    lock.sem.wait();
                    0
                }
            });
            if sh.stop.load(Relaxed) {
                // Perhaps woken by the stop (`Objects::wake_all`), not by a release.
                return Flow::Stopped;
            }
            if r == 0 {
                lock.took(cx.idx, waited);
                return self.come_back(sh, cx, away);
            }
            // PY_LOCK_INTR: the handlers run with the GIL held, then the non-blocking try.
            self.run_handlers(sh, cx);
            if lock.sem.try_wait() {
                if sh.stop.load(Relaxed) {
                    return Flow::Stopped;
                }
                lock.took(cx.idx, true);
                return Flow::Continue;
            }
        }
    }

    /// A non-blocking `acquire(0)` of a lock that cannot change hands here (`Condition`'s
    /// `_is_owned` test of its held mutex, the first acquire of a fresh waiter lock): 2.x
    /// releases and retakes the GIL around it (`lock_PyThread_acquire_lock` wraps every
    /// acquire in `Py_BEGIN_ALLOW_THREADS`); 3.2+ tries it with the GIL held, no GIL event.
    fn lock_try_2x<G: Gil>(&mut self, sh: &Shared<G>, cx: &mut ThreadCx) -> Flow {
        if !sh.gil.interruptible() {
            let away = self.away();
            sh.gil.blocking(cx, IoOp::Lock, || 0);
            if sh.stop.load(Relaxed) {
                return Flow::Stopped;
            }
            return self.come_back(sh, cx, away);
        }
        Flow::Continue
    }

    /// `q.put(item)` (`c` = `NotFull`) or `q.get()` (`NotEmpty`), as `Lib/queue.py` does them:
    /// take the mutex; while the queue is full (empty), `Condition.wait`; move the item; notify
    /// the other condition (under 2.x, `notify` and `wait` each test the mutex with an
    /// `acquire(0)`, and `wait` takes its fresh waiter lock once before queueing it: GIL
    /// releases of their own, [`Self::lock_try_2x`]); release the mutex.
    fn queue_op<G: Gil>(&mut self, sh: &Shared<G>, cx: &mut ThreadCx, q: usize, c: Cond) -> Flow {
        let queue = &sh.objects.queues[q];
        let f = self.acquire(sh, cx, &queue.mutex, IoOp::Lock);
        if f != Flow::Continue {
            return f;
        }
        loop {
            if sh.stop.load(Relaxed) {
                return Flow::Stopped;
            }
            // Condition.wait's or notify's `_is_owned` (2.x: a GIL release of its own; the mutex
            // stays held, so no other thread changes the queue meanwhile).
            let f = self.lock_try_2x(sh, cx);
            if f != Flow::Continue {
                return f;
            }
            let mut st = queue.state.lock().unwrap_or_else(|e| e.into_inner());
            let must_wait = match c {
                Cond::NotFull => queue.full(&st),
                Cond::NotEmpty => st.items == 0,
            };
            if !must_wait {
                // Nothing else could change it: the mutex is held.
                let other = match c {
                    Cond::NotFull => {
                        st.items += 1;
                        st.puts += 1;
                        st.most_items = st.most_items.max(st.items);
                        cx.event(Ev::Put, q as i64);
                        Cond::NotEmpty
                    }
                    Cond::NotEmpty => {
                        st.items -= 1;
                        st.gets += 1;
                        cx.event(Ev::Got, q as i64);
                        Cond::NotFull
                    }
                };
                let woken = st.notify(other);
                drop(st);
                if let Some(w) = woken {
                    sh.objects.waiters[w as usize].release();
                }
                queue.mutex.release();
                return Flow::Continue;
            }
            // Condition.wait: take a fresh waiter lock (2.x: one more GIL release), queue it,
            // release the mutex, block on the waiter lock until notified, take the mutex again.
            drop(st);
            let f = self.lock_try_2x(sh, cx);
            if f != Flow::Continue {
                return f;
            }
            let mut st = queue.state.lock().unwrap_or_else(|e| e.into_inner());
            st.enqueue(c, cx.idx);
            drop(st);
            queue.mutex.release();
            let io = match c {
                Cond::NotFull => IoOp::Put,
                Cond::NotEmpty => IoOp::Get,
            };
            let f = self.acquire(sh, cx, &sh.objects.waiters[cx.idx as usize], io);
            if f != Flow::Continue {
                return f;
            }
            cx.beacon.doing(
                match c {
                    Cond::NotFull => Doing::Put,
                    Cond::NotEmpty => Doing::Get,
                },
                q as u64,
            );
            let f = self.acquire(sh, cx, &queue.mutex, IoOp::Lock);
            if f != Flow::Continue {
                return f;
            }
        }
    }

    fn repeat<G: Gil>(
        &mut self,
        sh: &Shared<G>,
        cx: &mut ThreadCx,
        times: Option<u64>,
        body: &[Op],
    ) -> Flow {
        let mut k = 0u64;
        while times.is_none_or(|n| k < n) {
            let f = self.exec(sh, cx, body);
            if f != Flow::Continue {
                return f;
            }
            k += 1;
        }
        Flow::Continue
    }

    /// The main thread, holding the GIL at a check point, runs the Python-level handler of
    /// each signal delivered since it last did (`Py_MakePendingCalls`).
    #[cold]
    fn run_handlers<G: Gil>(&mut self, sh: &Shared<G>, cx: &mut ThreadCx) {
        let Some(p) = sh.signals.as_ref() else { return };
        if !p.pending.flag.swap(false, Relaxed) {
            return;
        }
        let delivered = p.pending.count.load(Relaxed) as usize;
        let t0 = sh.t0.load(Relaxed);
        while self.handled < delivered {
            cx.beacon.doing(Doing::Handler, 0);
            let k = self.handled.min(p.specs.len() - 1);
            self.handled += 1;
            cx.event(Ev::Signal, p.pending.delivered_ns.load(Relaxed) - t0);
            cx.event(Ev::Handler, k as i64);
            let _ = self.exec(sh, cx, &p.specs[k].handler);
        }
    }

    /// The hot loop: spin a tick, count it, let the policy check; at check points, look at
    /// the stop flag.
    #[inline(never)]
    fn cpu<G: Gil>(&mut self, sh: &Shared<G>, cx: &mut ThreadCx, ticks: u64) -> Flow {
        let iters = self.iters_per_tick;
        let beacon = cx.beacon; // the tick counter, kept in a register
        let mut x = self.chain;
        for _ in 0..ticks {
            x = spin(iters, x);
            beacon.add_tick();
            if sh.gil.tick(cx) {
                if sh.stop.load(Relaxed) {
                    self.chain = x;
                    return Flow::Stopped;
                }
                if cx.main && cx.signal_is_pending() {
                    self.chain = x;
                    self.run_handlers(sh, cx);
                    cx.beacon.doing(Doing::Cpu, ticks);
                    x = self.chain;
                }
            }
        }
        self.chain = x;
        Flow::Continue
    }

    /// C work with the GIL released (`native`): a blocking call whose body spins `ticks`
    /// calibrated ticks on this core. Its ticks are not the thread's `ticks` (those count work
    /// under the GIL, and add up to the `release` args); each one is a beacon step instead, so
    /// the watchdog sees progress. The stop flag is looked at after every tick.
    fn native<G: Gil>(&mut self, sh: &Shared<G>, cx: &mut ThreadCx, ticks: u64, op: IoOp) -> Flow {
        let iters = self.iters_per_tick;
        let beacon = cx.beacon;
        let mut x = self.chain;
        let mut stopped = false;
        let away = self.away();
        sh.gil.blocking(cx, op, || {
            for _ in 0..ticks {
                x = spin(iters, x);
                beacon.step();
                if sh.stop.load(Relaxed) {
                    stopped = true;
                    break;
                }
            }
            0
        });
        self.chain = x;
        if stopped {
            Flow::Stopped
        } else {
            self.come_back(sh, cx, away)
        }
    }

    /// `write`: `bytes` to the scratch file at the next offset ([`write_offset`]), then
    /// `fdatasync` with `fsync`, the GIL released. A failed write (a
    /// full disk) fails the thread, naming the error.
    fn write<G: Gil>(
        &mut self,
        sh: &Shared<G>,
        cx: &mut ThreadCx,
        bytes: u64,
        fsync: bool,
    ) -> Flow {
        use std::os::unix::fs::FileExt;
        let f = self
            .file
            .expect("Setup::files: a thread that writes has its file");
        let n = bytes as usize;
        if self.buf.len() < n {
            self.buf.resize(n, 0x77);
        }
        let (buf, at) = (&self.buf[..n], write_offset(self.file_at, bytes));
        let mut failed = None;
        let away = self.away();
        sh.gil.blocking(cx, IoOp::Write, || {
            let r = f
                .write_all_at(buf, at)
                .and_then(|()| if fsync { f.sync_data() } else { Ok(()) });
            match r {
                Ok(()) => n as i64,
                Err(e) => {
                    failed = Some(e);
                    0
                }
            }
        });
        if let Some(e) = failed {
            // The thread's error (worker_thread.rs catches it), without the panic hook's print.
            std::panic::resume_unwind(Box::new(format!(
                "write({bytes} bytes) to its scratch file failed: {e}"
            )));
        }
        self.file_at = at + bytes;
        self.come_back(sh, cx, away)
    }

    /// When the thread leaves Python for a blocking op (0, and no clock read, when the
    /// scenario has no [`ReturnCost`]).
    fn away(&self) -> i64 {
        if self.return_cost.is_empty() {
            0
        } else {
            now_ns()
        }
    }

    /// Back from a blocking op that began at `away` ([`Self::away`]), the GIL held again: the
    /// interpreter's extra work after that long away ([`ReturnCost`]), spun with no check
    /// point and counted in the thread's `ticks`. No check point: next to CPU threads on 2
    /// cores, real 2.7's ping p50 stays at its idle value (0.19 against 0.22 ms at k = 1,
    /// docs/validation/many-threads.md); spun with check points, the model's cost was cut
    /// into 100-tick holds that the CPU threads took turns with, and its p50 tripled.
    fn come_back<G: Gil>(&mut self, sh: &Shared<G>, cx: &mut ThreadCx, away: i64) -> Flow {
        if self.return_cost.is_empty() {
            return Flow::Continue;
        }
        let ticks = self.return_cost.ticks(now_ns() - away);
        let (iters, beacon) = (self.iters_per_tick, cx.beacon);
        let mut x = self.chain;
        for _ in 0..ticks {
            x = spin(iters, x);
            beacon.add_tick();
            if sh.stop.load(Relaxed) {
                self.chain = x;
                return Flow::Stopped;
            }
        }
        self.chain = x;
        Flow::Continue
    }

    /// C work that keeps the GIL (`held`): `ticks` calibrated ticks with no check point, then
    /// one step of the policy's countdown, as the one bytecode the call was: the interval GIL
    /// (a check at every step) honours a pending drop request there, the tick GIL's ticker
    /// just moves by one. The ticks are work under the GIL: they count in the thread's `ticks` and its
    /// hold's `release` arg, and move the beacon for the watchdog.
    fn held<G: Gil>(&mut self, sh: &Shared<G>, cx: &mut ThreadCx, ticks: u64) -> Flow {
        let iters = self.iters_per_tick;
        cx.event(Ev::CallBegin, ticks as i64);
        let beacon = cx.beacon;
        let mut x = self.chain;
        let mut done = 0u64;
        while done < ticks {
            x = spin(iters, x);
            beacon.add_tick();
            done += 1;
            if sh.stop.load(Relaxed) {
                break;
            }
        }
        self.chain = x;
        cx.event(Ev::CallEnd, done as i64);
        if done < ticks {
            return Flow::Stopped;
        }
        sh.gil.tick(cx);
        Flow::Continue
    }
}
