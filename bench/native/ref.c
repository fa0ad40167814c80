// Native reference for `npm run bench`: a minimal connection-per-transaction
// server and client, single-threaded epoll each, speaking sockspike's
// built-in protocol (harness/payload.ts): a request of Q bytes whose first
// min(6, Q) bytes are the transaction number (u32 LE) and the exchange
// number (u16 LE), then the pattern (i * 7 + 13) & 0xff; an answer of R
// bytes: the request's first min(6, Q, R) bytes, then the same pattern.
// Close variants as the built-in pair: client-fin, client-rst (SO_LINGER
// {1,0} on the client), server-fin (the server shuts down its side after
// the last answer, the client closes on EOF), server-rst (SO_LINGER {1,0}
// on the listener, inherited by accepted sockets).
//
//   ref server [-H host] [-p port] [-q Q] [-r R] [-e E] [-m close] [-b backlog]
//       prints "listening PORT" then serves until SIGTERM/SIGINT
//   ref client -p port [-H host] [-q Q] [-r R] [-e E] [-m close] [-c conc] [-d seconds] [-n max]
//       prints one JSON line: attempted, ok, failed, elapsedS, tps, cpuS
//       (utime+stime from /proc/self/stat over the load), p50Us, p99Us, errors
//   ref probe [-i interval_ms] [-d seconds] [-P pid]...
//       the probe reference: reads the /proc files sockspike's sampler reads
//       (system-wide, and stat/status/schedstat of each pid) every interval,
//       each opened once and re-read with pread, on an absolute schedule;
//       prints one JSON line: samples, seconds, cpuS, cpuPct (of one core, getrusage)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { CLIENT_FIN, CLIENT_RST, SERVER_FIN, SERVER_RST };
#define HEADER 6
#define MAXFD 65536

static const char *host = "127.0.0.1";
static int port = 0, Q = 3000, R = 3000, E = 2, mode = CLIENT_FIN, backlog = 128;
static int conc = 1;
static double duration = 3;
static long maxTxn = 0;
static unsigned char *pattern; // max(Q, R) bytes of the pattern
static unsigned char rbuf[1 << 16];

static void die(const char *what) {
  perror(what);
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_mode(const char *s) {
  if (!strcmp(s, "client-fin")) return CLIENT_FIN;
  if (!strcmp(s, "client-rst")) return CLIENT_RST;
  if (!strcmp(s, "server-fin")) return SERVER_FIN;
  if (!strcmp(s, "server-rst")) return SERVER_RST;
  fprintf(stderr, "unknown close mode %s\n", s);
  exit(2);
}

static void set_linger0(int fd) {
  struct linger l = {1, 0};
  if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) < 0) die("SO_LINGER");
}

static void stamp(unsigned char *b, uint32_t seq, uint32_t ex, int limit) {
  int n = limit < HEADER ? limit : HEADER;
  for (int i = 0; i < n; i++) b[i] = i < 4 ? (seq >> (8 * i)) & 0xff : (ex >> (8 * (i - 4))) & 0xff;
}

static struct sockaddr_in addr_of(void) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
    fprintf(stderr, "bad IPv4 address %s\n", host);
    exit(2);
  }
  return a;
}

// ---------------------------------------------------------------- server

struct sconn {
  int got;              // bytes of the current request read
  int out;              // bytes of the current answer written (-1: none pending)
  int exchanges;        // answers completed
  int finSent;          // server-fin: our side shut down
  unsigned char head[HEADER];
  unsigned char answer[HEADER];
};
static struct sconn *sconns;
static volatile sig_atomic_t stopping;
static void on_stop(int sig) { (void)sig; stopping = 1; }

static void sclose(int ep, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd); // with server-rst the inherited SO_LINGER {1,0} makes this an RST
}

// Write the pending answer; returns 0 when done, 1 when blocked, -1 on error.
static int sflush(int fd, struct sconn *c) {
  int hn = Q < R ? Q : R;
  if (hn > HEADER) hn = HEADER;
  while (c->out < R) {
    ssize_t w;
    if (c->out < hn) {
      // head bytes (copied from the request) then the pattern, in one writev-free step
      unsigned char tmp[HEADER];
      memcpy(tmp, c->answer, hn);
      struct iovec iov[2] = {{tmp + c->out, hn - c->out}, {pattern + hn, R - hn}};
      struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
      w = sendmsg(fd, &m, MSG_NOSIGNAL);
    } else
      w = send(fd, pattern + c->out, R - c->out, MSG_NOSIGNAL);
    if (w < 0) return errno == EAGAIN ? 1 : -1;
    c->out += w;
  }
  c->out = -1;
  return 0;
}

static void sanswered(int ep, int fd, struct sconn *c) {
  c->exchanges++;
  if (mode == SERVER_FIN && c->exchanges == E) {
    shutdown(fd, SHUT_WR);
    c->finSent = 1;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static void sread(int ep, int fd) {
  struct sconn *c = &sconns[fd];
  for (;;) {
    ssize_t n = recv(fd, rbuf, sizeof rbuf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN)) return sclose(ep, fd); // EOF, or reset by the client
    if (n < 0) return;
    for (ssize_t off = 0; off < n;) {
      int take = Q - c->got < n - off ? Q - c->got : (int)(n - off);
      for (int i = c->got; i < HEADER && i < c->got + take; i++) c->head[i] = rbuf[off + i - c->got];
      c->got += take;
      off += take;
      if (c->got == Q) {
        c->got = 0;
        memcpy(c->answer, c->head, HEADER);
        c->out = 0;
        int r = sflush(fd, c);
        if (r < 0) return sclose(ep, fd);
        if (r > 0) {
          struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
          epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
          return; // no pipelining in this protocol: the rest waits
        }
        sanswered(ep, fd, c);
      }
    }
  }
}

static int run_server(void) {
  signal(SIGTERM, on_stop);
  signal(SIGINT, on_stop);
  signal(SIGPIPE, SIG_IGN);
  sconns = calloc(MAXFD, sizeof *sconns);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (mode == SERVER_RST) set_linger0(lfd);
  struct sockaddr_in a = addr_of();
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(lfd, backlog) < 0) die("listen");
  socklen_t al = sizeof a;
  getsockname(lfd, (struct sockaddr *)&a, &al);
  printf("listening %d\n", ntohs(a.sin_port));
  fflush(stdout);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event evs[256];
  while (!stopping) {
    int n = epoll_wait(ep, evs, 256, 200);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        int c;
        while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          if (c >= MAXFD) {
            close(c);
            continue;
          }
          memset(&sconns[c], 0, sizeof sconns[c]);
          sconns[c].out = -1;
          struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
      } else if (sconns[fd].out >= 0) {
        int r = sflush(fd, &sconns[fd]);
        if (r < 0) sclose(ep, fd);
        else if (r == 0) sanswered(ep, fd, &sconns[fd]);
      } else
        sread(ep, fd);
    }
  }
  return 0;
}

// ---------------------------------------------------------------- client

enum { IDLE, CONNECTING, SENDING, READING, AWAIT_EOF };
struct slot {
  int fd, phase, exchange, got, sent;
  uint32_t seq;
  double start;
  unsigned char req[HEADER], exp[HEADER];
};
static struct slot *slots;
static long attempted, ok, failed, nlat, caplat;
static float *lat; // µs, ok transactions
static long errs[256];
static double tFirst = -1, tLast, stopAt;
static uint32_t nextSeq;
static struct sockaddr_in target;
static int cep;

static double cpu_s(void) {
  char b[1024];
  FILE *f = fopen("/proc/self/stat", "r");
  if (!f) return -1;
  size_t n = fread(b, 1, sizeof b - 1, f);
  fclose(f);
  b[n] = 0;
  char *p = strrchr(b, ')');
  unsigned long ut = 0, st = 0;
  // fields after ") ": state(3) ... utime(14) stime(15)
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
  return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

static void cstart(struct slot *s);

static void cend(struct slot *s, int err) {
  epoll_ctl(cep, EPOLL_CTL_DEL, s->fd, NULL);
  if (!err && mode == CLIENT_RST) set_linger0(s->fd);
  close(s->fd);
  // the end is "close done", as sockspike's records have it (endUs): the close is part of a transaction
  double t = now_s();
  s->fd = -1;
  s->phase = IDLE;
  tLast = t;
  if (err) {
    failed++;
    errs[err & 0xff]++;
  } else {
    ok++;
    if (nlat == caplat) {
      caplat = caplat ? caplat * 2 : 1 << 16;
      lat = realloc(lat, caplat * sizeof *lat);
      if (!lat) die("realloc");
    }
    lat[nlat++] = (t - s->start) * 1e6;
  }
  if (t < stopAt && (maxTxn == 0 || attempted < maxTxn)) cstart(s);
}

static void cwatch(struct slot *s, int op, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = s};
  if (epoll_ctl(cep, op, s->fd, &ev) < 0) die("epoll_ctl");
}

static void csend(struct slot *s) {
  int hn = Q < HEADER ? Q : HEADER;
  while (s->sent < Q) {
    ssize_t w;
    if (s->sent < hn) {
      struct iovec iov[2] = {{s->req + s->sent, hn - s->sent}, {pattern + hn, Q - hn}};
      struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
      w = sendmsg(s->fd, &m, MSG_NOSIGNAL);
    } else
      w = send(s->fd, pattern + s->sent, Q - s->sent, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN) {
        if (s->phase != SENDING) cwatch(s, EPOLL_CTL_MOD, EPOLLOUT);
        s->phase = SENDING;
        return;
      }
      return cend(s, errno);
    }
    s->sent += w;
  }
  if (s->phase != READING) cwatch(s, EPOLL_CTL_MOD, EPOLLIN);
  s->phase = READING;
}

static void cexchange(struct slot *s) {
  stamp(s->req, s->seq, s->exchange, HEADER);
  stamp(s->exp, s->seq, s->exchange, Q < R ? Q : R);
  s->sent = 0;
  s->got = 0;
  csend(s);
}

static void cstart(struct slot *s) {
  double t = now_s();
  if (tFirst < 0) tFirst = t;
  attempted++;
  s->seq = nextSeq++;
  s->start = t;
  s->exchange = 0;
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0) {
    failed++;
    errs[errno & 0xff]++;
    return; // the slot stays idle
  }
  int r = connect(s->fd, (struct sockaddr *)&target, sizeof target);
  if (r < 0 && errno != EINPROGRESS) {
    int e = errno;
    s->phase = CONNECTING;
    cwatch(s, EPOLL_CTL_ADD, EPOLLOUT);
    return cend(s, e);
  }
  s->phase = CONNECTING;
  cwatch(s, EPOLL_CTL_ADD, EPOLLOUT);
}

static void cevent(struct slot *s) {
  if (s->phase == CONNECTING) {
    int e = 0;
    socklen_t l = sizeof e;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &l);
    if (e) return cend(s, e);
    s->phase = SENDING;
    return cexchange(s);
  }
  if (s->phase == SENDING) return csend(s);
  for (;;) {
    ssize_t n = recv(s->fd, rbuf, sizeof rbuf, 0);
    if (n < 0) {
      if (errno == EAGAIN) return;
      return cend(s, errno);
    }
    if (s->phase == AWAIT_EOF) return cend(s, n == 0 ? 0 : EPROTO); // bytes nobody asked for
    if (n == 0) return cend(s, EPIPE); // short answer
    if (s->got + n > R) return cend(s, EPROTO);
    int hn = Q < R ? Q : R;
    if (hn > HEADER) hn = HEADER;
    for (ssize_t i = 0; i < n; i++) {
      int at = s->got + i;
      if (rbuf[i] != (at < hn ? s->exp[at] : pattern[at])) return cend(s, EPROTO);
    }
    s->got += n;
    if (s->got < R) continue;
    if (++s->exchange < E) {
      cexchange(s);
      if (s->phase != READING) return;
      continue;
    }
    if (mode == SERVER_FIN) {
      s->phase = AWAIT_EOF;
      continue;
    }
    return cend(s, 0);
  }
}

static int cmpf(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

static double pct(double p) {
  if (nlat == 0) return 0;
  long i = (long)(p / 100 * nlat);
  return lat[i >= nlat ? nlat - 1 : i];
}

static int run_client(void) {
  signal(SIGPIPE, SIG_IGN);
  target = addr_of();
  cep = epoll_create1(EPOLL_CLOEXEC);
  slots = calloc(conc, sizeof *slots);
  double cpu0 = cpu_s();
  double t0 = now_s();
  stopAt = t0 + duration;
  for (int i = 0; i < conc; i++) {
    slots[i].fd = -1;
    if (maxTxn == 0 || attempted < maxTxn) cstart(&slots[i]);
  }
  struct epoll_event evs[256];
  double hardStop = stopAt + 10; // in flight at the end: 10 s to finish, then counted as failed
  for (;;) {
    int busy = 0;
    for (int i = 0; i < conc; i++) busy += slots[i].phase != IDLE;
    if (!busy) break;
    if (now_s() > hardStop) {
      for (int i = 0; i < conc; i++)
        if (slots[i].phase != IDLE) stopAt = 0, cend(&slots[i], ETIMEDOUT);
      break;
    }
    int n = epoll_wait(cep, evs, 256, 100);
    for (int i = 0; i < n; i++) cevent(evs[i].data.ptr);
  }
  double cpu1 = cpu_s();
  double el = tLast - tFirst;
  qsort(lat, nlat, sizeof *lat, cmpf);
  printf("{\"attempted\":%ld,\"ok\":%ld,\"failed\":%ld,\"elapsedS\":%.6f,\"tps\":%.1f,\"cpuS\":%.3f,\"p50Us\":%.1f,\"p99Us\":%.1f,\"errors\":{",
         attempted, ok, failed, el, el > 0 ? ok / el : 0, cpu1 - cpu0, pct(50), pct(99));
  int first = 1;
  for (int e = 0; e < 256; e++)
    if (errs[e]) printf("%s\"%s\":%ld", first ? "" : ",", e == EPROTO ? "bad-response" : strerrorname_np(e), errs[e]), first = 0;
  printf("}}\n");
  return 0;
}

// ---------------------------------------------------------------- probe

static const char *probeFiles[] = {"/proc/stat", "/proc/pressure/cpu", "/proc/pressure/io", "/proc/pressure/memory",
                                   "/proc/net/snmp", "/proc/net/netstat", "/proc/net/sockstat", "/proc/net/sockstat6",
                                   "/proc/softirqs", "/proc/vmstat"};
static int pids[16], npids;
static int intervalMs = 20;

// CPU seconds of this process, µs resolution (the same account as
// /proc/self/stat, which counts in 10 ms ticks: too coarse for ~1 %)
static double rusage_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int run_probe(void) {
  int fds[64], n = 0;
  char path[64];
  for (size_t i = 0; i < sizeof probeFiles / sizeof *probeFiles; i++)
    if ((fds[n] = open(probeFiles[i], O_RDONLY | O_CLOEXEC)) >= 0) n++;
  for (int p = 0; p < npids; p++)
    for (int k = 0; k < 3; k++) {
      snprintf(path, sizeof path, "/proc/%d/%s", pids[p], k == 0 ? "stat" : k == 1 ? "status" : "schedstat");
      if ((fds[n] = open(path, O_RDONLY | O_CLOEXEC)) >= 0) n++;
    }
  double cpu0 = rusage_s();
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  double t0 = now_s();
  long samples = 0;
  unsigned long sum = 0; // keeps the reads from being optimised away
  while (now_s() - t0 < duration) {
    for (int i = 0; i < n; i++) {
      ssize_t r = pread(fds[i], rbuf, sizeof rbuf, 0);
      if (r > 0) sum += rbuf[r / 2];
    }
    samples++;
    next.tv_nsec += intervalMs * 1000000L;
    while (next.tv_nsec >= 1000000000L) next.tv_nsec -= 1000000000L, next.tv_sec++;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
  double el = now_s() - t0, cpu = rusage_s() - cpu0;
  printf("{\"files\":%d,\"samples\":%ld,\"seconds\":%.3f,\"cpuS\":%.3f,\"cpuPct\":%.3f,\"check\":%lu}\n", n, samples, el, cpu, 100 * cpu / el, sum & 1);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "server") && strcmp(argv[1], "client") && strcmp(argv[1], "probe"))) {
    fprintf(stderr, "usage: ref server|client|probe [-i ms] [-P pid] [-H host] [-p port] [-q Q] [-r R] [-e E] [-m close] [-b backlog] [-c conc] [-d s] [-n max]\n");
    return 2;
  }
  int opt;
  optind = 2;
  while ((opt = getopt(argc, argv, "H:p:q:r:e:m:b:c:d:n:i:P:")) != -1) {
    switch (opt) {
      case 'H': host = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'q': Q = atoi(optarg); break;
      case 'r': R = atoi(optarg); break;
      case 'e': E = atoi(optarg); break;
      case 'm': mode = parse_mode(optarg); break;
      case 'b': backlog = atoi(optarg); break;
      case 'c': conc = atoi(optarg); break;
      case 'd': duration = atof(optarg); break;
      case 'n': maxTxn = atol(optarg); break;
      case 'i': intervalMs = atoi(optarg); break;
      case 'P':
        if (npids < 16) pids[npids++] = atoi(optarg);
        break;
      default: return 2;
    }
  }
  if (Q < 1 || R < 1 || E < 1 || conc < 1) {
    fprintf(stderr, "Q, R, E and concurrency must be >= 1\n");
    return 2;
  }
  int pn = Q > R ? Q : R;
  pattern = malloc(pn);
  for (int i = 0; i < pn; i++) pattern[i] = (i * 7 + 13) & 0xff;
  if (argv[1][0] == 'p') return run_probe();
  return argv[1][0] == 's' ? run_server() : run_client();
}
