/* An LD_PRELOAD timer around the glibc calls a GIL is made of, for benches/pthread_timer.py.

   Each call of pthread_cond_timedwait (entry; return: timed out or not), pthread_cond_signal
   (entry), pthread_mutex_lock (entry, return) and pthread_mutex_unlock (entry) is recorded with
   its CLOCK_MONOTONIC time, thread id, CPU and object address into one preallocated buffer;
   the process writes it to "$PTHREAD_TIMER_OUT.<pid>" when it exits. Nothing is recorded
   unless PTHREAD_TIMER_OUT is set. It interposes on the same calls in CPython (libpython
   calls them through the PLT) and in the model (the Rust core calls libc's), so both sides
   pay the same: about 60 ns a call on the 2-core development VM, plus one shared counter.

   cc -O2 -shared -fPIC -o pthread_timer.so pthread_timer.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { TW_ENTER = 1, TW_TIMEOUT, TW_WOKEN, SIGNAL, LOCK_ENTER, LOCK_RETURN, UNLOCK };

typedef struct {
    int64_t t;
    int tid, kind, cpu;
    void *obj;
} rec_t;

#define CAP (1 << 22)
static rec_t *buf;
static long next;
static __thread int my_tid;
static int (*real_timedwait)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
static int (*real_signal)(pthread_cond_t *);
static int (*real_lock)(pthread_mutex_t *);
static int (*real_unlock)(pthread_mutex_t *);

static inline void rec(int kind, void *obj) {
    if (!buf)
        return;
    if (!my_tid)
        my_tid = (int)syscall(SYS_gettid);
    long i = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
    if (i >= CAP)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    buf[i] = (rec_t){ts.tv_sec * 1000000000LL + ts.tv_nsec, my_tid, kind, sched_getcpu(), obj};
}

__attribute__((constructor)) static void start(void) {
    real_timedwait = dlvsym(RTLD_NEXT, "pthread_cond_timedwait", "GLIBC_2.3.2");
    real_signal = dlvsym(RTLD_NEXT, "pthread_cond_signal", "GLIBC_2.3.2");
    real_lock = dlsym(RTLD_NEXT, "pthread_mutex_lock");
    real_unlock = dlsym(RTLD_NEXT, "pthread_mutex_unlock");
    if (getenv("PTHREAD_TIMER_OUT"))
        buf = calloc(CAP, sizeof(rec_t));
}

__attribute__((destructor)) static void finish(void) {
    if (!buf)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s.%d", getenv("PTHREAD_TIMER_OUT"), (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    long n = next < CAP ? next : CAP;
    for (long i = 0; i < n; i++)
        fprintf(f, "%lld %d %d %d %p\n", (long long)buf[i].t, buf[i].tid, buf[i].kind, buf[i].cpu, buf[i].obj);
    fclose(f);
}

int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *at) {
    rec(TW_ENTER, c);
    int r = real_timedwait(c, m, at);
    rec(r == ETIMEDOUT ? TW_TIMEOUT : TW_WOKEN, c);
    return r;
}

int pthread_cond_signal(pthread_cond_t *c) {
    rec(SIGNAL, c);
    return real_signal(c);
}

int pthread_mutex_lock(pthread_mutex_t *m) {
    rec(LOCK_ENTER, m);
    int r = real_lock(m);
    rec(LOCK_RETURN, m);
    return r;
}

int pthread_mutex_unlock(pthread_mutex_t *m) {
    rec(UNLOCK, m);
    return real_unlock(m);
}
