// The engine's built-in server (harness/workload/server.ts, server-conn.ts
// in C): accepts, reads each whole request of Q bytes, answers R bytes
// (the request's first min(6, Q, R) bytes, then the pattern: with R = Q the
// exact echo of what the built-in client sends), closes per --close, and
// records every connection into server.bin. One epoll loop, edge-triggered
// sockets, connection state preallocated and indexed by fd.
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
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

#define SRV_SIZE 24
#define STOP_GRACE_NS 200000000LL

struct conn {
  uint32_t gen;
  uint8_t open, reset, finAfterOut, closeAfterOut;
  int outcome; // -1: not decided
  ns_t acceptNs;
  uint16_t port;
  uint32_t bytesIn, bytesOut, got, exchanges;
  uint32_t out; // bytes of the pending answer written; UINT32_MAX: none
  uint32_t owed; // answers due after the pending one (a pipelining client)
  uint8_t head[HEADER];
  uint8_t answer[HEADER];
};

static struct conn *conns;
static int maxConns, lfd = -1, sigfd = -1, openConns;
static int stopping;
static ns_t stopAt = NS_INF;
static int64_t acceptDelayNs;
static ns_t acceptAt = NS_INF; // --accept-delay: the next accept(2) not before this
static int listenerOn;
static struct recfile rec;
static uint8_t rbuf[1 << 16];
static uint32_t hn; // header bytes copied into an answer

static void conn_record(int fd) {
  struct conn *c = &conns[fd];
  uint8_t *b = rec_next(&rec);
  double acceptNs = (double)c->acceptNs;
  float closeUs = (float)((double)(now_ns() - c->acceptNs) / 1e3);
  uint8_t outcome = (uint8_t)(c->outcome < 0 ? O_SHORT : c->outcome), flags = c->reset ? 1 : 0;
  memcpy(b, &acceptNs, 8);
  memcpy(b + 8, &closeUs, 4);
  memcpy(b + 12, &c->port, 2);
  b[14] = outcome;
  b[15] = flags;
  memcpy(b + 16, &c->bytesIn, 4);
  memcpy(b + 20, &c->bytesOut, 4);
  rec_commit(&rec);
}

/** Close and record. With server-rst the listener's SO_LINGER {1,0}, inherited, makes close(2) an RST. */
static void conn_close(int fd, int reset) {
  struct conn *c = &conns[fd];
  if (!c->open) return;
  c->reset |= (uint8_t)reset;
  c->open = 0;
  c->gen++;
  openConns--;
  close(fd);
  conn_record(fd);
}

static void conn_error(int fd, int err) {
  struct conn *c = &conns[fd];
  if (err == ECONNRESET) {
    c->reset = 1;
    // the client aborted (client-rst) after its last answer: a clean end for us
    if (c->got == 0 && c->exchanges > 0) {
      if (c->outcome < 0) c->outcome = O_OK;
      return conn_close(fd, 0);
    }
  }
  if (c->outcome < 0 || c->outcome == O_OK) c->outcome = outcome_of_errno(err);
  conn_close(fd, 0);
}

/** Write the pending answer: 0 done, 1 blocked, -errno. */
static int conn_flush(int fd) {
  struct conn *c = &conns[fd];
  while (c->out < C.r) {
    struct iovec iov[2];
    int n = 0;
    if (c->out < hn) iov[n++] = (struct iovec){c->answer + c->out, hn - c->out};
    uint32_t from = c->out > hn ? c->out : hn;
    if (from < C.r) iov[n++] = (struct iovec){pattern + from, C.r - from};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN ? 1 : -errno;
    }
    c->out += (uint32_t)w;
  }
  c->out = UINT32_MAX;
  return 0;
}

static void after_answer(int fd);

/** Start (or go on with) answers; returns 0, or -1 when the connection was closed. */
static int conn_write(int fd) {
  struct conn *c = &conns[fd];
  while (c->out != UINT32_MAX) {
    int r = conn_flush(fd);
    if (r < 0) {
      conn_error(fd, -r);
      return -1;
    }
    if (r > 0) return 0;
    if (c->finAfterOut) {
      c->finAfterOut = 0;
      shutdown(fd, SHUT_WR); // FIN first from this side: TIME_WAIT lands on the server
    }
    if (c->owed > 0) {
      c->owed--;
      c->out = 0;
    }
  }
  return 0;
}

static void answer(int fd) {
  struct conn *c = &conns[fd];
  if (c->out != UINT32_MAX) c->owed++;
  else {
    memcpy(c->answer, c->head, HEADER);
    c->out = 0;
  }
  c->bytesOut += C.r;
  c->got = 0;
  c->exchanges++;
  after_answer(fd);
}

static void after_answer(int fd) {
  struct conn *c = &conns[fd];
  if (C.close == CF_SERVER_FIN && c->exchanges == C.exchanges) {
    c->outcome = O_OK;
    c->finAfterOut = 1;
  } else if (c->exchanges == C.serverExchanges && C.serverExchanges < C.exchanges) {
    // --server-exchanges: done before the client is; its next request meets a closed (or reset) socket
    c->outcome = O_OK;
    if (C.close == CF_SERVER_RST) c->closeAfterOut = 1;
    else c->finAfterOut = 1;
  }
}

static void conn_read(int fd) {
  struct conn *c = &conns[fd];
  uint32_t gen = c->gen;
  for (;;) {
    ssize_t n = recv(fd, rbuf, sizeof rbuf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      return conn_error(fd, errno);
    }
    if (n == 0) {
      // the client closed: close too
      if (c->outcome < 0) c->outcome = c->got == 0 ? O_OK : O_SHORT;
      return conn_close(fd, C.close == CF_SERVER_RST);
    }
    c->bytesIn += (uint32_t)n;
    if (C.serverExchanges < C.exchanges && c->exchanges >= C.serverExchanges) continue; // --server-exchanges: no more answers
    for (ssize_t off = 0; off < n;) {
      uint32_t take = C.q - c->got < (uint32_t)(n - off) ? C.q - c->got : (uint32_t)(n - off);
      for (uint32_t i = c->got; i < HEADER && i < c->got + take; i++) c->head[i] = rbuf[off + i - c->got];
      c->got += take;
      off += take;
      if (c->got == C.q) {
        answer(fd);
        if (conn_write(fd) < 0 || c->gen != gen) return;
        if (c->closeAfterOut) return conn_close(fd, 1);
      }
    }
  }
}

static void conn_event(uint64_t tag, uint32_t events) {
  int fd = (int)(tag & 0xffffffff);
  uint32_t gen = (uint32_t)(tag >> 32);
  if (fd < 0 || fd >= maxConns || !conns[fd].open || conns[fd].gen != gen) return; // stale
  if ((events & EPOLLOUT) && conns[fd].out != UINT32_MAX) {
    if (conn_write(fd) < 0) return;
    if (conns[fd].closeAfterOut && conns[fd].out == UINT32_MAX) return conn_close(fd, 1);
  }
  if (conns[fd].open && conns[fd].gen == gen && (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))) conn_read(fd);
}

static void serve(int fd) {
  if (fd >= maxConns || stopping) {
    close(fd);
    return;
  }
  struct conn *c = &conns[fd];
  uint32_t gen = c->gen + 1;
  memset(c, 0, sizeof *c);
  c->gen = gen;
  c->open = 1;
  c->outcome = -1;
  c->out = UINT32_MAX;
  c->acceptNs = now_ns();
  struct sockaddr_storage a;
  socklen_t al = sizeof a;
  if (getpeername(fd, (struct sockaddr *)&a, &al) == 0)
    c->port = ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port : ((struct sockaddr_in *)&a)->sin_port);
  if (C.nodelay) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  openConns++;
  ep_add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, (uint64_t)(uint32_t)fd | ((uint64_t)gen << 32));
}

static void listener(int on) {
  if (lfd < 0 || listenerOn == on) return;
  struct epoll_event e = {.events = on ? EPOLLIN : 0, .data.u64 = TAG_LISTEN};
  epoll_ctl(ep, EPOLL_CTL_MOD, lfd, &e);
  listenerOn = on;
}

static void accept_some(void) {
  for (;;) {
    if (acceptDelayNs > 0 && now_ns() < acceptAt) return listener(0);
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // EAGAIN: wait for the next; EMFILE and the like show up as refused connections on the client
      return;
    }
    serve(fd);
    if (acceptDelayNs > 0) {
      // a slow accept loop: wait D before the next accept(2)
      acceptAt = now_ns() + acceptDelayNs;
      return listener(0);
    }
  }
}

static void on_line(char *line) {
  if (strncmp(line, "{\"type\":\"stop\"", 14) == 0 && !stopping) {
    stopping = 1;
    stopAt = now_ns() + STOP_GRACE_NS;
  } else if (strncmp(line, "{\"type\":\"accept-delay\"", 22) == 0) {
    const char *p = strstr(line, "\"ns\":");
    if (p != NULL) {
      int64_t was = acceptDelayNs;
      acceptDelayNs = (int64_t)strtod(p + 5, NULL);
      if (was == 0 && acceptDelayNs > 0) acceptAt = now_ns() + acceptDelayNs;
      if (acceptDelayNs == 0) acceptAt = 0;
    }
  }
}

static int do_listen(char *why, size_t n, const char **code) {
  struct sockaddr_storage a;
  memset(&a, 0, sizeof a);
  socklen_t al;
  int fam;
  struct sockaddr_in *a4 = (struct sockaddr_in *)&a;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&a;
  const char *host = C.host;
  char h6[64];
  if (host[0] == '[') { // "[::1]"
    snprintf(h6, sizeof h6, "%s", host + 1);
    char *e = strchr(h6, ']');
    if (e) *e = 0;
    host = h6;
  }
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    fam = AF_INET;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)C.port);
    al = sizeof *a4;
  } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    fam = AF_INET6;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)C.port);
    al = sizeof *a6;
  } else {
    snprintf(why, n, "%s is not an IP address", C.host);
    return -1;
  }
  lfd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) goto fail;
  if (C.close == CF_SERVER_RST) {
    // SO_LINGER {1,0} on the listener, inherited by every accepted socket, as in the reported case
    struct linger l = {1, 0};
    if (setsockopt(lfd, SOL_SOCKET, SO_LINGER, &l, sizeof l) < 0) goto fail;
  }
  if (bind(lfd, (struct sockaddr *)&a, al) < 0 || listen(lfd, C.backlog) < 0) goto fail;
  al = sizeof a;
  getsockname(lfd, (struct sockaddr *)&a, &al);
  return ntohs(fam == AF_INET ? a4->sin_port : a6->sin6_port);
fail:;
  int e = errno;
  if (e == EADDRINUSE) {
    *code = "EADDRINUSE";
    snprintf(why, n, "port %d is in use: choose another --port, or omit it to use a free one", C.port);
  } else if (e == EACCES) {
    *code = "EACCES";
    snprintf(why, n, "port %d needs privileges: choose a port above 1023", C.port);
  } else {
    *code = strerrorname_np(e);
    snprintf(why, n, "listen on %s:%d: %s", C.host, C.port, strerror(e));
  }
  return -1;
}

int server_main(void) {
  on_message = on_line;
  ep = epoll_create1(EPOLL_CLOEXEC);
  sigfd = signals_open();
  struct rlimit rl;
  maxConns = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (1 << 20) ? (int)rl.rlim_cur : 1 << 20;
  conns = calloc((size_t)maxConns, sizeof *conns);
  pattern_init(C.r > C.q ? C.r : C.q);
  hn = C.q < C.r ? C.q : C.r;
  if (hn > HEADER) hn = HEADER;
  acceptDelayNs = C.acceptDelayNs;
  char path[4096];
  if (conns == NULL || path_join(path, sizeof path, C.dir, C.file) < 0 || rec_open(&rec, path, "SSPKSRV1", SRV_SIZE, C.exchanges) < 0) {
    fprintf(stderr, "sockspike-engine: cannot record into %s/%s\n", C.dir, C.file);
    return 1;
  }
  stall_open(C.dir, "server", C.probeIntervalNs);
  char why[512], msg[1024];
  const char *code = "EOTHER";
  int port = do_listen(why, sizeof why, &code);
  if (port < 0) {
    char esc[600];
    json_escape(esc, sizeof esc, why);
    snprintf(msg, sizeof msg, "{\"type\":\"failed\",\"message\":\"%s\",\"code\":\"%s\"}", esc, code);
    ipc_send(msg);
    rec_close(&rec);
    stall_close();
    ipc_close();
    return 0;
  }
  ep_add(lfd, acceptDelayNs > 0 ? 0 : EPOLLIN, TAG_LISTEN);
  listenerOn = acceptDelayNs > 0 ? 0 : 1;
  // a slow accept loop begins with its wait, as server.ts's does
  if (acceptDelayNs > 0) acceptAt = now_ns() + acceptDelayNs;
  ep_add(ipc_fd, EPOLLIN, TAG_IPC);
  if (sigfd >= 0) ep_add(sigfd, EPOLLIN, TAG_SIGNAL);
  snprintf(msg, sizeof msg, "{\"type\":\"listening\",\"port\":%d,\"fd\":%d,\"notes\":[]}", port, lfd);
  ipc_send(msg);

  struct epoll_event evs[256];
  for (;;) {
    ns_t now = now_ns();
    if (stopping && (openConns == 0 || now >= stopAt)) break;
    ns_t deadline = stall_next;
    if (stopping && stopAt < deadline) deadline = stopAt;
    if (acceptDelayNs > 0 && !listenerOn && !stopping && acceptAt < deadline) deadline = acceptAt;
    int n = loop_wait(evs, 256, deadline);
    for (int i = 0; i < n; i++) {
      uint64_t tag = evs[i].data.u64;
      if (tag == TAG_LISTEN) {
        if (!stopping) accept_some();
      } else if (tag == TAG_IPC) {
        if (ipc_read(on_line) < 0) { // the run went away
          ipc_close();
          if (!stopping) stopping = 1, stopAt = now_ns() + STOP_GRACE_NS;
        }
      } else if (tag == TAG_SIGNAL) {
        struct signalfd_siginfo si;
        while (read(sigfd, &si, sizeof si) == sizeof si) {
        }
        if (!stopping) stopping = 1, stopAt = now_ns() + STOP_GRACE_NS;
      } else
        conn_event(tag, evs[i].events);
    }
    now = now_ns();
    if (now >= stall_next) stall_tick(now);
    if (stopping && lfd >= 0) {
      close(lfd); // no more accepts; connections closing right now get the grace to finish
      lfd = -1;
    }
    if (!stopping && acceptDelayNs > 0 && !listenerOn && now >= acceptAt) listener(1);
    if (!stopping && acceptDelayNs == 0 && !listenerOn) {
      listener(1);
      accept_some();
    }
  }
  // stopped: connections still open are recorded as stopped
  for (int fd = 0; fd < maxConns && openConns > 0; fd++)
    if (conns[fd].open) {
      if (conns[fd].outcome < 0) conns[fd].outcome = O_STOPPED;
      conn_close(fd, 0);
    }
  rec_close(&rec);
  stall_close();
  ipc_close();
  return 0;
}
