// Typed loader for the native addon (native/sockspike.c): the socket calls
// Node does not expose (SO_LINGER with a timeout, TCP_INFO, raw listening
// sockets with non-blocking accept, fd readiness, pidfd_getfd).
//
// The addon is optional: when it was not built (no compiler, not Linux) or
// does not load, `native` is null and `nativeUnavailable` says why in one
// line. Importing this module never throws.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Server, Socket } from 'node:net';
import { UserError } from './errors.ts';
import { packageFile } from './paths.ts';
import { TCP_STATES } from './tcp-states.ts';

/** A readiness watch returned by watchReadable. */
export interface ReadableWatch {
  /** Stop watching and release the poll handle (uv_close). Idempotent. */
  stop(): void;
}

export interface LingerSetting {
  on: boolean;
  seconds: number;
}

/**
 * The addon's functions. All take raw file descriptors. Functions that throw
 * raise an Error with .code = errno name ('EBADF'), .errno = -errno (Node's
 * convention) and .syscall.
 */
export interface NativeAddon {
  /** setsockopt SO_LINGER {on, seconds}. Throws an Error whose .code is the errno name (e.g. 'EBADF'). */
  setLinger(fd: number, on: boolean, seconds: number): void;
  /** getsockopt SO_LINGER. Throws like setLinger. */
  getLinger(fd: number): LingerSetting;
  /**
   * getsockopt TCP_INFO into a caller-owned Uint32Array of at least
   * TCPI_LENGTH elements (no allocation per call); index it with TCPI.
   * Returns false if getsockopt failed (out is then left untouched).
   * For a LISTEN socket the kernel reports the accept-queue length in
   * UNACKED and the backlog limit in SACKED.
   */
  tcpInfo(fd: number, out: Uint32Array): boolean;
  /**
   * A non-blocking, CLOEXEC TCP listening socket bound to host:port (an IPv4
   * or IPv6 literal, "[::1]" accepted), SO_REUSEADDR on, listen(backlog).
   * Returns the fd. Throws with .code = errno name (EADDRINUSE, ...).
   */
  listen(host: string, port: number, backlog: number): number;
  /**
   * Non-blocking accept4(SOCK_NONBLOCK | SOCK_CLOEXEC). Returns the new fd, or
   * a negative errno (-EAGAIN = -11 when nothing is pending). The fd can be
   * handed to Node with `new net.Socket({ fd, readable: true, writable: true })`,
   * which then owns it (do not native.close it afterwards).
   */
  accept(fd: number): number;
  /** Local port of a socket fd (getsockname), or -errno. */
  localPort(fd: number): number;
  /**
   * close(2) an fd the addon created (listen, accept, pidfdGetfd). Stops any
   * watchReadable on that fd first. Throws with .code (EBADF on a double close).
   */
  close(fd: number): void;
  /**
   * Watch fd for readability on Node's event loop (a libuv uv_poll_t). cb runs
   * on the JS thread each time the fd is readable (level-triggered: drain it,
   * e.g. accept until -EAGAIN, or it fires again at once). If the poll itself
   * fails, cb gets an Error once and the watch stops. An exception thrown by cb
   * becomes an uncaught exception. An active watch keeps the process alive, as
   * a listening server does; after stop() it does not. One watch per fd; never
   * on an fd that Node itself polls (a net.Socket's or net.Server's).
   */
  watchReadable(fd: number, cb: (err?: Error) => void): ReadableWatch;
  /**
   * pidfd_open + pidfd_getfd (Linux >= 5.6): a duplicate (CLOEXEC) of fd
   * targetFd of process pid, in this process. Needs ptrace rights over pid.
   * Throws with .code (EPERM, ESRCH, EBADF, ENOSYS, ...).
   */
  pidfdGetfd(pid: number, targetFd: number): number;
  /**
   * The probe process's read thread (native/capture.c; the ring protocol is
   * described there and used by probes/capture.ts): reads what is due into
   * slots, slot k at firstSlotNs + k x intervalNs (CLOCK_MONOTONIC).
   * meta holds 3 numbers per slot; ctl is [head, tail, missed].
   */
  captureStart(ctl: Int32Array, meta: Float64Array, intervalNs: number, firstSlotNs: number): CaptureHandle;
  /**
   * Read fd (kind 0: pread at offset 0; 1: getsockopt TCP_INFO) every Nth
   * taken slot into data (slots x cap bytes); lens[k]: bytes, -errno, or
   * CAPTURE_NOT_READ. Returns the entry.
   */
  captureAdd(handle: CaptureHandle, kind: 0 | 1, fd: number, every: number, data: Uint8Array, lens: Int32Array): number;
  /** The thread no longer touches the entry: call before closing its fd. */
  captureRemove(handle: CaptureHandle, entry: number): void;
  /** Stop the thread (a slot being read completes first) and release every entry. */
  captureStop(handle: CaptureHandle): void;
  /** Walk /proc (every process's comm, utime + stime) every N taken slots, into the halves of out/names in turn (ctl[3] counts walks). */
  captureWalk(handle: CaptureHandle, everySlots: number, out: Float64Array, names: Uint8Array): void;
}

/** An opaque capture thread handle (captureStart). */
export type CaptureHandle = { readonly __capture: unique symbol };
/** lens[k] of an entry not due in slot k. */
export const CAPTURE_NOT_READ = -2147483648;

/** Indices into the tcpInfo output. The order is the addon's; keep in step with native/sockspike.c. */
export const TCPI = {
  STATE: 0,
  CA_STATE: 1,
  RETRANSMITS: 2,
  PROBES: 3,
  BACKOFF: 4,
  OPTIONS: 5,
  RTO_US: 6,
  ATO_US: 7,
  SND_MSS: 8,
  RCV_MSS: 9,
  UNACKED: 10,
  SACKED: 11,
  LOST: 12,
  RETRANS: 13,
  FACKETS: 14,
  LAST_DATA_SENT: 15,
  LAST_ACK_SENT: 16,
  LAST_DATA_RECV: 17,
  LAST_ACK_RECV: 18,
  PMTU: 19,
  RCV_SSTHRESH: 20,
  RTT_US: 21,
  RTTVAR_US: 22,
  SND_SSTHRESH: 23,
  SND_CWND: 24,
  ADVMSS: 25,
  REORDERING: 26,
  RCV_RTT: 27,
  RCV_SPACE: 28,
  TOTAL_RETRANS: 29,
} as const;
export const TCPI_LENGTH = 30;

export { TCP_STATES };

/** A buffer for tcpInfo; allocate once and reuse. */
export const newTcpInfoBuffer = (): Uint32Array => new Uint32Array(TCPI_LENGTH);

const FUNCTIONS = [
  'setLinger',
  'getLinger',
  'tcpInfo',
  'listen',
  'accept',
  'localPort',
  'close',
  'watchReadable',
  'pidfdGetfd',
  'captureStart',
  'captureAdd',
  'captureRemove',
  'captureStop',
  'captureWalk',
] as const satisfies ReadonlyArray<keyof NativeAddon>;

export const DEFAULT_ADDON_PATH = packageFile('native/build/Release/sockspike.node');

export type AddonLoad = { addon: NativeAddon; reason: null } | { addon: null; reason: string };

const firstLine = (err: unknown): string => String(err instanceof Error ? err.message : err).split('\n')[0];

/** Load the addon at path. Never throws: on failure, reason says why in one line. */
export function loadAddon(path: string = DEFAULT_ADDON_PATH): AddonLoad {
  if (process.platform !== 'linux') return { addon: null, reason: `the native addon is Linux-only (this is ${process.platform})` };
  if (!existsSync(path)) {
    return { addon: null, reason: `native addon not built (${path} missing; run \`npm install\`, see native/README.md)` };
  }
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(path);
  } catch (err) {
    return { addon: null, reason: `native addon did not load: ${firstLine(err)}` };
  }
  const lacking = FUNCTIONS.filter((name) => typeof loaded !== 'object' || loaded === null || typeof (loaded as Record<string, unknown>)[name] !== 'function');
  if (lacking.length > 0) {
    return { addon: null, reason: `native addon at ${path} lacks ${lacking.join(', ')} (stale build? run \`npm install\`)` };
  }
  if ((loaded as { TCPI_LENGTH?: unknown }).TCPI_LENGTH !== TCPI_LENGTH) {
    return { addon: null, reason: `native addon at ${path} has a different TCP_INFO layout (stale build? run \`npm install\`)` };
  }
  return { addon: loaded as NativeAddon, reason: null };
}

const loaded: AddonLoad = process.env.SOCKSPIKE_NO_NATIVE === '1' ? { addon: null, reason: 'native addon disabled (SOCKSPIKE_NO_NATIVE=1)' } : loadAddon();

/** The addon, or null when it did not build or load. */
export const native: NativeAddon | null = loaded.addon;
/** Why `native` is null, in one line; null when it loaded. */
export const nativeUnavailable: string | null = loaded.reason;

/** The addon, or a UserError naming what needed it and why it is missing. */
export function requireNative(feature: string): NativeAddon {
  if (native) return native;
  throw new UserError(`${feature} needs the native addon: ${nativeUnavailable}`);
}

/**
 * The OS file descriptor behind a Node socket or server, or -1 when it has
 * none (not yet connected/listening, destroyed, or not fd-backed).
 */
export function fdOf(handleOwner: Socket | Server): number {
  // Node keeps the libuv handle in the undocumented `_handle` property; its
  // `fd` getter returns the descriptor on Unix (-1 once closed). Neither is
  // in @types/node, hence this narrow structural view instead of `any`.
  const handle = (handleOwner as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : -1;
}

/**
 * Set SO_LINGER on a Node socket. {on: true, seconds: 0} makes close() send
 * an RST (no TIME_WAIT); {on: true, seconds: N} makes close(2) wait up to N s
 * for unsent data, on Linux even for a non-blocking socket, i.e. it can block
 * the event loop. Throws a UserError when the addon is missing, an Error when
 * the socket has no fd yet, and the addon's errno Error otherwise.
 */
export function setSocketLinger(socket: Socket, on: boolean, seconds: number): void {
  const addon = requireNative(`SO_LINGER {${on ? 1 : 0}, ${seconds}}`);
  const fd = fdOf(socket);
  if (fd < 0) throw new Error('setSocketLinger: the socket has no file descriptor (not connected yet, or destroyed)');
  addon.setLinger(fd, on, seconds);
}
