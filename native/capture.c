// The probe process's reads, on a thread of their own.
//
// A Node process that wakes every 20 ms to pread a few /proc files costs
// ~1.7 % of a core on a 2-CPU VM (libuv's turn, the JS-to-C++ call per
// read, caches cold after each sleep); the same reads from a C thread cost
// about half. So this thread keeps the schedule (slot k at start + k x
// interval, on CLOCK_MONOTONIC), reads what is due into a ring of slots the
// JS side owns, and the JS side wakes a few times a second to parse the
// slots it finds written (probes/capture.ts). Nothing is allocated after
// start: the ring and the per-entry buffers are JS typed arrays, kept alive
// by references until the entry is removed or the capture stops.
//
// Ring protocol (ctl, an Int32Array the JS side reads with Atomics):
//   ctl[0] head: slots written (the thread stores it after a slot is complete)
//   ctl[1] tail: slots consumed (JS stores it after parsing)
//   ctl[2] missed: slots not taken (more than half an interval late, or the
//          ring full because JS fell behind); rows are numbered by taken slots
//   ctl[3] walks: /proc walks completed (captureWalk), written into the two
//          halves of the walk buffers in turn
// meta (Float64Array, 3 per slot): scheduled ns, read start ns (both
// CLOCK_MONOTONIC), read duration ns. Per entry and slot, lens[k]: bytes
// read, -errno, or CAP_NOT_READ when the entry was not due.

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/tcp.h>

#include <node_api.h>

#define CAP_MAX_ENTRIES 128
#define CAP_NOT_READ INT32_MIN
#define CAP_KIND_FILE 0
#define CAP_KIND_TCP_INFO 1
#define WALK_COMM 16

typedef struct {
  bool used;
  int kind;
  int fd;
  int every;
  uint32_t cap;
  uint8_t *data; // slots x cap
  int32_t *lens; // slots
  napi_ref dataRef, lensRef;
} cap_entry_t;

typedef struct {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cond;
  bool running;
  bool stop;
  int64_t intervalNs;
  int64_t next;
  uint32_t slots;
  uint64_t row;
  _Atomic int32_t *ctl;
  double *meta;
  napi_ref ctlRef, metaRef;
  cap_entry_t entries[CAP_MAX_ENTRIES];
  // the walk of every process (other-processes.ts), every walkEvery taken slots
  DIR *proc;
  uint64_t walkEvery;
  uint32_t walkMax;
  double *walkOut;     // 2 halves x (2 + 2 x walkMax): time, count, then pid, ticks per process
  uint8_t *walkNames;  // 2 halves x walkMax x WALK_COMM
  napi_ref walkOutRef, walkNamesRef;
} capture_t;

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void take_slot(capture_t *c, uint32_t k) {
  int64_t t = mono_ns();
  for (int i = 0; i < CAP_MAX_ENTRIES; i++) {
    cap_entry_t *e = &c->entries[i];
    if (!e->used) continue;
    if ((c->row + 1) % (uint64_t)e->every != 0) {
      e->lens[k] = CAP_NOT_READ;
      continue;
    }
    uint8_t *dst = e->data + (size_t)k * e->cap;
    if (e->kind == CAP_KIND_TCP_INFO) {
      socklen_t len = e->cap;
      e->lens[k] = getsockopt(e->fd, IPPROTO_TCP, TCP_INFO, dst, &len) == 0 ? (int32_t)len : -errno;
    } else {
      ssize_t n = pread(e->fd, dst, e->cap, 0);
      e->lens[k] = n >= 0 ? (int32_t)n : -errno;
    }
  }
  int64_t end = mono_ns();
  c->meta[k * 3] = (double)c->next;
  c->meta[k * 3 + 1] = (double)t;
  c->meta[k * 3 + 2] = (double)(end - t);
}

// One /proc/PID/stat: its comm and utime + stime (clock ticks); false if unreadable.
static bool read_proc_stat(int dirfd, const char *pid, uint8_t *comm, double *ticks) {
  char path[32], buf[1024];
  snprintf(path, sizeof path, "%s/stat", pid);
  int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  char *open = memchr(buf, '(', (size_t)n), *close_ = strrchr(buf, ')');
  if (!open || !close_ || close_ < open) return false;
  size_t len = (size_t)(close_ - open - 1);
  if (len > WALK_COMM - 1) len = WALK_COMM - 1;
  memset(comm, 0, WALK_COMM);
  memcpy(comm, open + 1, len);
  // after ") ": state is field 3; utime and stime are fields 14 and 15
  char *p = close_ + 2;
  for (int field = 3; field < 14 && *p; p++)
    if (*p == ' ') field++;
  char *end;
  unsigned long long ut = strtoull(p, &end, 10);
  unsigned long long st = strtoull(end, NULL, 10);
  *ticks = (double)ut + (double)st;
  return true;
}

static void walk(capture_t *c, uint32_t half) {
  double *out = c->walkOut + (size_t)half * (2 + 2 * c->walkMax);
  uint8_t *names = c->walkNames + (size_t)half * c->walkMax * WALK_COMM;
  uint32_t n = 0;
  rewinddir(c->proc);
  int dfd = dirfd(c->proc);
  struct dirent *e;
  while ((e = readdir(c->proc)) != NULL && n < c->walkMax) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    double ticks;
    if (!read_proc_stat(dfd, e->d_name, names + (size_t)n * WALK_COMM, &ticks)) continue;
    out[2 + 2 * n] = strtod(e->d_name, NULL);
    out[3 + 2 * n] = ticks;
    n++;
  }
  out[0] = (double)mono_ns();
  out[1] = n;
}

static void *capture_loop(void *arg) {
  capture_t *c = (capture_t *)arg;
  pthread_mutex_lock(&c->mu);
  while (!c->stop) {
    struct timespec until = {.tv_sec = c->next / 1000000000LL, .tv_nsec = c->next % 1000000000LL};
    int rc = 0;
    while (!c->stop && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&c->cond, &c->mu, &until);
    if (c->stop) break;
    int64_t now = mono_ns();
    // more than half a slot behind: the slots passed are missed, not caught up in a burst
    while (now - c->next > c->intervalNs / 2) {
      c->next += c->intervalNs;
      atomic_fetch_add(&c->ctl[2], 1);
    }
    if (c->next > now) continue; // woken early
    int32_t head = atomic_load(&c->ctl[0]);
    int32_t tail = atomic_load(&c->ctl[1]);
    if ((uint32_t)(head - tail) >= c->slots) {
      atomic_fetch_add(&c->ctl[2], 1); // JS fell behind: nothing overwritten
    } else {
      take_slot(c, (uint32_t)head % c->slots);
      c->row++;
      atomic_store(&c->ctl[0], head + 1);
      // the first walk with the first slot (the baseline), then every walkEvery slots
      if (c->proc && (c->row - 1) % c->walkEvery == 0) {
        int32_t walks = atomic_load(&c->ctl[3]);
        walk(c, (uint32_t)walks & 1);
        atomic_store(&c->ctl[3], walks + 1);
      }
    }
    c->next += c->intervalNs;
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

// ------------------------------------------------------------------ JS side

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static bool typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *length) {
  bool is = false;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  if (napi_get_typedarray_info(env, v, &type, length, data, &ab, &off) != napi_ok) return false;
  return type == want;
}

static capture_t *handle_of(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return (capture_t *)p;
}

static void release_entry(napi_env env, cap_entry_t *e) {
  if (e->dataRef) napi_delete_reference(env, e->dataRef);
  if (e->lensRef) napi_delete_reference(env, e->lensRef);
  memset(e, 0, sizeof *e);
}

static void stop_thread(capture_t *c) {
  if (!c->running) return;
  pthread_mutex_lock(&c->mu);
  c->stop = true;
  pthread_cond_signal(&c->cond);
  pthread_mutex_unlock(&c->mu);
  pthread_join(c->thread, NULL);
  c->running = false;
}

// The capture is freed with its handle (an external): stopped first if JS forgot to.
static void capture_finalize(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  capture_t *c = (capture_t *)data;
  stop_thread(c);
  if (c->proc) closedir(c->proc);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cond);
  free(c);
}

// captureStart(ctl: Int32Array(>=3), meta: Float64Array(3 x slots), intervalNs, firstSlotNs): handle
static napi_value js_capture_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) return fail(env, "captureStart: 4 arguments");
  void *ctl, *meta;
  size_t nctl, nmeta;
  double interval, first;
  if (!typed(env, argv[0], napi_int32_array, &ctl, &nctl) || nctl < 4) return fail(env, "captureStart: ctl must be an Int32Array(4)");
  if (!typed(env, argv[1], napi_float64_array, &meta, &nmeta) || nmeta < 3 || nmeta % 3 != 0) return fail(env, "captureStart: meta must be a Float64Array(3 x slots)");
  if (napi_get_value_double(env, argv[2], &interval) != napi_ok || !(interval >= 1e6)) return fail(env, "captureStart: interval of at least 1 ms");
  if (napi_get_value_double(env, argv[3], &first) != napi_ok) return fail(env, "captureStart: first slot time");
  capture_t *c = (capture_t *)calloc(1, sizeof *c);
  if (!c) return fail(env, "captureStart: out of memory");
  c->ctl = (_Atomic int32_t *)ctl;
  c->meta = (double *)meta;
  c->slots = (uint32_t)(nmeta / 3);
  c->intervalNs = (int64_t)interval;
  c->next = (int64_t)first;
  pthread_mutex_init(&c->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->cond, &ca);
  pthread_condattr_destroy(&ca);
  napi_value handle;
  if (napi_create_reference(env, argv[0], 1, &c->ctlRef) != napi_ok || napi_create_reference(env, argv[1], 1, &c->metaRef) != napi_ok ||
      napi_create_external(env, c, capture_finalize, NULL, &handle) != napi_ok) {
    free(c);
    return fail(env, "captureStart: N-API failure");
  }
  int err = pthread_create(&c->thread, NULL, capture_loop, c);
  if (err != 0) return fail(env, "captureStart: cannot start the capture thread");
  c->running = true;
  return handle;
}

// captureAdd(handle, kind 0 file / 1 TCP_INFO, fd, every, data: Uint8Array(slots x cap), lens: Int32Array(slots)): entry index
static napi_value js_capture_add(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) return fail(env, "captureAdd: 6 arguments");
  capture_t *c = handle_of(env, argv[0]);
  int32_t kind, fd, every;
  void *data, *lens;
  size_t ndata, nlens;
  if (!c) return fail(env, "captureAdd: not a capture");
  if (napi_get_value_int32(env, argv[1], &kind) != napi_ok || (kind != CAP_KIND_FILE && kind != CAP_KIND_TCP_INFO)) return fail(env, "captureAdd: kind 0 or 1");
  if (napi_get_value_int32(env, argv[2], &fd) != napi_ok || fd < 0) return fail(env, "captureAdd: fd");
  if (napi_get_value_int32(env, argv[3], &every) != napi_ok || every < 1) return fail(env, "captureAdd: every >= 1");
  if (!typed(env, argv[4], napi_uint8_array, &data, &ndata) || ndata == 0 || ndata % c->slots != 0) return fail(env, "captureAdd: data must be a Uint8Array(slots x cap)");
  if (!typed(env, argv[5], napi_int32_array, &lens, &nlens) || nlens != c->slots) return fail(env, "captureAdd: lens must be an Int32Array(slots)");
  pthread_mutex_lock(&c->mu);
  int at = -1;
  for (int i = 0; i < CAP_MAX_ENTRIES && at < 0; i++)
    if (!c->entries[i].used) at = i;
  if (at >= 0) {
    cap_entry_t *e = &c->entries[at];
    e->kind = kind;
    e->fd = fd;
    e->every = every;
    e->cap = (uint32_t)(ndata / c->slots);
    e->data = (uint8_t *)data;
    e->lens = (int32_t *)lens;
    for (uint32_t k = 0; k < c->slots; k++) e->lens[k] = CAP_NOT_READ;
    if (napi_create_reference(env, argv[4], 1, &e->dataRef) != napi_ok || napi_create_reference(env, argv[5], 1, &e->lensRef) != napi_ok) {
      release_entry(env, e);
      at = -2;
    } else
      e->used = true;
  }
  pthread_mutex_unlock(&c->mu);
  if (at == -1) return fail(env, "captureAdd: too many entries");
  if (at == -2) return fail(env, "captureAdd: N-API failure");
  napi_value out;
  napi_create_int32(env, at, &out);
  return out;
}

// captureRemove(handle, index): the thread no longer touches the entry (call before closing its fd)
static napi_value js_capture_remove(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t at;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return fail(env, "captureRemove: 2 arguments");
  capture_t *c = handle_of(env, argv[0]);
  if (!c || napi_get_value_int32(env, argv[1], &at) != napi_ok || at < 0 || at >= CAP_MAX_ENTRIES) return fail(env, "captureRemove: handle, index");
  pthread_mutex_lock(&c->mu);
  if (c->entries[at].used) release_entry(env, &c->entries[at]);
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

// captureStop(handle): the thread ends (a slot being read is completed first); entries released
static napi_value js_capture_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return fail(env, "captureStop: handle");
  capture_t *c = handle_of(env, argv[0]);
  if (!c) return fail(env, "captureStop: not a capture");
  stop_thread(c);
  for (int i = 0; i < CAP_MAX_ENTRIES; i++)
    if (c->entries[i].used) release_entry(env, &c->entries[i]);
  if (c->ctlRef) napi_delete_reference(env, c->ctlRef);
  if (c->metaRef) napi_delete_reference(env, c->metaRef);
  if (c->walkOutRef) napi_delete_reference(env, c->walkOutRef);
  if (c->walkNamesRef) napi_delete_reference(env, c->walkNamesRef);
  c->ctlRef = c->metaRef = c->walkOutRef = c->walkNamesRef = NULL;
  if (c->proc) closedir(c->proc);
  c->proc = NULL;
  return NULL;
}

// captureWalk(handle, everySlots, out: Float64Array(2 x (2 + 2 x max)), names: Uint8Array(2 x max x 16)):
// walk /proc every everySlots taken slots, into the halves in turn (ctl[3] counts the walks)
static napi_value js_capture_walk(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t every;
  void *out, *names;
  size_t nout, nnames;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) return fail(env, "captureWalk: 4 arguments");
  capture_t *c = handle_of(env, argv[0]);
  if (!c) return fail(env, "captureWalk: not a capture");
  if (napi_get_value_int32(env, argv[1], &every) != napi_ok || every < 1) return fail(env, "captureWalk: every >= 1");
  if (!typed(env, argv[2], napi_float64_array, &out, &nout) || nout < 8 || nout % 2 != 0 || (nout / 2 - 2) % 2 != 0) return fail(env, "captureWalk: out must be a Float64Array(2 x (2 + 2 x max))");
  uint32_t max = (uint32_t)((nout / 2 - 2) / 2);
  if (!typed(env, argv[3], napi_uint8_array, &names, &nnames) || nnames != (size_t)2 * max * WALK_COMM) return fail(env, "captureWalk: names must be a Uint8Array(2 x max x 16)");
  DIR *proc = opendir("/proc");
  if (!proc) return fail(env, "captureWalk: cannot open /proc");
  pthread_mutex_lock(&c->mu);
  if (c->proc || napi_create_reference(env, argv[2], 1, &c->walkOutRef) != napi_ok || napi_create_reference(env, argv[3], 1, &c->walkNamesRef) != napi_ok) {
    pthread_mutex_unlock(&c->mu);
    closedir(proc);
    return fail(env, "captureWalk: already walking, or N-API failure");
  }
  c->walkOut = (double *)out;
  c->walkNames = (uint8_t *)names;
  c->walkMax = max;
  c->walkEvery = (uint64_t)every;
  c->proc = proc;
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

napi_status capture_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"captureStart", NULL, js_capture_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"captureAdd", NULL, js_capture_add, NULL, NULL, NULL, napi_enumerable, NULL},
      {"captureRemove", NULL, js_capture_remove, NULL, NULL, NULL, napi_enumerable, NULL},
      {"captureStop", NULL, js_capture_stop, NULL, NULL, NULL, napi_enumerable, NULL},
      {"captureWalk", NULL, js_capture_walk, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
