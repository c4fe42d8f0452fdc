//! Real TCP sockets on loopback between scenario threads and their peers.
//!
//! A peer is a helper thread outside the GIL: a *drain* that reads and discards, or a
//! *driver* that sends at scheduled times and times the replies. Every call is a real system
//! call on the socket (`send` with `MSG_NOSIGNAL`, `recv`), like the interpreter's own.

use crate::clock::now_ns;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// A connected pair: the scenario thread's end and its peer's end.
pub struct Link {
    pub thread_end: TcpStream,
    pub peer_end: TcpStream,
}

impl Link {
    /// Connect two sockets over 127.0.0.1 with `TCP_NODELAY` (ping latency, not batching).
    pub fn tcp() -> io::Result<Link> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let thread_end = TcpStream::connect(l.local_addr()?)?;
        let (peer_end, _) = l.accept()?;
        thread_end.set_nodelay(true)?;
        peer_end.set_nodelay(true)?;
        Ok(Link {
            thread_end,
            peer_end,
        })
    }

    /// Wake both ends: pending and later calls return end-of-stream or `EPIPE`.
    pub fn shutdown(&self) {
        let _ = self.thread_end.shutdown(Shutdown::Both);
    }
}

/// `send` until all of `buf` is gone; `Ok(false)` when the other end is closed.
pub fn send_all(s: &TcpStream, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: valid fd and buffer.
        let n = unsafe {
            libc::send(
                s.as_raw_fd(),
                buf.as_ptr() as *const _,
                buf.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

/// One `recv` into `buf`; 0 at end of stream or on error.
pub fn recv_once(s: &TcpStream, buf: &mut [u8]) -> usize {
    loop {
        // SAFETY: valid fd and buffer.
        let n = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr() as *mut _, buf.len(), 0) };
        if n >= 0 {
            return n as usize;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return 0;
        }
    }
}

/// What a drain read: bytes, and in how many `recv` calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    pub bytes: u64,
    /// `recv` calls that returned data. About one per send when the drain sleeps between
    /// sends (each send wakes it); far fewer when it is kept from running while the sends
    /// pile up in the socket buffer (docs/validation/many-threads.md, "Where the kernel ran
    /// the stream's peers").
    pub reads: u64,
}

/// Read (64 KiB at most per `recv`, as the probes' drain) and discard until end of stream.
pub fn drain(s: &TcpStream) -> Drained {
    let mut buf = vec![0u8; 1 << 16];
    let mut d = Drained::default();
    loop {
        let n = recv_once(s, &mut buf);
        if n == 0 {
            return d;
        }
        d.bytes += n as u64;
        d.reads += 1;
    }
}

/// What one `send` of a byte and the `recv` that reads it cost on a loopback TCP pair, ns:
/// the system calls alone, best of `rounds` rounds of `n` pairs. The calibrate probe times the
/// same pair in the interpreter (`sock_pair_ns`); the difference is the interpreter's own work
/// around the two calls, which an echo's model thread and a model client spin.
pub fn socket_pair_ns(n: u32, rounds: u32) -> io::Result<f64> {
    let link = Link::tcp()?;
    let mut b = [0u8; 1];
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let t = now_ns();
        for _ in 0..n {
            if !send_all(&link.thread_end, b"x") || recv_once(&link.peer_end, &mut b) != 1 {
                return Err(io::Error::other("the loopback pair closed"));
            }
        }
        best = best.min((now_ns() - t) as f64 / n as f64);
    }
    Ok(best)
}

/// One timed ping of a driver: when it was sent (ns since t0) and its round trip (ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ping {
    pub sent_ns: i64,
    pub rtt_ns: i64,
}

/// What a driver sends: `pings` of `bytes` at t0 + k·gap, `reply_bytes` read back after each,
/// `work_ticks` ticks of `iters_per_tick` spin iterations before each (as a `cpu` op spins
/// them, one call a tick, so a tick costs what the calibration says).
#[derive(Clone, Copy, Debug)]
pub struct Pings {
    pub pings: u64,
    pub gap_us: u64,
    pub bytes: u64,
    pub reply_bytes: u64,
    pub work_ticks: u64,
    pub iters_per_tick: u32,
}

/// Send at t0 + k·gap for k = 1..=pings (or at once when late), after the work of each, read
/// the reply, then close the sending side so the thread's `recv` sees end of stream. The work
/// is inside the round trip, as a client's own code between its `recv` and its next `send`
/// is inside its next request's time.
pub fn drive(s: &TcpStream, t0: i64, p: Pings, stop: &AtomicBool) -> Vec<Ping> {
    let Pings {
        pings,
        gap_us,
        bytes,
        reply_bytes,
        work_ticks,
        iters_per_tick,
    } = p;
    let out_buf = vec![0x5au8; bytes as usize];
    let mut in_buf = vec![0u8; reply_bytes.max(1) as usize];
    let mut log = Vec::with_capacity(pings.min(1 << 20) as usize);
    let mut x = super::spin::SEED;
    for k in 1..=pings {
        if !sleep_until_or_stop(t0 + (k * gap_us * 1000) as i64, stop) {
            break;
        }
        let sent = now_ns();
        for i in 0..work_ticks {
            x = super::spin::spin(iters_per_tick, x);
            if i % 1024 == 1023 && stop.load(Relaxed) {
                return log;
            }
        }
        std::hint::black_box(x);
        if !send_all(s, &out_buf) {
            break;
        }
        if reply_bytes > 0 {
            let mut got = 0;
            while got < reply_bytes as usize {
                let n = recv_once(s, &mut in_buf[got..]);
                if n == 0 {
                    return log;
                }
                got += n;
            }
            log.push(Ping {
                sent_ns: sent - t0,
                rtt_ns: now_ns() - sent,
            });
        }
    }
    let _ = s.shutdown(Shutdown::Write);
    log
}

/// Sleep until monotonic time `t`, in slices of at most 10 ms so a stop is seen promptly.
/// Returns false when stopped first.
pub fn sleep_until_or_stop(t: i64, stop: &AtomicBool) -> bool {
    const SLICE: i64 = 10_000_000;
    loop {
        if stop.load(Relaxed) {
            return false;
        }
        let now = now_ns();
        if now >= t {
            return true;
        }
        crate::clock::sleep_until_ns(t.min(now + SLICE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_pair_costs_system_calls_not_nothing() {
        // Two real system calls: more than 100 ns (a folded or skipped loop), under 1 ms.
        let ns = socket_pair_ns(2_000, 3).unwrap();
        assert!((100.0..1e6).contains(&ns), "{ns} ns a pair");
    }

    /// Five pings 1 ms apart answered by an echo on this thread; the driver's round trips.
    fn echo_five(work_ticks: u64, iters_per_tick: u32) -> Vec<Ping> {
        let link = Link::tcp().unwrap();
        let stop = AtomicBool::new(false);
        let t0 = now_ns();
        let p = Pings {
            pings: 5,
            gap_us: 1000,
            bytes: 8,
            reply_bytes: 8,
            work_ticks,
            iters_per_tick,
        };
        std::thread::scope(|s| {
            let d = s.spawn(|| drive(&link.peer_end, t0, p, &stop));
            let mut buf = [0u8; 8];
            let mut n = 0;
            while recv_once(&link.thread_end, &mut buf) == 8 {
                assert!(send_all(&link.thread_end, &buf));
                n += 1;
            }
            assert_eq!(n, 5);
            d.join().unwrap()
        })
    }

    #[test]
    fn driver_pings_are_answered_and_timed() {
        let pings = echo_five(0, 1);
        assert_eq!(pings.len(), 5);
        assert!(pings.iter().all(|p| p.rtt_ns > 0 && p.sent_ns >= 1_000_000));
    }

    #[test]
    fn a_drivers_work_is_inside_each_round_trip() {
        // 3 ms of spin a ping: 100 000 ticks of 30 ns by the calibration (a tick as short as
        // a model tick, so its per-call overhead counts); a spin never runs faster than
        // calibrated by much, so every round trip takes over half of it.
        let iters = super::super::spin::calibration().iters_for(30.0);
        let pings = echo_five(100_000, iters);
        assert_eq!(pings.len(), 5);
        assert!(pings.iter().all(|p| p.rtt_ns > 1_500_000), "{pings:?}");
    }

    #[test]
    fn drain_counts_and_ends_on_shutdown() {
        let link = Link::tcp().unwrap();
        let got = std::thread::scope(|s| {
            let d = s.spawn(|| drain(&link.peer_end));
            for _ in 0..100 {
                assert!(send_all(&link.thread_end, &[1u8; 1024]));
            }
            link.shutdown();
            d.join().unwrap()
        });
        assert_eq!(got.bytes, 100 * 1024);
        assert!((1..=100).contains(&got.reads), "{got:?}");
    }
}
