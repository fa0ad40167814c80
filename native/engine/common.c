// What the engine's client and server share: configuration, clock, IPC,
// record files, the stall monitor and the loop's wait.
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct cfg C;
int ep = -1;
int ipc_fd = -1;
uint8_t *pattern;
void (*on_message)(char *line);

int outcome_of_errno(int e) {
  switch (e) {
  case ECONNREFUSED: return O_ECONNREFUSED;
  case ECONNRESET: return O_ECONNRESET;
  case EADDRNOTAVAIL: return O_EADDRNOTAVAIL;
  case ETIMEDOUT: return O_ETIMEDOUT;
  case EPIPE: return O_EPIPE;
  case EHOSTUNREACH: return O_EHOSTUNREACH;
  case ENETUNREACH: return O_ENETUNREACH;
  case EADDRINUSE: return O_EADDRINUSE;
  case EMFILE: return O_EMFILE;
  case ENFILE: return O_ENFILE;
  case ENOBUFS: return O_ENOBUFS;
  case ECONNABORTED: return O_ECONNABORTED;
  default: return O_EOTHER;
  }
}

// ---------------------------------------------------------------- config

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/** Hex of length n to bytes (NUL-terminated too, for strings); *len gets the byte count. */
static uint8_t *unhex(const char *s, size_t n, uint32_t *len) {
  uint8_t *out = malloc(n / 2 + 1);
  if (out == NULL) return NULL;
  for (size_t i = 0; i + 1 < n; i += 2) {
    int a = hexval(s[i]), b = hexval(s[i + 1]);
    if (a < 0 || b < 0) {
      free(out);
      return NULL;
    }
    out[i / 2] = (uint8_t)(a * 16 + b);
  }
  out[n / 2] = 0;
  if (len) *len = (uint32_t)(n / 2);
  return out;
}

static int parse_close(const char *v, size_t n) {
  static const char *names[] = {"client-fin", "server-fin", "client-rst", "server-rst", "linger", "keepalive"};
  for (int i = 0; i < 6; i++)
    if (strlen(names[i]) == n && memcmp(names[i], v, n) == 0) return i;
  return -1;
}

int cfg_parse(const char *line) {
  memset(&C, 0, sizeof C);
  C.transactions = -1;
  C.durationNs = -1;
  C.split = 1;
  const char *p = line;
  while (*p && *p != '"') {
    while (*p == ' ') p++;
    const char *k = p;
    while (*p && *p != '=' && *p != ' ' && *p != '"') p++;
    if (*p != '=') break;
    size_t kn = (size_t)(p - k);
    const char *v = ++p;
    while (*p && *p != ' ' && *p != '"') p++;
    size_t vn = (size_t)(p - v);
    char num[64];
    size_t cn = vn < sizeof num - 1 ? vn : sizeof num - 1;
    memcpy(num, v, cn);
    num[cn] = 0;
    long long i = strtoll(num, NULL, 10);
#define KEY(s) (kn == sizeof(s) - 1 && memcmp(k, s, kn) == 0)
    if (KEY("t0")) clock_set_t0(i);
    else if (KEY("dir")) C.dir = (char *)unhex(v, vn, NULL);
    else if (KEY("file")) C.file = (char *)unhex(v, vn, NULL);
    else if (KEY("host")) C.host = (char *)unhex(v, vn, NULL);
    else if (KEY("progress")) C.progress = (int)i;
    else if (KEY("port")) C.port = (int)i;
    else if (KEY("exchanges")) C.exchanges = (uint32_t)i;
    else if (KEY("sx")) C.serverExchanges = (uint32_t)i;
    else if (KEY("q")) C.q = (uint32_t)i;
    else if (KEY("r")) C.r = (uint32_t)i;
    else if (KEY("conc")) C.concurrency = (uint32_t)i;
    else if (KEY("txns")) C.transactions = i;
    else if (KEY("dur")) C.durationNs = i;
    else if (KEY("think")) C.thinkNs = i;
    else if (KEY("cto")) C.connectTimeoutNs = i;
    else if (KEY("ito")) C.ioTimeoutNs = i;
    else if (KEY("rate")) C.rate = strtod(num, NULL);
    else if (KEY("poisson")) C.poisson = (int)i;
    else if (KEY("seed")) C.seed = (uint32_t)i;
    else if (KEY("maxinf")) C.maxInflight = (uint32_t)i;
    else if (KEY("close")) C.close = parse_close(v, vn);
    else if (KEY("linger")) C.lingerS = (int)i;
    else if (KEY("perconn")) C.perConnection = i;
    else if (KEY("backlog")) C.backlog = (int)i;
    else if (KEY("nodelay")) C.nodelay = (int)i;
    else if (KEY("split")) C.split = (uint32_t)i;
    else if (KEY("adelay")) C.acceptDelayNs = i;
    else if (KEY("fw")) C.firstWorker = (uint32_t)i;
    else if (KEY("probe")) C.probeIntervalNs = i;
    else if (KEY("tmpl")) C.tmpl = unhex(v, vn, &C.tmplLen);
    else if (KEY("until")) C.until = (int)i;
    else if (KEY("ubytes")) C.untilBytes = (uint32_t)i;
    else if (KEY("udelim")) C.delim = unhex(v, vn, &C.delimLen);
#undef KEY
  }
  if (C.dir == NULL || C.file == NULL || C.host == NULL || C.exchanges == 0 || C.close < 0 || C.split == 0) {
    fprintf(stderr, "sockspike-engine: incomplete start message\n");
    return -1;
  }
  if (C.probeIntervalNs <= 0) C.probeIntervalNs = 20000000;
  return 0;
}

// ---------------------------------------------------------------- clock

static int64_t t0abs;

void clock_set_t0(int64_t t0) { t0abs = t0; }

ns_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec - t0abs;
}

// ---------------------------------------------------------------- protocol

void pattern_init(uint32_t n) {
  pattern = malloc(n > 0 ? n : 1);
  if (pattern == NULL) {
    fprintf(stderr, "sockspike-engine: out of memory for a %u-byte pattern\n", n);
    exit(1);
  }
  for (uint32_t i = 0; i < n; i++) pattern[i] = (uint8_t)((i * 7 + 13) & 0xff);
}

void stamp(uint8_t *b, uint32_t seq, uint32_t exchange, uint32_t limit) {
  uint32_t n = limit < HEADER ? limit : HEADER;
  for (uint32_t i = 0; i < n; i++) b[i] = i < 4 ? (uint8_t)(seq >> (8 * i)) : (uint8_t)(exchange >> (8 * (i - 4)));
}

// ---------------------------------------------------------------- IPC

static char *ibuf;
static size_t ilen, icap;

int ipc_open(void) {
  const char *s = getenv("NODE_CHANNEL_FD");
  if (s == NULL) return -1;
  ipc_fd = atoi(s);
  if (fcntl(ipc_fd, F_GETFD) < 0) return -1;
  fcntl(ipc_fd, F_SETFD, FD_CLOEXEC);
  fcntl(ipc_fd, F_SETFL, fcntl(ipc_fd, F_GETFL) | O_NONBLOCK);
  icap = 1 << 16;
  ibuf = malloc(icap);
  return ibuf == NULL ? -1 : 0;
}

void ipc_send(const char *json) {
  if (ipc_fd < 0) return;
  size_t n = strlen(json);
  char one[1024];
  const char *buf = json;
  char *big = NULL;
  if (n + 1 <= sizeof one) {
    memcpy(one, json, n);
    buf = one;
  } else {
    big = malloc(n + 1); // rare: a long notes list
    if (big == NULL) return;
    memcpy(big, json, n);
    buf = big;
  }
  ((char *)buf)[n] = '\n';
  size_t off = 0;
  while (off < n + 1) {
    ssize_t w = write(ipc_fd, buf + off, n + 1 - off);
    if (w > 0) {
      off += (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      struct pollfd p = {.fd = ipc_fd, .events = POLLOUT};
      poll(&p, 1, 1000);
      continue;
    }
    break; // the run is gone
  }
  free(big);
}

int ipc_read(void (*cb)(char *line)) {
  for (;;) {
    if (icap - ilen < 4096) {
      char *nb = realloc(ibuf, icap * 2); // only for a long start message, before the loop
      if (nb == NULL) return -1;
      ibuf = nb;
      icap *= 2;
    }
    ssize_t n = read(ipc_fd, ibuf + ilen, icap - ilen - 1);
    if (n == 0) return -1;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return 0;
      return -1;
    }
    ilen += (size_t)n;
    size_t start = 0;
    for (size_t i = 0; i < ilen; i++)
      if (ibuf[i] == '\n') {
        ibuf[i] = 0;
        cb(ibuf + start);
        start = i + 1;
      }
    memmove(ibuf, ibuf + start, ilen - start);
    ilen -= start;
  }
}

int ipc_wait_readable(void) {
  struct pollfd p = {.fd = ipc_fd, .events = POLLIN};
  return poll(&p, 1, -1);
}

void ipc_close(void) {
  if (ipc_fd < 0) return;
  // Wait (up to 2 s) until the run has read what we sent: Node emits a child's 'exit' as soon as it
  // reaps it, whether or not it has read the channel, and a run that sees the exit first takes the
  // last message (done, failed) for lost. SIOCOUTQ on a Unix socket: bytes the peer has not read yet.
  for (int i = 0; i < 2000; i++) {
    int unread = 0;
    if (ioctl(ipc_fd, SIOCOUTQ, &unread) < 0 || unread == 0) break;
    struct pollfd p = {.fd = ipc_fd, .events = POLLRDHUP};
    poll(&p, 1, 1); // the run gone (hang-up) ends the wait at once
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) break;
  }
  close(ipc_fd);
  ipc_fd = -1;
}

void json_escape(char *out, size_t n, const char *s) {
  size_t o = 0;
  for (; *s && o + 7 < n; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20) {
      o += (size_t)snprintf(out + o, n - o, "\\u%04x", c);
    } else
      out[o++] = (char)c;
  }
  out[o] = 0;
}

void json_num(char *out, size_t n, double v) {
  if (isnan(v) || isinf(v)) snprintf(out, n, "null");
  else snprintf(out, n, "%.17g", v);
}

// ---------------------------------------------------------------- records

#define PAGE_RECORDS 4096

int rec_open(struct recfile *r, const char *path, const char *magic, uint32_t size, uint32_t exchanges) {
  r->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (r->fd < 0) return -1;
  uint8_t head[16];
  memcpy(head, magic, 8);
  memcpy(head + 8, &size, 4);
  memcpy(head + 12, &exchanges, 4);
  if (write(r->fd, head, 16) != 16) return -1;
  r->size = size;
  r->cap = PAGE_RECORDS;
  r->used = 0;
  r->count = 0;
  r->page = malloc((size_t)PAGE_RECORDS * size);
  if (r->page == NULL) return -1;
  memset(r->page, 0, (size_t)PAGE_RECORDS * size); // touched now: no page fault lands inside a transaction
  return 0;
}

uint8_t *rec_next(struct recfile *r) { return r->page + (size_t)r->used * r->size; }

void rec_commit(struct recfile *r) {
  r->used++;
  r->count++;
  if (r->used == r->cap) rec_flush(r);
}

void rec_flush(struct recfile *r) {
  if (r->fd < 0 || r->used == 0) return;
  size_t len = (size_t)r->used * r->size, off = 0;
  while (off < len) {
    ssize_t w = write(r->fd, r->page + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      fprintf(stderr, "sockspike-engine: writing records: %s\n", strerror(errno));
      break;
    }
    off += (size_t)w;
  }
  r->used = 0;
}

void rec_close(struct recfile *r) {
  if (r->fd < 0) return;
  rec_flush(r);
  close(r->fd);
  r->fd = -1;
}

// ---------------------------------------------------------------- stall monitor

#define RESOLUTION_NS 10000000LL
#define SELF_CAP 256
#define SELF_ELD 1
#define SELF_RUN 3

ns_t stall_next = NS_INF;
static int sfd = -1;
static double srec[SELF_CAP * 8];
static int scount;
static ns_t sinterval, slast, slastTick;
static double ssum, smax, smin;
static long sn;
// the whole run: count, sum, min, max, and log-linear buckets for p50/p99 (ns over the resolution)
static double rsum, rmax, rmin = INFINITY;
static long rcount;
static uint32_t rbuckets[64 * 16];

static void sflush(void) {
  if (sfd < 0 || scount == 0) return;
  size_t len = (size_t)scount * 64, off = 0;
  const uint8_t *b = (const uint8_t *)srec;
  while (off < len) {
    ssize_t w = write(sfd, b + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  scount = 0;
}

static void spush(double a, double b, double c, double d, double e, double f, double g, double h) {
  if (scount == SELF_CAP) sflush();
  double *x = srec + scount * 8;
  x[0] = a, x[1] = b, x[2] = c, x[3] = d, x[4] = e, x[5] = f, x[6] = g, x[7] = h;
  scount++;
}

static int bucket_of(double v) {
  uint64_t u = v < 1 ? 0 : (uint64_t)v;
  if (u < 16) return (int)u;
  int msb = 63 - __builtin_clzll(u);
  int sub = (int)((u >> (msb - 4)) & 15);
  int i = (msb - 3) * 16 + sub;
  return i < 64 * 16 ? i : 64 * 16 - 1;
}

static double bucket_value(int i) {
  if (i < 16) return i;
  int msb = i / 16 + 3, sub = i % 16;
  return (double)((16ULL + (uint64_t)sub) << (msb - 4));
}

static double rpercentile(double p) {
  long want = (long)ceil(p / 100 * (double)rcount), seen = 0;
  for (int i = 0; i < 64 * 16; i++) {
    seen += rbuckets[i];
    if (seen >= want && rbuckets[i] > 0) return bucket_value(i);
  }
  return rmax;
}

static void srecord(ns_t t) {
  if (sn > 0) spush(SELF_ELD, (double)t, (double)(t - slast), ssum / (double)sn, smax, smin, (double)sn, 0);
  else spush(SELF_ELD, (double)t, (double)(t - slast), NAN, NAN, NAN, 0, 0);
  slast = t;
  ssum = 0, smax = 0, smin = INFINITY, sn = 0;
}

void stall_open(const char *dir, const char *role, ns_t intervalNs) {
  char path[4096];
  snprintf(path, sizeof path, "%s/probes", dir);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/probes/self-%s.%d.bin", dir, role, (int)getpid());
  sfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (sfd < 0) {
    fprintf(stderr, "sockspike-engine: %s: %s (no self-check)\n", path, strerror(errno));
    return;
  }
  uint8_t head[24];
  memcpy(head, "SSPKSLF1", 8);
  uint32_t v[4] = {1, (uint32_t)getpid(), (uint32_t)RESOLUTION_NS, (uint32_t)(intervalNs / 1000)};
  memcpy(head + 8, v, 16);
  if (write(sfd, head, 24) != 24) {
    close(sfd);
    sfd = -1;
    return;
  }
  sinterval = intervalNs;
  slast = slastTick = now_ns();
  smin = INFINITY;
  stall_next = slastTick + RESOLUTION_NS;
}

void stall_tick(ns_t t) {
  // how late this tick is against the 10 ms it was armed for: the loop
  // could not run (a long batch, a blocked write of records, no CPU)
  double d = (double)(t - slastTick - RESOLUTION_NS);
  if (d < 0) d = 0;
  slastTick = t;
  stall_next = t + RESOLUTION_NS;
  ssum += d;
  if (d > smax) smax = d;
  if (d < smin) smin = d;
  sn++;
  rsum += d;
  if (d > rmax) rmax = d;
  if (d < rmin) rmin = d;
  rcount++;
  rbuckets[bucket_of(d)]++;
  if (t - slast >= sinterval - RESOLUTION_NS / 2) srecord(t);
}

void stall_close(void) {
  if (sfd < 0) return;
  ns_t t = now_ns();
  srecord(t);
  if (rcount > 0) spush(SELF_RUN, (double)t, (double)rcount, rsum / (double)rcount, rpercentile(50), rpercentile(99), rmax, rmin);
  sflush();
  close(sfd);
  sfd = -1;
  stall_next = NS_INF;
}

// ---------------------------------------------------------------- loop

static int no_pwait2;

int loop_wait(struct epoll_event *evs, int max, ns_t deadline) {
  ns_t wait = deadline == NS_INF ? -1 : deadline - now_ns();
  if (wait < 0 && deadline != NS_INF) wait = 0;
  int n;
  if (!no_pwait2) {
    struct timespec ts = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
    n = epoll_pwait2(ep, evs, max, wait < 0 ? NULL : &ts, NULL);
    if (n < 0 && errno == ENOSYS) no_pwait2 = 1;
    else return n;
  }
  // kernels before 5.11: ms, rounded up (late rather than early, as Node's timers)
  return epoll_wait(ep, evs, max, wait < 0 ? -1 : (int)((wait + 999999) / 1000000));
}

void ep_add(int fd, uint32_t events, uint64_t tag) {
  struct epoll_event e = {.events = events, .data.u64 = tag};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

int signals_open(void) {
  signal(SIGINT, SIG_IGN); // the run decides when its children stop
  signal(SIGPIPE, SIG_IGN);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigprocmask(SIG_BLOCK, &s, NULL);
  return signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC);
}

int path_join(char *out, size_t n, const char *dir, const char *file) {
  int w = snprintf(out, n, "%s/%s", dir, file);
  return w < 0 || (size_t)w >= n ? -1 : 0;
}
