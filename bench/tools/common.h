/*
 * Shared helpers for the Tessera benchmark tools (randio, meta, echo).
 *
 * - monotonic clock in nanoseconds
 * - a mergeable log-linear latency histogram (about 3% relative error)
 * - the "sync point" protocol with bench/run.ts: with -S a tool prints
 *   "SYNC <label>" on stdout and blocks until one line arrives on stdin.
 *   The harness samples server CPU time at each sync point, so CPU is measured
 *   over exactly the timed window and not over connection setup.
 */
#ifndef TESSERA_BENCH_COMMON_H
#define TESSERA_BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- histogram: values in nanoseconds --------------------------------- */
#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (64u * HIST_SUB)

typedef struct {
  uint64_t count;
  uint64_t sum_ns;
  uint64_t max_ns;
  uint64_t bucket[HIST_BUCKETS];
} hist_t;

static inline unsigned hist_index(uint64_t v) {
  if (v < HIST_SUB) return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= HIST_SUB_BITS */
  unsigned sub = (unsigned)(v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
  return (e - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

/* Lower bound of the values that land in bucket i. */
static inline uint64_t hist_value(unsigned i) {
  if (i < HIST_SUB) return i;
  unsigned e = i / HIST_SUB + HIST_SUB_BITS - 1;
  uint64_t sub = i % HIST_SUB;
  return (1ull << e) | (sub << (e - HIST_SUB_BITS));
}

static inline void hist_add(hist_t *h, uint64_t v) {
  h->count++;
  h->sum_ns += v;
  if (v > h->max_ns) h->max_ns = v;
  h->bucket[hist_index(v)]++;
}

static inline void hist_merge(hist_t *into, const hist_t *from) {
  into->count += from->count;
  into->sum_ns += from->sum_ns;
  if (from->max_ns > into->max_ns) into->max_ns = from->max_ns;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) into->bucket[i] += from->bucket[i];
}

/* Percentile q in [0,1], in microseconds. */
static inline double hist_pct_us(const hist_t *h, double q) {
  if (h->count == 0) return 0.0;
  uint64_t rank = (uint64_t)(q * (double)(h->count - 1)) + 1, seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->bucket[i];
    if (seen >= rank) return (double)hist_value(i) / 1000.0;
  }
  return (double)h->max_ns / 1000.0;
}

static inline void hist_json(FILE *f, const hist_t *h) {
  fprintf(f, "\"lat_us\":{\"mean\":%.2f,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"max\":%.2f}",
          h->count ? (double)h->sum_ns / (double)h->count / 1000.0 : 0.0, hist_pct_us(h, 0.50),
          hist_pct_us(h, 0.90), hist_pct_us(h, 0.99), hist_pct_us(h, 0.999), (double)h->max_ns / 1000.0);
}

/* ---- sync points -------------------------------------------------------- */
static int g_sync = 0;

static inline void sync_point(const char *label) {
  if (!g_sync) return;
  printf("SYNC %s\n", label);
  fflush(stdout);
  char line[256];
  if (!fgets(line, sizeof line, stdin)) {
    /* The harness went away: nothing left to measure for. */
    fprintf(stderr, "sync: stdin closed at %s\n", label);
    exit(3);
  }
}

/* Print a JSON error object on stdout (the harness parses the last JSON line) and exit. */
static inline void die_json(const char *tool, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *p = msg; *p; p++)
    if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = ' ';
  printf("{\"tool\":\"%s\",\"error\":\"%s\"}\n", tool, msg);
  fflush(stdout);
  exit(2);
}

/* xorshift64*: cheap per-process random offsets. */
static inline uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

#endif
