// sockspike native addon: the few socket calls Node does not expose.
//
// Plain C against node_api.h (N-API version 8) and libuv's uv.h, Linux only.
// Every function works on raw file descriptors; see harness/native.ts for
// the typed wrapper and native/README.md for the build.
//
// Errors: functions that throw raise an Error with .code = errno name
// ("EBADF"), .errno = -errno (Node's convention, so util.getSystemErrorName
// works) and .syscall. accept() and localPort() return -errno instead,
// since they sit on hot paths where EAGAIN is not exceptional.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
// The kernel's header, not glibc's <netinet/tcp.h>: it has the full, current
// struct tcp_info. The two headers redefine each other's types and cannot
// both be included, and <uv.h> (via uv/unix.h) includes <netinet/tcp.h>, so
// mark glibc's header as already included. libuv's headers use nothing from
// it; <linux/tcp.h> provides the TCP_* option names in its place.
#include <linux/tcp.h>
#define _NETINET_TCP_H 1

#include <node_api.h>
#include <uv.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 // same number on every architecture since 5.1
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

// Keep in step with TCPI in harness/native.ts.
#define TCPI_LENGTH 30

// ---------------------------------------------------------------- helpers

#define NAPI_OK(call)                                                        \
  do {                                                                       \
    if ((call) != napi_ok) return throw_napi_failure(env, #call);            \
  } while (0)

// Rethrow whatever N-API reported (or a generic error) and return undefined.
static napi_value throw_napi_failure(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    char msg[256];
    snprintf(msg, sizeof msg, "sockspike native: %s failed: %s", what,
             info && info->error_message ? info->error_message : "unknown N-API error");
    napi_throw_error(env, NULL, msg);
  }
  return NULL;
}

static const char *errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(err);
  if (name) return name;
#endif
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case EEXIST: return "EEXIST";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOSYS: return "ENOSYS";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENOTCONN: return "ENOTCONN";
    case ECONNRESET: return "ECONNRESET";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return "UNKNOWN";
  }
}

// Throw Error{code, errno, syscall}; returns NULL for `return throw_errno(...)`.
static napi_value throw_errno(napi_env env, int err, const char *syscall_name) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s failed: %s (%s)", syscall_name, strerror(err), errno_name(err));
  napi_value message, code, error, errno_value, syscall_value;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_error(env, code, message, &error) != napi_ok) {
    napi_throw_error(env, errno_name(err), msg);
    return NULL;
  }
  if (napi_create_int32(env, -err, &errno_value) == napi_ok)
    napi_set_named_property(env, error, "errno", errno_value);
  if (napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &syscall_value) == napi_ok)
    napi_set_named_property(env, error, "syscall", syscall_value);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

static napi_value make_int(napi_env env, int32_t v) {
  napi_value out = NULL;
  napi_create_int32(env, v, &out);
  return out;
}

static napi_value undefined(napi_env env) {
  napi_value out = NULL;
  napi_get_undefined(env, &out);
  return out;
}

// Read argv[i] as an int32 in [lo, hi]; false (with a TypeError/RangeError thrown) otherwise.
static bool arg_int(napi_env env, napi_value v, const char *name, int32_t lo, int32_t hi,
                    int32_t *out) {
  napi_valuetype t;
  double d;
  char msg[160];
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    snprintf(msg, sizeof msg, "%s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  napi_get_value_double(env, v, &d);
  if (!(d >= lo && d <= hi) || d != (double)(int32_t)d) {
    snprintf(msg, sizeof msg, "%s must be an integer in [%d, %d], got %g", name, lo, hi, d);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  *out = (int32_t)d;
  return true;
}

static bool arg_fd(napi_env env, napi_value v, int32_t *out) {
  return arg_int(env, v, "fd", 0, INT32_MAX, out);
}

// Get exactly n arguments (missing ones read as undefined).
#define ARGS(n)                                                              \
  size_t argc = (n);                                                         \
  napi_value argv[(n) > 0 ? (n) : 1];                                        \
  void *cb_data = NULL;                                                      \
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, &cb_data));         \
  (void)cb_data

// --------------------------------------------------- per-environment state

// A readiness watch. JS refers to it only by id (the stop function's data),
// never by pointer, so it can be freed as soon as libuv has closed the poll:
// no JS finalizer is involved (finalizers queued during a worker's teardown
// hit a use-after-free inside Node 20's node_napi_env__::DrainFinalizerQueue).
typedef struct watch {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async_context;
  int fd;
  uint32_t id;
  bool active;          // poll started and not yet stopped (and linked in state->watches)
  bool in_callback;     // inside napi_make_callback for this watch
  bool release_pending; // stop() ran inside the callback: release after it returns
  struct watch *next;
  struct addon_state *state;
} watch_t;

// Per napi_env (main thread, each worker). Lives until the environment's
// teardown has closed every poll handle.
typedef struct addon_state {
  watch_t *watches;  // every watch whose poll is still active
  uint32_t next_id;
  int open_handles;  // uv_poll_t initialised and not yet through uv_close
  bool tearing_down;
  napi_async_cleanup_hook_handle cleanup;
} addon_state_t;

static void watch_unlink(addon_state_t *st, watch_t *w) {
  if (!st) return;
  for (watch_t **p = &st->watches; *p; p = &(*p)->next) {
    if (*p == w) {
      *p = w->next;
      return;
    }
  }
}

static void state_teardown_done(addon_state_t *st) {
  napi_async_cleanup_hook_handle handle = st->cleanup;
  free(st);
  napi_remove_async_cleanup_hook(handle); // lets the environment finish tearing down
}

static void on_watch_closed(uv_handle_t *h) {
  watch_t *w = (watch_t *)h->data;
  addon_state_t *st = w->state;
  free(w);
  if (--st->open_handles == 0 && st->tearing_down) state_teardown_done(st);
}

static void watch_release_js(watch_t *w) {
  if (w->callback) napi_delete_reference(w->env, w->callback);
  if (w->async_context) napi_async_destroy(w->env, w->async_context);
  w->callback = NULL;
  w->async_context = NULL;
}

// Stop polling (uv_poll_stop + uv_close, so the loop is no longer kept
// alive) and, with release_js, drop the callback and its async context.
// Idempotent.
static void watch_stop(watch_t *w, bool release_js) {
  if (w->active) {
    w->active = false;
    uv_poll_stop(&w->poll);
    watch_unlink(w->state, w);
    uv_close((uv_handle_t *)&w->poll, on_watch_closed);
  }
  if (release_js) {
    if (w->in_callback)
      w->release_pending = true; // napi_make_callback is still using them
    else
      watch_release_js(w);
  }
}

// The environment is going away (process exit, worker terminated): stop
// every poll without calling back into JS (the references die with the
// environment). This is an async cleanup hook because uv_close completes
// later, on the loop, in on_watch_closed, which lives in this library: a
// worker's environment unloads its addons once its cleanup is done, and a
// close callback run after that would jump into unmapped code.
static void state_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  addon_state_t *st = (addon_state_t *)arg;
  st->tearing_down = true;
  st->cleanup = handle;
  while (st->watches) watch_stop(st->watches, false);
  if (st->open_handles == 0) state_teardown_done(st);
}

static addon_state_t *get_state(napi_env env) {
  void *data = NULL;
  napi_get_instance_data(env, &data);
  return (addon_state_t *)data;
}

// -------------------------------------------------------------- setLinger

static napi_value js_set_linger(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd, seconds;
  bool on;
  if (!arg_fd(env, argv[0], &fd)) return NULL;
  if (napi_get_value_bool(env, argv[1], &on) != napi_ok) return throw_type(env, "on must be a boolean");
  if (!arg_int(env, argv[2], "seconds", 0, INT32_MAX, &seconds)) return NULL;
  struct linger l = {.l_onoff = on ? 1 : 0, .l_linger = seconds};
  if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0)
    return throw_errno(env, errno, "setsockopt(SO_LINGER)");
  return undefined(env);
}

// -------------------------------------------------------------- getLinger

static napi_value js_get_linger(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!arg_fd(env, argv[0], &fd)) return NULL;
  struct linger l = {0, 0};
  socklen_t len = sizeof l;
  if (getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &len) != 0)
    return throw_errno(env, errno, "getsockopt(SO_LINGER)");
  napi_value out, on, seconds;
  NAPI_OK(napi_create_object(env, &out));
  NAPI_OK(napi_get_boolean(env, l.l_onoff != 0, &on));
  NAPI_OK(napi_create_int32(env, l.l_linger, &seconds));
  NAPI_OK(napi_set_named_property(env, out, "on", on));
  NAPI_OK(napi_set_named_property(env, out, "seconds", seconds));
  return out;
}

// ---------------------------------------------------------------- tcpInfo

static napi_value js_tcp_info(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  if (!arg_fd(env, argv[0], &fd)) return NULL;
  bool is_ta = false;
  napi_is_typedarray(env, argv[1], &is_ta);
  if (!is_ta) return throw_type(env, "out must be a Uint32Array");
  napi_typedarray_type type;
  size_t length;
  void *data;
  NAPI_OK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL));
  if (type != napi_uint32_array) return throw_type(env, "out must be a Uint32Array");
  if (length < TCPI_LENGTH) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "out must hold at least TCPI_LENGTH elements");
    return NULL;
  }

  struct tcp_info ti;
  memset(&ti, 0, sizeof ti);
  socklen_t len = sizeof ti;
  napi_value result;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) {
    NAPI_OK(napi_get_boolean(env, false, &result));
    return result;
  }
  uint32_t *o = (uint32_t *)data;
  o[0] = ti.tcpi_state;
  o[1] = ti.tcpi_ca_state;
  o[2] = ti.tcpi_retransmits;
  o[3] = ti.tcpi_probes;
  o[4] = ti.tcpi_backoff;
  o[5] = ti.tcpi_options;
  o[6] = ti.tcpi_rto;
  o[7] = ti.tcpi_ato;
  o[8] = ti.tcpi_snd_mss;
  o[9] = ti.tcpi_rcv_mss;
  o[10] = ti.tcpi_unacked;
  o[11] = ti.tcpi_sacked;
  o[12] = ti.tcpi_lost;
  o[13] = ti.tcpi_retrans;
  o[14] = ti.tcpi_fackets;
  o[15] = ti.tcpi_last_data_sent;
  o[16] = ti.tcpi_last_ack_sent;
  o[17] = ti.tcpi_last_data_recv;
  o[18] = ti.tcpi_last_ack_recv;
  o[19] = ti.tcpi_pmtu;
  o[20] = ti.tcpi_rcv_ssthresh;
  o[21] = ti.tcpi_rtt;
  o[22] = ti.tcpi_rttvar;
  o[23] = ti.tcpi_snd_ssthresh;
  o[24] = ti.tcpi_snd_cwnd;
  o[25] = ti.tcpi_advmss;
  o[26] = ti.tcpi_reordering;
  o[27] = ti.tcpi_rcv_rtt;
  o[28] = ti.tcpi_rcv_space;
  o[29] = ti.tcpi_total_retrans;
  NAPI_OK(napi_get_boolean(env, true, &result));
  return result;
}

// ----------------------------------------------------------------- listen

static napi_value js_listen(napi_env env, napi_callback_info info) {
  ARGS(3);
  char host[INET6_ADDRSTRLEN + 3];
  size_t host_len = 0;
  int32_t port, backlog;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &host_len) != napi_ok)
    return throw_type(env, "host must be a string (an IPv4 or IPv6 literal)");
  if (!arg_int(env, argv[1], "port", 0, 65535, &port)) return NULL;
  if (!arg_int(env, argv[2], "backlog", 0, INT32_MAX, &backlog)) return NULL;

  // Accept "[::1]" as well as "::1".
  char *h = host;
  if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
    host[host_len - 1] = '\0';
    h = host + 1;
  }

  struct sockaddr_storage ss;
  socklen_t sslen;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, h, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    sslen = sizeof *sin;
  } else if (inet_pton(AF_INET6, h, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    sslen = sizeof *sin6;
  } else {
    char msg[128];
    snprintf(msg, sizeof msg, "listen: host '%.60s' is not an IPv4 or IPv6 literal", h);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return NULL;
  }

  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  int one = 1;
  const char *failed = NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    failed = "setsockopt(SO_REUSEADDR)";
  else if (bind(fd, (struct sockaddr *)&ss, sslen) != 0)
    failed = "bind";
  else if (listen(fd, backlog) != 0)
    failed = "listen";
  if (failed) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, failed);
  }
  return make_int(env, fd);
}

// ----------------------------------------------------------------- accept

static napi_value js_accept(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!arg_fd(env, argv[0], &fd)) return NULL;
  int c;
  do {
    c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } while (c < 0 && errno == EINTR);
  return make_int(env, c >= 0 ? c : -errno);
}

// -------------------------------------------------------------- localPort

static napi_value js_local_port(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!arg_fd(env, argv[0], &fd)) return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return make_int(env, -errno);
  if (ss.ss_family == AF_INET) return make_int(env, ntohs(((struct sockaddr_in *)&ss)->sin_port));
  if (ss.ss_family == AF_INET6) return make_int(env, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
  return make_int(env, -EAFNOSUPPORT);
}

// ------------------------------------------------------------------ close

static napi_value js_close(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!arg_fd(env, argv[0], &fd)) return NULL;
  // A poll on a closed fd is undefined behaviour for libuv: stop any watch first.
  addon_state_t *st = get_state(env);
  if (st) {
    watch_t *w = st->watches;
    while (w) {
      watch_t *next = w->next;
      if (w->fd == fd) watch_stop(w, true);
      w = next;
    }
  }
  // On Linux the fd is released even when close() reports EINTR: never retry.
  if (close(fd) != 0 && errno != EINTR) return throw_errno(env, errno, "close");
  return undefined(env);
}

// ---------------------------------------------------------- watchReadable

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  watch_t *w = (watch_t *)handle->data;
  if (!w->active || !w->callback || w->state->tearing_down) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;

  napi_value cb, recv, argv[1], result;
  size_t argc = 0;
  if (napi_get_reference_value(env, w->callback, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &recv) == napi_ok) { // napi_make_callback needs an object receiver
    if (status < 0) {
      // The poll failed (EBADF, ...): tell the callback once, then stop.
      napi_value msg, code;
      char text[160];
      snprintf(text, sizeof text, "watchReadable: poll failed: %s (%s)", uv_strerror(status),
               uv_err_name(status));
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
      napi_create_string_utf8(env, uv_err_name(status), NAPI_AUTO_LENGTH, &code);
      napi_create_error(env, code, msg, &argv[0]);
      argc = 1;
    }
    // napi_make_callback runs the callback inside its async context and drains
    // process.nextTick and microtasks afterwards, as Node's own I/O callbacks do.
    w->in_callback = true;
    napi_make_callback(env, w->async_context, recv, cb, argc, argv, &result);
    w->in_callback = false;
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (status < 0) watch_stop(w, true);
    if (w->release_pending) {
      w->release_pending = false;
      watch_release_js(w);
    }
    if (pending) {
      // Surface an exception from the callback as an uncaught exception
      // (process 'uncaughtException', or the usual crash with its stack).
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static napi_value js_watch_stop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void *data = NULL;
  NAPI_OK(napi_get_cb_info(env, info, &argc, NULL, NULL, &data));
  uint32_t id = (uint32_t)(uintptr_t)data;
  addon_state_t *st = get_state(env);
  // Only active watches are listed: a second stop() finds nothing.
  for (watch_t *w = st ? st->watches : NULL; w; w = w->next) {
    if (w->id == id) {
      watch_stop(w, true);
      break;
    }
  }
  return undefined(env);
}

static napi_value js_watch_readable(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  if (!arg_fd(env, argv[0], &fd)) return NULL;
  napi_valuetype t;
  NAPI_OK(napi_typeof(env, argv[1], &t));
  if (t != napi_function) return throw_type(env, "cb must be a function");
  addon_state_t *st = get_state(env);
  if (!st) {
    napi_throw_error(env, NULL, "sockspike native: addon state missing");
    return NULL;
  }
  if (fcntl(fd, F_GETFD) < 0) return throw_errno(env, errno, "watchReadable");
  // libuv allows one poll per fd per loop; a second would silently never fire.
  for (watch_t *o = st->watches; o; o = o->next)
    if (o->fd == fd) return throw_errno(env, EEXIST, "watchReadable (fd already watched)");

  uv_loop_t *loop;
  NAPI_OK(napi_get_uv_event_loop(env, &loop));
  watch_t *w = (watch_t *)calloc(1, sizeof *w);
  if (!w) return throw_errno(env, ENOMEM, "watchReadable");
  w->env = env;
  w->fd = fd;
  w->state = st;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) {
    free(w);
    return throw_errno(env, -rc, "uv_poll_init");
  }
  w->poll.data = w;
  st->open_handles++;
  w->id = ++st->next_id;
  if (w->id == 0) w->id = ++st->next_id;

  napi_value name, handle, stop_fn;
  napi_status s = napi_create_reference(env, argv[1], 1, &w->callback);
  if (s == napi_ok) s = napi_create_string_utf8(env, "sockspike:watchReadable", NAPI_AUTO_LENGTH, &name);
  if (s == napi_ok) s = napi_async_init(env, NULL, name, &w->async_context);
  if (s == napi_ok) s = napi_create_object(env, &handle);
  if (s == napi_ok)
    s = napi_create_function(env, "stop", NAPI_AUTO_LENGTH, js_watch_stop, (void *)(uintptr_t)w->id, &stop_fn);
  if (s == napi_ok) s = napi_set_named_property(env, handle, "stop", stop_fn);
  rc = s == napi_ok ? uv_poll_start(&w->poll, UV_READABLE, on_readable) : 0;
  if (s != napi_ok || rc != 0) {
    watch_release_js(w);
    uv_close((uv_handle_t *)&w->poll, on_watch_closed); // frees w
    return s != napi_ok ? throw_napi_failure(env, "watchReadable") : throw_errno(env, -rc, "uv_poll_start");
  }
  w->active = true;
  w->next = st->watches;
  st->watches = w;
  return handle;
}

// ------------------------------------------------------------- pidfdGetfd

static napi_value js_pidfd_getfd(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t pid, target;
  if (!arg_int(env, argv[0], "pid", 1, INT32_MAX, &pid)) return NULL;
  if (!arg_int(env, argv[1], "targetFd", 0, INT32_MAX, &target)) return NULL;
  long pidfd = syscall(SYS_pidfd_open, (pid_t)pid, 0);
  if (pidfd < 0) return throw_errno(env, errno, "pidfd_open");
  long fd = syscall(SYS_pidfd_getfd, (int)pidfd, target, 0); // the new fd is O_CLOEXEC
  int err = errno;
  close((int)pidfd);
  if (fd < 0) return throw_errno(env, err, "pidfd_getfd");
  return make_int(env, (int32_t)fd);
}

// ------------------------------------------------------------------- init

// The probe process's read thread (capture.c).
napi_status capture_define(napi_env env, napi_value exports);

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  addon_state_t *st = (addon_state_t *)calloc(1, sizeof *st);
  if (!st) {
    napi_throw_error(env, NULL, "sockspike native: cannot allocate addon state");
    return NULL;
  }
  if (napi_add_async_cleanup_hook(env, state_cleanup, st, NULL) != napi_ok) {
    free(st);
    return throw_napi_failure(env, "napi_add_async_cleanup_hook");
  }
  // From here on st belongs to the cleanup hook, which frees it.
  NAPI_OK(napi_set_instance_data(env, st, NULL, NULL));

  napi_property_descriptor props[] = {
      {"setLinger", NULL, js_set_linger, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getLinger", NULL, js_get_linger, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tcpInfo", NULL, js_tcp_info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listen", NULL, js_listen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"accept", NULL, js_accept, NULL, NULL, NULL, napi_enumerable, NULL},
      {"localPort", NULL, js_local_port, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watchReadable", NULL, js_watch_readable, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pidfdGetfd", NULL, js_pidfd_getfd, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_OK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  NAPI_OK(capture_define(env, exports));
  napi_value len;
  NAPI_OK(napi_create_int32(env, TCPI_LENGTH, &len));
  NAPI_OK(napi_set_named_property(env, exports, "TCPI_LENGTH", len));
  return exports;
}
