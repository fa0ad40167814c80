// sockspike-engine client|server: started by the run (harness/children.ts)
// with Node's IPC channel on NODE_CHANNEL_FD. It waits for the start
// message, whose "engine" field (harness/engine.ts) holds the configuration
// as k=v pairs, then runs the client or the server loop (client.c,
// server.c) until done, told to stop, or left by the run.
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static char *startLine;
int early_stop;

static void before_start(char *line) {
  if (startLine == NULL && strncmp(line, "{\"type\":\"start\"", 15) == 0) startLine = strdup(line);
  else if (startLine != NULL && strncmp(line, "{\"type\":\"stop\"", 14) == 0) early_stop = 1; // sent right behind the start
}

int main(int argc, char **argv) {
  if (argc != 2 || (strcmp(argv[1], "client") != 0 && strcmp(argv[1], "server") != 0)) {
    fprintf(stderr, "usage: sockspike-engine client|server (started by sockspike run, with an IPC channel)\n");
    return 2;
  }
  if (ipc_open() < 0) {
    fprintf(stderr, "sockspike-engine: no IPC channel (NODE_CHANNEL_FD): it is started by sockspike run\n");
    return 2;
  }
  // open-loop starts and the stall timer want their wake-ups on time, not within 50 us of slack
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  while (startLine == NULL) {
    if (ipc_wait_readable() < 0) continue;
    if (ipc_read(before_start) < 0 && startLine == NULL) return 1; // the run went away
  }
  const char *e = strstr(startLine, "\"engineArgs\":\"");
  if (e == NULL) {
    fprintf(stderr, "sockspike-engine: the start message has no engine field\n");
    return 1;
  }
  if (cfg_parse(e + 14) < 0) return 1;
  free(startLine);
  return strcmp(argv[1], "client") == 0 ? client_main() : server_main();
}
