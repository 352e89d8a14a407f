/* qmqp-load: a closed-loop QMQP load generator and sink, for comparing relays.
 *
 * Team material: this started as the team's reference generator (a small C
 * program shared with the team for measuring relays side by side) and was
 * extended here for `npm run bench` and `npm run soak`: mail counts per
 * client, full-backlog connects counted apart from errors (and waited for
 * in a blocking connect rather than retried in a loop), the generator's own CPU
 * time, an epoll sink that counts what it accepted, and a `hold` mode for slow
 * clients.  The bench builds it at run time (cc -O2 -pthread) into
 * bench/.build/ (git-ignored).
 *
 *   qmqp-load send SOCKET CLIENTS SECONDS MSGBYTES RCPTS [MAILS_PER_CLIENT]
 *     CLIENTS threads, each one connection per mail, the next mail as soon as
 *     the previous one is answered (closed loop), for SECONDS, or until each
 *     client has sent MAILS_PER_CLIENT mails (then SECONDS is only the time
 *     limit).  Prints one line of key=value: mails, errors, non_K,
 *     backlog_full (mails whose connect found the listen backlog full: a
 *     non-blocking connect got EAGAIN; the client then waits in a blocking
 *     connect, as ordinary clients do, instead of spinning), seconds,
 *     mails_per_s, MB_per_s, p50/p90/p99/max latency in ms (connect to answer),
 *     cpu_us (this process's user+system time).
 *   qmqp-load sink SOCKET
 *     Answers every complete request with "3:Kok," (anything else with a
 *     D answer); on SIGTERM or SIGINT prints "mails=N bad=N bytes=N" and exits.
 *   qmqp-load hold SOCKET CONNS SECONDS INTERVAL ANNOUNCE
 *     Opens CONNS connections that each send "ANNOUNCE:" and then one byte
 *     every INTERVAL seconds, for SECONDS (a slow client holding a request
 *     open).  Prints opened, connect_failed, closed_by_server (with an answer
 *     or without), still_open and the first answer seen.
 * SOCKET is a Unix socket path.  Every loop is bounded by SECONDS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *path;
static char *req;
static size_t req_len;
static volatile int stop;
static double deadline;
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static struct sockaddr_un address(void) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strncpy(a.sun_path, path, sizeof a.sun_path - 1);
  return a;
}

/* A connected blocking socket, or -1.  When the listen backlog is full (a
 * non-blocking connect fails with EAGAIN) this is counted in *waits and the
 * client then waits in a blocking connect, as ordinary clients do (the kernel
 * wakes it when the server accepts), in steps of 1 s until the deadline. */
static int dial(long *waits) {
  struct sockaddr_un a = address();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (connect(fd, (void *)&a, sizeof a) == 0) {
    fcntl(fd, F_SETFL, 0);
    return fd;
  }
  int e = errno;
  close(fd);
  errno = e;
  if (e != EAGAIN) return -1;
  (*waits)++;
  while (!stop && now() < deadline) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval step = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &step, sizeof step);
    if (connect(fd, (void *)&a, sizeof a) == 0) {
      struct timeval none = {0};
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
      return fd;
    }
    e = errno;
    close(fd);
    errno = e;
    if (e != EAGAIN && e != EINTR) return -1;
  }
  return -1;
}

static size_t ns(char *o, const char *p, size_t n) {
  int h = sprintf(o, "%zu:", n);
  memcpy(o + h, p, n);
  o[h + n] = ',';
  return h + n + 1;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double cpu_us(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}

/* ---- send ---- */

typedef struct {
  long n, errs, bad, waited, limit;
  double *lat;
  long cap;
  char first_bad[64];
} stat_t;

static void note_bad(stat_t *s, const char *text) {
  if (s->first_bad[0] == 0) snprintf(s->first_bad, sizeof s->first_bad, "%.63s", text);
}

static void *worker(void *arg) {
  stat_t *s = arg;
  char buf[512];
  while (!stop && (s->limit == 0 || s->n + s->errs < s->limit)) {
    double t0 = now();
    int fd = dial(&s->waited);
    if (fd < 0) {
      if (stop || now() > deadline) break;
      s->errs++;
      note_bad(s, strerror(errno));
      usleep(1000);
      continue;
    }
    struct timeval tv = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t off = 0;
    int ok = 1;
    while (off < req_len) {
      ssize_t w = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
      if (w <= 0) {
        ok = 0;
        break;
      }
      off += w;
    }
    size_t got = 0;
    ssize_t r;
    while (ok && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0) {
      got += r;
      if (got >= sizeof buf - 1) break;
    }
    close(fd);
    buf[got] = 0;
    char *c = strchr(buf, ':');
    if (!ok || !c) {
      s->errs++;
      note_bad(s, ok ? (got ? buf : "no answer") : "write failed");
      continue;
    }
    if (c[1] != 'K') {
      s->bad++;
      note_bad(s, buf);
    }
    if (s->n < s->cap) s->lat[s->n] = now() - t0;
    s->n++;
  }
  return NULL;
}

static int cmd_send(int argc, char **argv) {
  path = argv[2];
  int th = atoi(argv[3]);
  double secs = atof(argv[4]);
  size_t mb = strtoul(argv[5], 0, 10);
  int nr = atoi(argv[6]);
  long per_client = argc > 7 ? atol(argv[7]) : 0;
  if (th < 1 || secs <= 0 || nr < 1) return 2;
  char *msg = malloc(mb + 64);
  int h = sprintf(msg, "Subject: load\n\n");
  memset(msg + h, 'x', mb > (size_t)h ? mb - h : 0);
  size_t ml = mb > (size_t)h ? mb : (size_t)h;
  for (size_t i = 80; i < ml; i += 80) msg[i] = '\n';
  char *inner = malloc(ml + 64 + nr * 64);
  size_t il = ns(inner, msg, ml);
  il += ns(inner + il, "sender@example.com", 18);
  for (int i = 0; i < nr; i++) {
    char r[64];
    int n = sprintf(r, "rcpt%d@example.com", i);
    il += ns(inner + il, r, n);
  }
  req = malloc(il + 32);
  req_len = ns(req, inner, il);

  pthread_t *t = calloc(th, sizeof *t);
  stat_t *s = calloc(th, sizeof *s);
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, 1 << 16);
  double c0 = cpu_us();
  double t0 = now();
  deadline = t0 + secs;
  int started = 0;
  for (int i = 0; i < th; i++) {
    s[i].cap = 2000000 / th + 16;
    s[i].lat = malloc(s[i].cap * sizeof(double));
    s[i].limit = per_client;
    if (pthread_create(&t[i], &at, worker, &s[i]) != 0) break;
    started++;
  }
  /* until the deadline, or until every client is done (per-client counts) */
  while (now() < deadline) {
    if (per_client > 0) {
      long done = 0;
      for (int i = 0; i < started; i++) done += s[i].n + s[i].errs;
      if (done >= per_client * started) break;
    }
    usleep(2000);
  }
  stop = 1;
  for (int i = 0; i < started; i++) pthread_join(t[i], 0);
  double el = now() - t0;
  double cpu = cpu_us() - c0;
  long n = 0, e = 0, bad = 0, m = 0, waited = 0;
  const char *first_bad = "";
  for (int i = 0; i < started; i++) {
    n += s[i].n;
    e += s[i].errs;
    bad += s[i].bad;
    waited += s[i].waited;
    if (!first_bad[0] && s[i].first_bad[0]) first_bad = s[i].first_bad;
  }
  double *all = malloc(sizeof(double) * (n + 1));
  for (int i = 0; i < started; i++) {
    long k = s[i].n < s[i].cap ? s[i].n : s[i].cap;
    memcpy(all + m, s[i].lat, k * sizeof(double));
    m += k;
  }
  qsort(all, m, sizeof(double), cmpd);
#define PCT(p) (m ? all[(long)((m - 1) * (p))] * 1e3 : 0)
  char quoted[80];
  size_t q = 0;
  for (const char *p = first_bad; *p && q < sizeof quoted - 1; p++) quoted[q++] = (*p >= 0x21 && *p < 0x7f) ? *p : '_';
  quoted[q] = 0;
  printf("mails=%ld errors=%ld non_K=%ld backlog_full=%ld clients=%d seconds=%.3f mails_per_s=%.1f "
         "MB_per_s=%.2f request_bytes=%zu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f cpu_us=%.0f first_bad=%s\n",
         n, e, bad, waited, started, el, n / el, n * (double)req_len / el / 1e6, req_len, PCT(0.5), PCT(0.9), PCT(0.99),
         PCT(1.0), cpu, q ? quoted : "-");
  return started == th ? 0 : 1;
}

/* ---- sink ---- */

/* The sink answers from SINK_THREADS threads, each with an epoll set of its
 * own that holds the listening socket (EPOLLEXCLUSIVE: one thread is woken
 * per burst of connections) and the connections that thread accepted: a
 * few µs of CPU per mail, so that the sink takes as little as possible of
 * the cores the relays under test share with it (a thread per connection
 * cost ~0.2-0.35 ms of CPU per mail here, more than the generator). */
#define SINK_THREADS 2
#define SINK_ACCEPTS_PER_WAKE 32

static long sink_mails, sink_bad, sink_bytes;
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
  int fd;
  int complete;
  char head[24];
  size_t hl;
  long need, got;
} sink_conn_t;

/* Answers, closes and counts a connection that is done (complete, or not). */
static void sink_finish(sink_conn_t *c) {
  const char *resp = c->complete ? "3:Kok," : "12:Dbad request,";
  if (send(c->fd, resp, strlen(resp), MSG_NOSIGNAL) < 0) {
  }
  close(c->fd);
  pthread_mutex_lock(&sink_lock);
  if (c->complete) sink_mails++; else sink_bad++;
  sink_bytes += c->got;
  pthread_mutex_unlock(&sink_lock);
  free(c);
}

/* Reads what is there; returns 1 when the connection is done (the request
 * complete, malformed, or the peer gone), 0 to wait for more. */
static int sink_read(sink_conn_t *c, char *b, size_t size) {
  for (;;) {
    ssize_t r = read(c->fd, b, size);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return 0;
    if (r <= 0) return 1;
    for (ssize_t i = 0; c->need < 0 && i < r && c->hl < sizeof c->head - 1; i++) {
      c->head[c->hl++] = b[i];
      if (b[i] == ':') {
        c->head[c->hl] = 0;
        c->need = strtol(c->head, NULL, 10) + (long)c->hl + 1;
      }
    }
    if (c->need < 0 && c->hl >= sizeof c->head - 1) return 1;
    c->got += r;
    if (c->need >= 0 && c->got >= c->need) {
      c->complete = c->got == c->need && b[r - 1] == ',';
      return 1;
    }
  }
}

static void *sink_loop(void *arg) {
  int l = (int)(long)arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0) {
    perror("sink epoll");
    _exit(1);
  }
  char b[65536];
  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(ep, events, 64, -1);
    for (int i = 0; i < n; i++) {
      sink_conn_t *c = events[i].data.ptr;
      if (c != NULL) {
        if (sink_read(c, b, sizeof b)) sink_finish(c); /* close() removes it from the set */
        continue;
      }
      for (int k = 0; k < SINK_ACCEPTS_PER_WAKE; k++) {
        int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
          if (errno == EMFILE || errno == ENFILE) usleep(1000);
          break;
        }
        c = calloc(1, sizeof *c);
        c->fd = fd;
        c->need = -1;
        struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce) < 0) {
          close(fd);
          free(c);
        }
      }
    }
  }
  return NULL;
}

static int cmd_sink(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by every thread */
  signal(SIGPIPE, SIG_IGN);
  unlink(path);
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = address();
  if (bind(l, (void *)&a, sizeof a) < 0 || listen(l, 4096) < 0) {
    perror("sink");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  fcntl(l, F_SETFL, O_NONBLOCK);
  for (int i = 0; i < SINK_THREADS; i++) {
    pthread_t t;
    pthread_create(&t, NULL, sink_loop, (void *)(long)l);
  }
  int sig;
  sigwait(&set, &sig);
  unlink(path);
  pthread_mutex_lock(&sink_lock);
  printf("mails=%ld bad=%ld bytes=%ld cpu_us=%.0f\n", sink_mails, sink_bad, sink_bytes, cpu_us());
  fflush(stdout);
  _exit(0);
}

/* ---- hold ---- */

static int cmd_hold(int argc, char **argv) {
  if (argc < 7) return 2;
  path = argv[2];
  int conns = atoi(argv[3]);
  double secs = atof(argv[4]), interval = atof(argv[5]);
  const char *announce = argv[6];
  if (conns < 1 || secs <= 0 || interval <= 0) return 2;
  signal(SIGPIPE, SIG_IGN);
  double t0 = now();
  deadline = t0 + secs;
  int *fd = calloc(conns, sizeof *fd);
  long waits = 0, opened = 0, failed = 0, answered = 0, dropped = 0;
  char first[64] = "";
  char head[32];
  int hl = snprintf(head, sizeof head, "%s:", announce);
  for (int i = 0; i < conns; i++) {
    fd[i] = dial(&waits);
    if (fd[i] < 0) {
      failed++;
      continue;
    }
    opened++;
    if (send(fd[i], head, hl, MSG_NOSIGNAL | MSG_DONTWAIT) != hl) {
      close(fd[i]);
      fd[i] = -1;
      dropped++;
    }
  }
  struct pollfd *p = calloc(conns, sizeof *p);
  double next = now() + interval;
  while (now() < deadline) {
    int n = 0;
    for (int i = 0; i < conns; i++) {
      p[i].fd = fd[i]; /* negative fds are ignored by poll */
      p[i].events = POLLIN;
      if (fd[i] >= 0) n++;
    }
    if (n == 0) break;
    double until = next < deadline ? next : deadline;
    int ms = (int)((until - now()) * 1000) + 1;
    if (poll(p, conns, ms > 0 ? ms : 0) > 0) {
      for (int i = 0; i < conns; i++) {
        if (fd[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char b[128];
        ssize_t r = recv(fd[i], b, sizeof b - 1, MSG_DONTWAIT);
        if (r > 0) {
          b[r] = 0;
          answered++;
          if (!first[0]) snprintf(first, sizeof first, "%.63s", b);
        } else {
          dropped++;
        }
        close(fd[i]);
        fd[i] = -1;
      }
    }
    if (now() >= next) {
      next += interval;
      for (int i = 0; i < conns; i++) {
        if (fd[i] >= 0 && send(fd[i], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1 && errno != EAGAIN) {
          close(fd[i]);
          fd[i] = -1;
          dropped++;
        }
      }
    }
  }
  long still = 0;
  for (int i = 0; i < conns; i++)
    if (fd[i] >= 0) {
      still++;
      close(fd[i]);
    }
  for (char *c = first; *c; c++)
    if (*c <= 0x20 || *c >= 0x7f) *c = '_';
  printf("opened=%ld connect_failed=%ld backlog_full=%ld answered=%ld dropped_without_answer=%ld still_open=%ld seconds=%.3f "
         "first_answer=%s\n",
         opened, failed, waits, answered, dropped, still, now() - t0, first[0] ? first : "-");
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "sink")) {
    path = argv[2];
    return cmd_sink();
  }
  if (argc >= 7 && !strcmp(argv[1], "hold")) return cmd_hold(argc, argv);
  if (argc >= 7 && !strcmp(argv[1], "send")) return cmd_send(argc, argv);
  fprintf(stderr,
          "usage: qmqp-load send SOCKET CLIENTS SECONDS MSGBYTES RCPTS [MAILS_PER_CLIENT]\n"
          "       qmqp-load sink SOCKET\n"
          "       qmqp-load hold SOCKET CONNS SECONDS INTERVAL ANNOUNCE\n");
  return 2;
}
