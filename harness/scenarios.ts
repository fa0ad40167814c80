import { packageFile } from '../lib/paths.ts';

// Named presets for `sockspike run --scenario NAME`: the reported case, one
// reproduction per catalogue cause that one machine can show, and a clean
// baseline. Values are run flags (commander's camelCase keys); flags given on
// the command line win. Each runs in a namespace of its own, so the host's
// TIME_WAIT and sysctls neither help nor spoil it.

const PYTHON_SERVER = packageFile('fixtures/servers/reported-case-server.py');
const SLOW_SERVER = packageFile('fixtures/servers/slow-server.py');

/** The reported case's workload: one client in a closed loop, 3000 bytes echoed in two exchanges, 100 ms threshold. */
const REPORTED_WORKLOAD = {
  netns: true,
  concurrency: '1',
  requestBytes: '3000',
  responseBytes: '3000',
  exchanges: '2',
  outlier: '100ms',
  duration: '30s',
};

export interface Scenario {
  name: string;
  /** The catalogue cause it reproduces (null: none, the clean baseline). */
  cause: string | null;
  /** Causes it reproduces besides, in other spells of the run: each must be named too, and any of them may come first. */
  also?: string[];
  description: string;
  flags: Record<string, string | boolean | string[]>;
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'reported-case',
    cause: 'accept-queue-overflow',
    description:
      'The reported case: one client, 3000-byte request echoed in two exchanges, server listener with SO_LINGER {1,0} and backlog 1, connection per transaction. ' +
      'On a current kernel one closed-loop client rarely fills even that queue; add --concurrency 4 to see the overflow',
    flags: { ...REPORTED_WORKLOAD, close: 'server-rst', backlog: '1' },
  },
  {
    name: 'reported-case-python',
    cause: 'accept-queue-overflow',
    description:
      'The reported case with a server like the one in the report: a single-threaded Python accept loop (fixtures/servers/reported-case-server.py), backlog 1 and SO_LINGER {1,0} on its listener; add --concurrency 4 to see the overflow',
    flags: { ...REPORTED_WORKLOAD, serverCmd: `python3 ${PYTHON_SERVER} --port {port}` },
  },
  {
    name: 'accept-queue-overflow',
    cause: 'accept-queue-overflow',
    description: 'Backlog 1 and a slow accept loop under 4 clients: SYNs dropped on a full accept queue, connect() waits for the SYN retransmission (1 s)',
    flags: { netns: true, concurrency: '4', backlog: '1', acceptDelay: '1ms', close: 'server-rst', outlier: '100ms', duration: '6s' },
  },
  {
    name: 'abort-on-overflow',
    cause: 'accept-queue-overflow',
    description:
      'Backlog 1, a slow accept loop and tcp_abort_on_overflow=1 under 4 clients: the full queue drops SYNs (1 s retransmissions) and answers handshakes with resets (ECONNRESET), which are the overflow and not an abortive close',
    flags: {
      netns: true,
      concurrency: '4',
      backlog: '1',
      acceptDelay: '1ms',
      close: 'client-fin',
      sysctl: ['net.ipv4.tcp_abort_on_overflow=1'],
      outlier: '100ms',
      duration: '5s',
    },
  },
  {
    name: 'syn-loss',
    cause: 'syn-loss',
    description: '5 % of SYNs toward the server dropped (nftables): connect() waits for the SYN retransmission, with the accept queue far from full',
    flags: { netns: true, concurrency: '2', fault: ['syn-drop:5%'], outlier: '100ms', duration: '6s' },
  },
  {
    name: 'data-retransmit',
    cause: 'data-retransmit',
    description: '2 % of data segments toward the server dropped (nftables): exchanges wait for the retransmission timeout (>= 200 ms)',
    flags: { netns: true, concurrency: '2', fault: ['data-drop:2%'], outlier: '100ms', duration: '6s' },
  },
  {
    name: 'nagle-delayed-ack',
    cause: 'nagle-delayed-ack',
    description: 'Each request written in two writes with Nagle on: the second write waits for the ACK the server delays (40 ms)',
    flags: { netns: true, concurrency: '1', splitWrites: '2', nodelay: 'off', close: 'client-fin', outlier: '20ms', duration: '5s' },
  },
  {
    name: 'nagle-several-exchanges',
    cause: 'nagle-delayed-ack',
    description:
      'Nagle meets delayed ACK in four exchanges per connection: each exchange after the first waits ~40 ms, so a transaction waits 3 x 40 ms, which no single timer matches',
    flags: { netns: true, concurrency: '1', splitWrites: '2', nodelay: 'off', exchanges: '4', close: 'client-fin', outlier: '20ms', duration: '5s' },
  },
  {
    name: 'port-exhaustion',
    cause: 'port-exhaustion',
    description: 'Client-first close with tcp_tw_reuse=0 and 200 local ports: TIME_WAIT holds every port, connect() fails with EADDRNOTAVAIL',
    flags: {
      netns: true,
      concurrency: '4',
      close: 'client-fin',
      sysctl: ['net.ipv4.tcp_tw_reuse=0', 'net.ipv4.ip_local_port_range=40000 40199'],
      outlier: '100ms',
      duration: '4s',
    },
  },
  {
    name: 'abortive-close',
    cause: 'abortive-close-reset',
    description:
      'A server that answers one exchange and closes with SO_LINGER {1,0} while the client still has a second request to send: the reset meets it (ECONNRESET)',
    flags: { netns: true, concurrency: '2', close: 'server-rst', exchanges: '2', serverExchanges: '1', outlier: '100ms', duration: '4s' },
  },
  {
    name: 'cpu-saturation',
    cause: 'cpu-saturation',
    description:
      'Eight busy processes competing for the CPUs with one client and the server from the 2nd to the 4th second (10 ms threshold: the waits for a CPU are a few ms each)',
    flags: { netns: true, concurrency: '1', fault: ['cpu-hog:8@2s-4s'], outlier: '10ms', duration: '6s' },
  },
  {
    name: 'slow-server',
    cause: 'server-processing',
    description:
      'A server application that holds every 20th answer for 150 ms (fixtures/servers/slow-server.py, a thread per connection): the time goes in the server, not the network or the kernel',
    flags: {
      netns: true,
      concurrency: '2',
      serverCmd: `python3 ${SLOW_SERVER} --port {port} --stall-every 20 --stall-ms 150`,
      outlier: '50ms',
      duration: '5s',
    },
  },
  {
    name: 'two-spells',
    cause: 'data-retransmit',
    also: ['cpu-saturation'],
    description:
      'Two problems in separate spells of one run: 3 % of data segments dropped from 1 s to 3 s (retransmission timeouts), then eight busy processes from 5 s to 7 s (waits for a CPU); each is named with its spell',
    flags: { netns: true, concurrency: '2', fault: ['data-drop:3%@1s-3s', 'cpu-hog:8@5s-7s'], outlier: '10ms', duration: '8s' },
  },
  {
    name: 'clean',
    cause: null,
    description: 'A clean baseline: one client, default workload, nothing injected; a 100 ms outlier threshold',
    flags: { netns: true, concurrency: '1', outlier: '100ms', duration: '5s' },
  },
];

export const scenarioNamed = (name: string): Scenario | undefined => SCENARIOS.find((s) => s.name === name);
