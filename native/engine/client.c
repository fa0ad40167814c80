// The engine's built-in client (harness/workload/client.ts and
// client-worker.ts in C): workers run one transaction at a time (connect, E
// exchanges, close per --close), started in a closed loop (with think time)
// or on an open-loop schedule (uniform or poisson, mulberry32 as
// lib/prng.ts), each recorded into transactions*.bin. Every worker's state
// and buffers are allocated once at start; a transaction allocates nothing.
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define STOP_GRACE_NS 2000000000LL
#define PROGRESS_NS 500000000LL

enum { P_IDLE, P_CONNECTING, P_EXCHANGING, P_AWAIT_EOF };

struct worker {
  uint32_t id, index, gen;
  int phase, fd, outcome, reused, tcpiValid, pendingErr;
  uint32_t seq, exchange, got, sendPos, bytesOut, bytesIn;
  uint32_t rgot, rmatched; // response rule: bytes of the answer, delimiter bytes matched
  int64_t onConnection;
  ns_t deadline, startNs, connectNs, endNs;
  double intendedNs;
  ns_t *exchangeNs;
  uint16_t localPort;
  uint8_t tstate, tretrans;
  uint32_t ttotal, trtt, trto;
  uint8_t hdr[HEADER], exp[HEADER];
};

static struct worker *workers;
static uint32_t nworkers;
static uint32_t *idle, nidle;     // a stack, as client.ts's
static uint32_t *thinkq, thinkHead, thinkLen; // closed loop: workers thinking, in wake order (one think time: FIFO)
static ns_t *thinkAt;
static uint32_t *deferq, deferHead, deferLen; // failures seen inside socket()/connect(): handled from the loop, not recursively
static struct recfile rec;
static uint8_t rbuf[1 << 16];
static struct sockaddr_storage target;
static socklen_t targetLen;
static int family;
static uint32_t Q, R, hnReq, hnExp, partLen;
static const uint8_t *reqBody; // template bytes, or NULL (header + pattern)
static int32_t *kmp;

static int stopping, finished, sigfd = -1;
static ns_t stopAtNs = NS_INF, abortAtNs = NS_INF, endAt = NS_INF, openAt = NS_INF, sweepNext = NS_INF, progressNext = NS_INF;
static ns_t sweepNs;
static int64_t started, okN, failedN, timedOutN, inflight, missedStarts;
static uint32_t seqNext;
static double firstStartNs = NAN, lastEndNs = NAN, nextIntendedNs;
static uint32_t prngState;
// progress line: p99 of ok latencies (us) since the last report, log-linear buckets
static uint32_t window[64 * 16];
static uint64_t windowN;

static void finished_worker(struct worker *w);
static void check_done(void);

// ---------------------------------------------------------------- schedule

static double prng(void) { // mulberry32, exactly as lib/prng.ts
  prngState += 0x6d2b79f5u;
  uint32_t t = prngState;
  t = (t ^ (t >> 15)) * (t | 1u);
  t ^= t + (t ^ (t >> 7)) * (t | 61u);
  return (double)(t ^ (t >> 14)) / 4294967296.0;
}

static double gap(void) {
  double mean = 1e9 / C.rate;
  return C.poisson ? -log(1 - prng()) * mean : mean;
}

static int may_start(void) {
  if (stopping) return 0;
  if (C.transactions >= 0 && started >= C.transactions) return 0;
  return now_ns() < stopAtNs;
}

static int may_start_at(double intended) {
  if (stopping) return 0;
  if (C.transactions >= 0 && started >= C.transactions) return 0;
  return intended < (double)stopAtNs;
}

// ---------------------------------------------------------------- one transaction

static void release(struct worker *w) {
  if (w->fd < 0) return;
  close(w->fd); // also leaves epoll
  w->fd = -1;
  w->gen++;
}

static void read_tcp_info(struct worker *w) {
  struct tcp_info ti;
  socklen_t l = sizeof ti;
  w->tcpiValid = getsockopt(w->fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0;
  if (!w->tcpiValid) return;
  w->tstate = ti.tcpi_state;
  w->tretrans = ti.tcpi_retransmits;
  w->ttotal = ti.tcpi_total_retrans;
  w->trtt = ti.tcpi_rtt;
  w->trto = ti.tcpi_rto;
}

static uint16_t local_port(int fd) {
  struct sockaddr_storage a;
  socklen_t al = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &al) < 0) return 0;
  return ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port : ((struct sockaddr_in *)&a)->sin_port);
}

static void done(struct worker *w, int outcome) {
  w->endNs = now_ns();
  w->outcome = outcome;
  w->phase = P_IDLE;
  w->deadline = NS_INF;
  w->pendingErr = 0;
  finished_worker(w);
}

static void fail(struct worker *w, int outcome) {
  // the local port joins this transaction to kernel events: keep it even when connect() never completed
  if (w->localPort == 0 && w->fd >= 0) w->localPort = local_port(w->fd);
  release(w);
  done(w, outcome);
}

/** Close per --close and record the transaction as ok. */
static void close_ok(struct worker *w) {
  read_tcp_info(w);
  if (C.close == CF_CLIENT_RST || C.close == CF_LINGER) {
    // client-rst: SO_LINGER {1,0}, close(2) sends an RST; linger:N: close(2) may block up to N s
    struct linger l = {1, C.close == CF_LINGER ? C.lingerS : 0};
    setsockopt(w->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  release(w);
  done(w, O_OK);
}

static void exchanges_done(struct worker *w) {
  if (C.close == CF_KEEPALIVE) {
    read_tcp_info(w);
    w->endNs = now_ns();
    w->outcome = O_OK;
    int last = ++w->onConnection >= C.perConnection || stopping;
    w->phase = P_IDLE;
    w->deadline = NS_INF;
    if (last) release(w);
    finished_worker(w);
    return;
  }
  if (C.close == CF_SERVER_FIN) {
    // the server closes first: wait for its FIN, then close
    w->phase = P_AWAIT_EOF;
    w->deadline = now_ns() + C.ioTimeoutNs;
    return;
  }
  close_ok(w);
}

/** Write the rest of the current request, one write per --split-writes part: 0, or -errno. */
static int flush_request(struct worker *w) {
  while (w->sendPos < Q) {
    uint32_t end = (w->sendPos / partLen + 1) * partLen;
    if (end > Q) end = Q;
    struct iovec iov[2];
    int n = 0;
    if (reqBody != NULL) iov[n++] = (struct iovec){(void *)(reqBody + w->sendPos), end - w->sendPos};
    else {
      if (w->sendPos < hnReq) iov[n++] = (struct iovec){w->hdr + w->sendPos, (end < hnReq ? end : hnReq) - w->sendPos};
      uint32_t from = w->sendPos > hnReq ? w->sendPos : hnReq;
      if (from < end) iov[n++] = (struct iovec){pattern + from, end - from};
    }
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t s = sendmsg(w->fd, &m, MSG_NOSIGNAL);
    if (s < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN ? 0 : -errno;
    }
    w->sendPos += (uint32_t)s;
  }
  return 0;
}

/** The next exchange's request; returns 0, or -1 when the transaction ended. */
static int send_request(struct worker *w) {
  if (reqBody == NULL) {
    stamp(w->hdr, w->seq, w->exchange, HEADER);
    stamp(w->exp, w->seq, w->exchange, Q < R ? Q : R);
  } else
    w->rgot = w->rmatched = 0;
  w->phase = P_EXCHANGING;
  w->deadline = now_ns() + C.ioTimeoutNs;
  w->sendPos = 0;
  w->bytesOut += Q;
  int r = flush_request(w);
  if (r < 0) {
    fail(w, outcome_of_errno(-r));
    return -1;
  }
  return 0;
}

/** The current exchange's answer is complete; returns 0 while the transaction goes on. */
static int answered(struct worker *w) {
  w->exchangeNs[w->exchange] = now_ns();
  w->got = 0;
  if (++w->exchange < C.exchanges) return send_request(w);
  exchanges_done(w);
  return -1;
}

enum { R_MORE, R_EXTRA, R_COMPLETE };

/** --response-until: is the templated answer complete with this chunk? (response-rule.ts) */
static int rule_feed(struct worker *w, const uint8_t *b, uint32_t len) {
  if (C.until == UNTIL_CLOSE) {
    w->rgot += len;
    return R_MORE;
  }
  if (C.until == UNTIL_BYTES) {
    w->rgot += len;
    if (w->rgot > C.untilBytes) return R_EXTRA;
    return w->rgot == C.untilBytes ? R_COMPLETE : R_MORE;
  }
  uint32_t k = w->rmatched;
  for (uint32_t i = 0; i < len; i++) {
    while (k > 0 && b[i] != C.delim[k]) k = (uint32_t)kmp[k - 1];
    if (b[i] == C.delim[k]) k++;
    if (k == C.delimLen) {
      w->rgot += i + 1;
      w->rmatched = 0;
      return i + 1 == len ? R_COMPLETE : R_EXTRA;
    }
  }
  w->rmatched = k;
  w->rgot += len;
  return R_MORE;
}

/** A chunk of the answer; returns 0 while the transaction goes on. */
static int on_data(struct worker *w, const uint8_t *b, uint32_t len) {
  w->bytesIn += len;
  if (w->phase != P_EXCHANGING) {
    fail(w, O_BAD); // bytes nobody asked for
    return -1;
  }
  if (reqBody != NULL) {
    int r = rule_feed(w, b, len);
    if (r == R_MORE) return 0;
    if (r == R_EXTRA) {
      fail(w, O_BAD);
      return -1;
    }
    return answered(w);
  }
  uint32_t want = R - w->got;
  if (len > want) {
    fail(w, O_BAD);
    return -1;
  }
  // byte for byte: the stamped header (transaction and exchange numbers), then the pattern
  uint32_t i = 0;
  for (; i < len && w->got + i < hnExp; i++)
    if (b[i] != w->exp[w->got + i]) {
      fail(w, O_BAD);
      return -1;
    }
  if (i < len && memcmp(b + i, pattern + w->got + i, len - i) != 0) {
    fail(w, O_BAD);
    return -1;
  }
  w->got += len;
  if (w->got < R) return 0;
  return answered(w);
}

static void on_eof(struct worker *w) {
  if (w->phase == P_AWAIT_EOF) return close_ok(w);
  // --response-until close: the server's FIN completes the (only) answer
  if (w->phase == P_EXCHANGING && reqBody != NULL && C.until == UNTIL_CLOSE && w->rgot > 0) {
    w->exchangeNs[w->exchange] = now_ns();
    w->exchange++;
    return close_ok(w);
  }
  fail(w, O_SHORT);
}

static void read_some(struct worker *w) {
  uint32_t gen = w->gen;
  while (w->gen == gen && w->fd >= 0 && (w->phase == P_EXCHANGING || w->phase == P_AWAIT_EOF)) {
    ssize_t n = recv(w->fd, rbuf, sizeof rbuf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) fail(w, outcome_of_errno(errno));
      return;
    }
    if (n == 0) return on_eof(w);
    // go on reading while this connection still has a transaction waiting: edge-triggered, the
    // server's FIN behind its last answer (server-fin) comes with no further event
    on_data(w, rbuf, (uint32_t)n);
  }
}

static void worker_event(uint64_t tag, uint32_t events) {
  struct worker *w = &workers[tag & 0xffffffff];
  if (w->gen != (uint32_t)(tag >> 32) || w->fd < 0) return; // an event of a connection already gone
  if (w->phase == P_CONNECTING) {
    if (w->pendingErr) return;
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err != 0) return fail(w, outcome_of_errno(err));
    w->connectNs = now_ns();
    if (w->localPort == 0) w->localPort = local_port(w->fd);
    if (send_request(w) < 0) return;
    return read_some(w);
  }
  if (w->phase == P_IDLE) {
    // a kept-alive connection between transactions: the server closed it (or sent what nobody asked for)
    ssize_t n = recv(w->fd, rbuf, sizeof rbuf, MSG_PEEK);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) || n > 0) release(w);
    return;
  }
  if (w->phase == P_EXCHANGING && w->sendPos < Q && (events & EPOLLOUT)) {
    int r = flush_request(w);
    if (r < 0) return fail(w, outcome_of_errno(-r));
  }
  read_some(w);
}

/** Start a transaction on worker w (connect, or reuse its kept-alive connection). */
static void begin(struct worker *w, double intendedNs) {
  ns_t now = now_ns();
  w->seq = seqNext++;
  w->intendedNs = intendedNs;
  w->startNs = now;
  w->connectNs = NO_TIME;
  for (uint32_t i = 0; i < C.exchanges; i++) w->exchangeNs[i] = NO_TIME;
  w->endNs = NO_TIME;
  w->outcome = -1;
  w->bytesOut = w->bytesIn = 0;
  w->tcpiValid = 0;
  w->exchange = 0;
  w->got = 0;
  w->pendingErr = 0;
  if (w->fd >= 0 && C.close == CF_KEEPALIVE) {
    // a kept-alive connection the server closed (or wrote to) while idle is let go, as Node sees its end:
    // edge-triggered, its FIN may have come in the same read as the last answer, with no event since
    ssize_t n = recv(w->fd, rbuf, 1, MSG_PEEK | MSG_DONTWAIT);
    if (!(n < 0 && (errno == EAGAIN || errno == EINTR))) release(w);
  }
  if (w->fd >= 0 && C.close == CF_KEEPALIVE) {
    w->reused = 1;
    w->connectNs = now;
    send_request(w);
    return;
  }
  w->reused = 0;
  w->localPort = 0;
  w->onConnection = 0;
  w->phase = P_CONNECTING;
  w->deadline = now + C.connectTimeoutNs;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = 0;
  if (fd < 0) err = errno;
  else {
    w->fd = fd;
    w->gen++;
    if (C.nodelay) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(fd, (struct sockaddr *)&target, targetLen) < 0 && errno != EINPROGRESS) err = errno;
    else {
      // the port is the join key to the server's records and kernel events, even for a SYN that is never answered
      w->localPort = local_port(fd);
      ep_add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, (uint64_t)w->index | ((uint64_t)w->gen << 32));
    }
  }
  if (err != 0) {
    // failed at once: handled from the loop, so a run of failures never recurses
    w->pendingErr = err;
    deferq[(deferHead + deferLen++) % nworkers] = w->index;
  }
}

// ---------------------------------------------------------------- the client

static void launch(struct worker *w, double intendedNs) {
  started++;
  inflight++;
  if (isnan(firstStartNs)) firstStartNs = intendedNs;
  begin(w, intendedNs);
}

static void record(struct worker *w) {
  uint8_t *b = rec_next(&rec);
  uint32_t E = C.exchanges, e = 16 + 4 * E;
  double start = (double)w->startNs;
  float late = (float)((start - w->intendedNs) / 1e3);
  float connectUs = w->connectNs == NO_TIME ? NAN : (float)(((double)w->connectNs - start) / 1e3);
  memcpy(b, &w->intendedNs, 8);
  memcpy(b + 8, &late, 4);
  memcpy(b + 12, &connectUs, 4);
  for (uint32_t i = 0; i < E; i++) {
    float x = w->exchangeNs[i] == NO_TIME ? NAN : (float)(((double)w->exchangeNs[i] - start) / 1e3);
    memcpy(b + 16 + 4 * i, &x, 4);
  }
  float endUs = (float)(((double)w->endNs - start) / 1e3);
  uint16_t worker = (uint16_t)w->id;
  memcpy(b + e, &endUs, 4);
  memcpy(b + e + 4, &w->localPort, 2);
  memcpy(b + e + 6, &worker, 2);
  b[e + 8] = (uint8_t)w->outcome;
  b[e + 9] = (uint8_t)((w->tcpiValid ? 1 : 0) | (w->reused ? 2 : 0));
  uint32_t zero = 0;
  b[e + 10] = w->tcpiValid ? w->tstate : 0;
  b[e + 11] = w->tcpiValid ? w->tretrans : 0;
  memcpy(b + e + 12, &w->bytesOut, 4);
  memcpy(b + e + 16, &w->bytesIn, 4);
  memcpy(b + e + 20, w->tcpiValid ? &w->ttotal : &zero, 4);
  memcpy(b + e + 24, w->tcpiValid ? &w->trtt : &zero, 4);
  memcpy(b + e + 28, w->tcpiValid ? &w->trto : &zero, 4);
  rec_commit(&rec);
}

static int wbucket(double us) {
  uint64_t u = us < 1 ? 1 : (uint64_t)us;
  if (u < 16) return (int)u;
  int msb = 63 - __builtin_clzll(u);
  int i = (msb - 3) * 16 + (int)((u >> (msb - 4)) & 15);
  return i < 64 * 16 ? i : 64 * 16 - 1;
}

static double wvalue(int i) { return i < 16 ? i : (double)((16ULL + (uint64_t)(i % 16)) << (i / 16 - 1)); }

static void send_progress(void) {
  double p99 = 0;
  if (windowN > 0) {
    uint64_t want = (uint64_t)ceil(0.99 * (double)windowN), seen = 0;
    for (int i = 0; i < 64 * 16; i++) {
      seen += window[i];
      if (seen >= want && window[i] > 0) {
        p99 = wvalue(i);
        break;
      }
    }
  }
  memset(window, 0, sizeof window);
  windowN = 0;
  char msg[512];
  snprintf(msg, sizeof msg, "{\"type\":\"progress\",\"attempted\":%llu,\"ok\":%lld,\"failed\":%lld,\"timedOut\":%lld,\"inflight\":%lld,\"p99Us\":%.0f}",
           (unsigned long long)rec.count, (long long)okN, (long long)failedN, (long long)timedOutN, (long long)inflight, p99);
  ipc_send(msg);
}

static void tick(void);

static void finished_worker(struct worker *w) {
  inflight--;
  if (w->outcome == O_OK) {
    okN++;
    if (C.progress) { // the window only feeds the terminal's progress line
      window[wbucket(((double)w->endNs - w->intendedNs) / 1e3)]++;
      windowN++;
    }
  } else if (w->outcome == O_TIMEOUT)
    timedOutN++;
  else
    failedN++;
  if (!((double)w->endNs <= lastEndNs)) lastEndNs = (double)w->endNs;
  record(w);
  if (C.rate > 0) {
    idle[nidle++] = w->index;
    if (openAt == NS_INF && !stopping) tick();
  } else if (may_start()) {
    if (C.thinkNs > 0) {
      inflight++; // a worker thinking still holds its slot
      uint32_t at = (thinkHead + thinkLen++) % nworkers;
      thinkq[at] = w->index;
      thinkAt[at] = now_ns() + C.thinkNs;
    } else
      launch(w, (double)now_ns());
  } else
    idle[nidle++] = w->index;
  check_done();
}

static void no_more_starts(void) {
  ns_t now = now_ns();
  if (stopAtNs > now) stopAtNs = now;
  openAt = NS_INF;
  endAt = NS_INF;
  if (C.rate > 0) {
    // intended starts that fell due before the end but never got a worker
    double end = (double)(stopAtNs < now ? stopAtNs : now);
    while (nextIntendedNs < end && (C.transactions < 0 || started + missedStarts < C.transactions)) {
      missedStarts++;
      nextIntendedNs += gap();
    }
    nextIntendedNs = INFINITY;
  }
  check_done();
}

/** Open loop: start every transaction that is due and has a free worker. */
static void tick(void) {
  openAt = NS_INF;
  double now = (double)now_ns();
  while (nextIntendedNs <= now && nidle > 0) {
    if (!may_start_at(nextIntendedNs)) return no_more_starts();
    launch(&workers[idle[--nidle]], nextIntendedNs);
    nextIntendedNs += gap();
    now = (double)now_ns();
  }
  if (!may_start_at(nextIntendedNs)) return no_more_starts();
  // due but no free worker: finished_worker() ticks again, and the start is late by however long the workers stayed busy
  if (nextIntendedNs > now) openAt = (ns_t)ceil(nextIntendedNs);
}

static void check_done(void) {
  if (inflight > 0) return;
  if (!stopping && may_start() && C.rate <= 0) return;
  if (!stopping && C.rate > 0 && !isinf(nextIntendedNs) && may_start_at(nextIntendedNs)) return;
  finished = 1;
}

static void stop(void) {
  if (!stopping) {
    stopping = 1;
    no_more_starts();
    abortAtNs = now_ns() + STOP_GRACE_NS;
  }
  check_done();
}

static void sweep(ns_t now) {
  for (uint32_t i = 0; i < nworkers; i++) {
    struct worker *w = &workers[i];
    if (w->phase != P_IDLE && now >= w->deadline && !w->pendingErr) fail(w, O_TIMEOUT);
  }
  if (now >= abortAtNs)
    for (uint32_t i = 0; i < nworkers; i++)
      if (workers[i].phase != P_IDLE) fail(&workers[i], O_STOPPED);
}

static void on_line(char *line) {
  if (strncmp(line, "{\"type\":\"stop\"", 14) == 0) stop();
}

static int resolve_target(void) {
  const char *host = C.host;
  char h6[64];
  if (host[0] == '[') {
    snprintf(h6, sizeof h6, "%s", host + 1);
    char *e = strchr(h6, ']');
    if (e) *e = 0;
    host = h6;
  }
  memset(&target, 0, sizeof target);
  struct sockaddr_in *a4 = (struct sockaddr_in *)&target;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&target;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = family = AF_INET;
    a4->sin_port = htons((uint16_t)C.port);
    targetLen = sizeof *a4;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = family = AF_INET6;
    a6->sin6_port = htons((uint16_t)C.port);
    targetLen = sizeof *a6;
    return 0;
  }
  return -1;
}

/** The client's end: close kept-alive connections, write the last records, report. */
static void finish_and_report(void) {
  // nothing starts from here on: an aborted transaction's end must not launch the next
  stopping = 1;
  stopAtNs = 0;
  for (uint32_t i = 0; i < nworkers; i++) {
    if (workers[i].phase != P_IDLE) fail(&workers[i], O_STOPPED);
    else release(&workers[i]);
  }
  if (C.progress) send_progress();
  rec_close(&rec);
  stall_close();
  char msg[600], a[40], b[40];
  json_num(a, sizeof a, firstStartNs);
  json_num(b, sizeof b, lastEndNs);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpuS = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec + ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
  snprintf(msg, sizeof msg,
           "{\"type\":\"done\",\"attempted\":%llu,\"ok\":%lld,\"failed\":%lld,\"timedOut\":%lld,\"missedStarts\":%lld,\"firstStartNs\":%s,\"lastEndNs\":%s,\"notes\":[],\"cpuS\":%.6f}",
           (unsigned long long)rec.count, (long long)okN, (long long)failedN, (long long)timedOutN, (long long)missedStarts, a, b, cpuS);
  ipc_send(msg);
}

int client_main(void) {
  on_message = on_line;
  ep = epoll_create1(EPOLL_CLOEXEC);
  sigfd = signals_open();
  if (resolve_target() < 0) {
    fprintf(stderr, "sockspike-engine: %s is not an IP address\n", C.host);
    return 1;
  }
  Q = C.tmpl != NULL ? C.tmplLen : C.q;
  R = C.tmpl != NULL ? (C.until == UNTIL_BYTES ? C.untilBytes : 0) : C.r;
  reqBody = C.tmpl;
  hnReq = Q < HEADER ? Q : HEADER;
  hnExp = Q < R ? Q : R;
  if (hnExp > HEADER) hnExp = HEADER;
  partLen = (Q + C.split - 1) / C.split;
  if (partLen == 0) partLen = 1;
  pattern_init(Q > R ? Q : R);
  if (C.until == UNTIL_DELIM) {
    kmp = calloc(C.delimLen, sizeof *kmp);
    // KMP failure function: the longest proper prefix of d[0..i] that is also its suffix
    for (uint32_t i = 1, k = 0; i < C.delimLen; i++) {
      while (k > 0 && C.delim[i] != C.delim[k]) k = (uint32_t)kmp[k - 1];
      if (C.delim[i] == C.delim[k]) k++;
      kmp[i] = (int32_t)k;
    }
  }
  nworkers = C.rate > 0 ? C.maxInflight : C.concurrency;
  if (nworkers == 0) nworkers = 1;
  workers = calloc(nworkers, sizeof *workers);
  ns_t *times = calloc((size_t)nworkers * C.exchanges, sizeof *times);
  idle = calloc(nworkers, sizeof *idle);
  thinkq = calloc(nworkers, sizeof *thinkq);
  thinkAt = calloc(nworkers, sizeof *thinkAt);
  deferq = calloc(nworkers, sizeof *deferq);
  char path[4096];
  if (!workers || !times || !idle || !thinkq || !thinkAt || !deferq || path_join(path, sizeof path, C.dir, C.file) < 0 ||
      rec_open(&rec, path, "SSPKTXN1", 48 + 4 * C.exchanges, C.exchanges) < 0) {
    fprintf(stderr, "sockspike-engine: cannot set up the client (memory, or %s/%s)\n", C.dir, C.file);
    return 1;
  }
  for (uint32_t i = 0; i < nworkers; i++) {
    workers[i].id = C.firstWorker + i;
    workers[i].index = i;
    workers[i].fd = -1;
    workers[i].phase = P_IDLE;
    workers[i].deadline = NS_INF;
    workers[i].exchangeNs = times + (size_t)i * C.exchanges;
  }
  for (uint32_t i = 0; i < nworkers; i++) idle[nidle++] = nworkers - 1 - i; // popped from the top: worker 0 first
  stall_open(C.dir, "client", C.probeIntervalNs);
  ep_add(ipc_fd, EPOLLIN, TAG_IPC);
  if (sigfd >= 0) ep_add(sigfd, EPOLLIN, TAG_SIGNAL);

  // start
  ns_t t = now_ns();
  if (C.durationNs >= 0) {
    stopAtNs = t + C.durationNs;
    endAt = stopAtNs + 1000000;
  }
  double sweepMs = fmin(C.connectTimeoutNs, C.ioTimeoutNs) / 1e6 / 20;
  sweepNs = (ns_t)(fmax(1, fmin(50, sweepMs)) * 1e6);
  sweepNext = t + sweepNs;
  if (C.progress) progressNext = t + PROGRESS_NS;
  if (C.rate <= 0) {
    for (uint32_t i = 0; i < C.concurrency && may_start(); i++) launch(&workers[idle[--nidle]], (double)now_ns());
  } else {
    prngState = C.seed;
    nextIntendedNs = (double)t;
    tick();
  }
  check_done();
  // the workload's time starts now: fault windows are measured from here
  ipc_send("{\"type\":\"started\"}");
  if (early_stop) stop();

  struct epoll_event evs[256];
  int left = 0; // the run went away
  while (!finished) {
    ns_t deadline = stall_next;
    if (sweepNext < deadline) deadline = sweepNext;
    if (progressNext < deadline) deadline = progressNext;
    if (endAt < deadline) deadline = endAt;
    if (openAt < deadline) deadline = openAt;
    if (thinkLen > 0 && thinkAt[thinkHead] < deadline) deadline = thinkAt[thinkHead];
    if (deferLen > 0) deadline = 0;
    int n = loop_wait(evs, 256, deadline);
    for (int i = 0; i < n; i++) {
      uint64_t tag = evs[i].data.u64;
      if (tag == TAG_IPC) {
        if (ipc_read(on_line) < 0) {
          left = 1;
          break;
        }
      } else if (tag == TAG_SIGNAL) {
        struct signalfd_siginfo si;
        while (read(sigfd, &si, sizeof si) == sizeof si) {
        }
        stop(); // SIGTERM: stop as the run would ask, keeping every record
      } else
        worker_event(tag, evs[i].events);
    }
    if (left) break;
    // only those deferred before this turn: a run of immediate failures (EADDRNOTAVAIL, EMFILE)
    // must not keep the loop from its messages and timers
    for (uint32_t k = deferLen; k > 0; k--) {
      struct worker *w = &workers[deferq[deferHead]];
      deferHead = (deferHead + 1) % nworkers;
      deferLen--;
      if (w->pendingErr && w->phase == P_CONNECTING) fail(w, outcome_of_errno(w->pendingErr));
    }
    ns_t now = now_ns();
    if (now >= stall_next) stall_tick(now);
    if (now >= endAt) no_more_starts();
    if (openAt != NS_INF && now >= openAt) tick();
    while (thinkLen > 0 && now >= thinkAt[thinkHead]) {
      struct worker *w = &workers[thinkq[thinkHead]];
      thinkHead = (thinkHead + 1) % nworkers;
      thinkLen--;
      inflight--;
      if (may_start()) launch(w, (double)now_ns());
      else {
        idle[nidle++] = w->index;
        check_done();
      }
    }
    if (now >= sweepNext) {
      sweepNext = now + sweepNs;
      sweep(now);
    }
    if (now >= progressNext) {
      progressNext = now + PROGRESS_NS;
      send_progress();
    }
  }
  finish_and_report();
  ipc_close(); // disconnect: the run sees the done message, then our exit
  return left ? 1 : 0;
}
