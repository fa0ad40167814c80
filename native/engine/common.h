// sockspike-engine: the built-in client and server as one native program
// (issue 11). Shared declarations: configuration, clock, the IPC channel to
// the run (Node's newline-delimited JSON), record files, the stall monitor
// and the event loop's wait. See native/README.md.
#ifndef SOCKSPIKE_ENGINE_COMMON_H
#define SOCKSPIKE_ENGINE_COMMON_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the record files are little-endian and the engine writes them with memcpy: a little-endian host is needed"
#endif

typedef int64_t ns_t;
/** A time never reached (written as NaN in the records). */
#define NO_TIME INT64_MIN
#define NS_INF INT64_MAX

// Outcome indexes: lib/types.ts OUTCOMES (append-only, same order).
enum {
  O_OK = 0,
  O_TIMEOUT,
  O_ECONNREFUSED,
  O_ECONNRESET,
  O_EADDRNOTAVAIL,
  O_ETIMEDOUT,
  O_EPIPE,
  O_EHOSTUNREACH,
  O_ENETUNREACH,
  O_EADDRINUSE,
  O_EMFILE,
  O_ENFILE,
  O_ENOBUFS,
  O_ECONNABORTED,
  O_SHORT,
  O_BAD,
  O_STOPPED,
  O_EOTHER,
};
int outcome_of_errno(int e);

enum { CF_CLIENT_FIN, CF_SERVER_FIN, CF_CLIENT_RST, CF_SERVER_RST, CF_LINGER, CF_KEEPALIVE };
enum { UNTIL_NONE, UNTIL_CLOSE, UNTIL_BYTES, UNTIL_DELIM };

/** What the engine needs of the run's configuration (harness/engine.ts encodes it in the start message). */
struct cfg {
  char *dir;  // run directory
  char *file; // record file, relative to dir
  char *host;
  int progress;
  int port;
  uint32_t exchanges, serverExchanges;
  uint32_t q, r; // request and response bytes
  uint32_t concurrency;
  int64_t transactions; // -1: no limit
  int64_t durationNs;   // -1: no limit
  int64_t thinkNs, connectTimeoutNs, ioTimeoutNs;
  double rate; // <= 0: closed loop
  int poisson;
  uint32_t seed;
  uint32_t maxInflight;
  int close;
  int lingerS;
  int64_t perConnection;
  int backlog;
  int nodelay;
  uint32_t split;
  int64_t acceptDelayNs;
  uint32_t firstWorker;
  int64_t probeIntervalNs;
  uint8_t *tmpl; // request template (NULL: the built-in echo protocol)
  uint32_t tmplLen;
  int until;
  uint32_t untilBytes;
  uint8_t *delim;
  uint32_t delimLen;
};
extern struct cfg C;

/** Parse the start message's "engine" string (k=v pairs); returns 0, or -1 with a reason on stderr. */
int cfg_parse(const char *line);

// Clock: CLOCK_MONOTONIC ns since the run's t0.
void clock_set_t0(int64_t t0);
ns_t now_ns(void);

// The built-in protocol (harness/workload/payload.ts).
#define HEADER 6
extern uint8_t *pattern; // max(Q, R) bytes of (i * 7 + 13) & 0xff
void pattern_init(uint32_t n);
void stamp(uint8_t *b, uint32_t seq, uint32_t exchange, uint32_t limit);

// IPC with the run: NODE_CHANNEL_FD, one JSON object per line.
extern int ipc_fd;
int ipc_open(void);
/** Send one message (a JSON object without the newline). */
void ipc_send(const char *json);
/** Read what is there; calls on_line for each complete line. Returns 0, or -1 when the run closed the channel. */
int ipc_read(void (*on_line)(char *line));
/** Block until a line arrives (before the loop runs). */
int ipc_wait_readable(void);
void ipc_close(void);
/** JSON string escape of s into out (size n). */
void json_escape(char *out, size_t n, const char *s);
/** A double as JSON (NaN: null). */
void json_num(char *out, size_t n, double v);

// Fixed-size records written in pages with write(2) (lib/record-file.ts).
struct recfile {
  int fd;
  uint8_t *page;
  uint32_t size, used, cap;
  uint64_t count;
};
int rec_open(struct recfile *r, const char *path, const char *magic, uint32_t size, uint32_t exchanges);
uint8_t *rec_next(struct recfile *r);
void rec_commit(struct recfile *r);
void rec_flush(struct recfile *r);
void rec_close(struct recfile *r);

// Self-check (probes/stall-monitor.ts's file format): how late the loop's own
// 10 ms timer fired, per probe interval, into probes/self-<role>.<pid>.bin.
extern ns_t stall_next;
void stall_open(const char *dir, const char *role, ns_t intervalNs);
void stall_tick(ns_t now);
void stall_close(void);

// The loop's wait: epoll until an event or `deadline` (ns since t0), with ns precision.
extern int ep;
int loop_wait(struct epoll_event *evs, int max, ns_t deadline);
/** signalfd for SIGTERM (SIGINT is ignored: the run decides when its children stop). */
int signals_open(void);
/** Add fd with a 64-bit tag. */
void ep_add(int fd, uint32_t events, uint64_t tag);

int path_join(char *out, size_t n, const char *dir, const char *file);
int client_main(void);
int server_main(void);
/** The role's handler for IPC lines after start. */
extern void (*on_message)(char *line);
/** A stop message came in the same read as the start. */
extern int early_stop;

#define TAG_IPC UINT64_MAX
#define TAG_SIGNAL (UINT64_MAX - 1)
#define TAG_LISTEN (UINT64_MAX - 2)

#endif
