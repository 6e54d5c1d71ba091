/*
 * randio: random reads or writes through libsmbclient, one request in flight per
 * connection, one process per connection (Debian's libsmbclient has no thread support).
 *
 *   randio -u smb://HOST:PORT/SHARE/PATH -U user -P password [-b blocksize] [-m read|write]
 *          [-j processes] [-d seconds] [-e none|request|require] [-c client.conf] [-S]
 *
 * Offsets are uniformly random, aligned to the block size, within the file's size.
 * All processes connect and open the file first; they start together and each runs
 * for the same duration. Reported IOPS = sum over processes of ops / elapsed.
 * Output: one JSON line on stdout.
 */
#include "common.h"

#include <fcntl.h>
#include <libsmbclient.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MAX_PROCS 256

static const char *g_user = "", *g_pass = "", *g_domain = "";

static void auth_fn(SMBCCTX *c, const char *srv, const char *shr, char *wg, int wglen, char *un, int unlen,
                    char *pw, int pwlen) {
  (void)c; (void)srv; (void)shr;
  snprintf(wg, (size_t)wglen, "%s", g_domain);
  snprintf(un, (size_t)unlen, "%s", g_user);
  snprintf(pw, (size_t)pwlen, "%s", g_pass);
}

typedef struct {
  int ok;
  char err[240];
  uint64_t ops, bytes, errors, elapsed_ns;
  hist_t hist;
} result_t;

static int write_full(int fd, const void *p, size_t n) {
  const uint8_t *q = p;
  while (n > 0) {
    ssize_t w = write(fd, q, n);
    if (w < 0) { if (errno == EINTR) continue; return -1; }
    q += w; n -= (size_t)w;
  }
  return 0;
}

static int read_full(int fd, void *p, size_t n) {
  uint8_t *q = p;
  while (n > 0) {
    ssize_t r = read(fd, q, n);
    if (r < 0) { if (errno == EINTR) continue; return -1; }
    if (r == 0) return -1;
    q += r; n -= (size_t)r;
  }
  return 0;
}

static SMBCCTX *make_ctx(const char *conf, int enc) {
  SMBCCTX *ctx = smbc_new_context();
  if (!ctx) return NULL;
  if (conf) smbc_setConfiguration(ctx, conf);
  smbc_setDebug(ctx, 0);
  smbc_setOptionDebugToStderr(ctx, 1);
  smbc_setOptionUseCCache(ctx, 0); /* or NTLM fails with WRONG_CREDENTIAL_HANDLE */
  smbc_setOptionUseKerberos(ctx, 0);
  smbc_setOptionNoAutoAnonymousLogin(ctx, 1);
  smbc_setFunctionAuthDataWithContext(ctx, auth_fn);
  smbc_setOptionProtocols(ctx, "SMB3_11", "SMB3_11");
  if (enc >= 0) smbc_setOptionSmbEncryptionLevel(ctx, (smbc_smb_encrypt_level)enc);
  if (!smbc_init_context(ctx)) {
    smbc_free_context(ctx, 1);
    return NULL;
  }
  return ctx;
}

/* One connection: open, report ready, wait for go, run, report, wait for exit. */
static void child(int idx, const char *url, const char *conf, int enc, size_t bs, int writing, double seconds,
                  int res_fd, int go_fd, int exit_fd) {
  result_t *r = calloc(1, sizeof *r);
  if (!r) _exit(1);
  char ready = 'E';
  SMBCCTX *ctx = make_ctx(conf, enc);
  SMBCFILE *f = NULL;
  off_t fsize = 0;
  if (!ctx) {
    snprintf(r->err, sizeof r->err, "smbc_init_context failed: %s", strerror(errno));
  } else {
    f = smbc_getFunctionOpen(ctx)(ctx, url, writing ? O_RDWR : O_RDONLY, 0);
    if (!f) {
      snprintf(r->err, sizeof r->err, "open %s: %s", url, strerror(errno));
    } else {
      struct stat st;
      if (smbc_getFunctionFstat(ctx)(ctx, f, &st) != 0) {
        snprintf(r->err, sizeof r->err, "fstat: %s", strerror(errno));
      } else if ((size_t)st.st_size < bs) {
        snprintf(r->err, sizeof r->err, "file too small: %lld bytes", (long long)st.st_size);
      } else {
        fsize = st.st_size;
        ready = 'R';
      }
    }
  }
  if (write_full(res_fd, &ready, 1) != 0) _exit(1);
  if (ready != 'R') {
    write_full(res_fd, r, sizeof *r);
    _exit(1);
  }
  char c;
  if (read(go_fd, &c, 1) != 0) _exit(1); /* the parent closes the pipe to start everyone at once */

  uint8_t *buf = aligned_alloc(4096, (bs + 4095) & ~(size_t)4095);
  if (!buf) _exit(1);
  uint64_t seed = 0x9E3779B97F4A7C15ull ^ ((uint64_t)getpid() << 20) ^ (uint64_t)idx;
  for (size_t i = 0; i < bs; i += 8) {
    uint64_t v = rng_next(&seed);
    memcpy(buf + i, &v, bs - i < 8 ? bs - i : 8);
  }
  uint64_t blocks = (uint64_t)fsize / bs;
  smbc_lseek_fn lseek_fn = smbc_getFunctionLseek(ctx);
  smbc_read_fn read_fn = smbc_getFunctionRead(ctx);
  smbc_write_fn write_fn = smbc_getFunctionWrite(ctx);

  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(seconds * 1e9), t = t0;
  while (t < deadline) {
    off_t off = (off_t)((rng_next(&seed) % blocks) * bs);
    /* lseek is local to libsmbclient (no request); the READ/WRITE carries the offset. */
    if (lseek_fn(ctx, f, off, SEEK_SET) != off) {
      r->errors++;
    } else {
      ssize_t n = writing ? write_fn(ctx, f, buf, bs) : read_fn(ctx, f, buf, bs);
      if (n != (ssize_t)bs) {
        r->errors++;
        if (r->err[0] == 0) snprintf(r->err, sizeof r->err, "%s at %lld returned %zd: %s", writing ? "write" : "read",
                                     (long long)off, n, n < 0 ? strerror(errno) : "short");
      } else {
        r->ops++;
        r->bytes += bs;
      }
    }
    uint64_t t2 = now_ns();
    hist_add(&r->hist, t2 - t);
    t = t2;
    if (r->errors > 100) break;
  }
  r->elapsed_ns = t - t0;
  r->ok = r->errors == 0;
  if (write_full(res_fd, r, sizeof *r) != 0) _exit(1);
  /* Keep the connection open until the harness has sampled the server's CPU. */
  if (read(exit_fd, &c, 1) < 0) { /* EOF expected */ }
  smbc_getFunctionClose(ctx)(ctx, f);
  smbc_free_context(ctx, 1);
  _exit(0);
}

static void usage(void) {
  fprintf(stderr, "usage: randio -u smb://host:port/share/file -U user -P pass [-W domain] [-b bs] [-m read|write]\n"
                  "              [-j procs] [-d seconds] [-e none|request|require] [-c client.conf] [-S]\n");
  exit(64);
}

int main(int argc, char **argv) {
  const char *url = NULL, *conf = NULL;
  size_t bs = 4096;
  int writing = 0, procs = 1, enc = -1, opt;
  double seconds = 10.0;
  while ((opt = getopt(argc, argv, "u:U:P:W:b:m:j:d:e:c:S")) != -1) {
    switch (opt) {
      case 'u': url = optarg; break;
      case 'U': g_user = optarg; break;
      case 'P': g_pass = optarg; break;
      case 'W': g_domain = optarg; break;
      case 'b': bs = (size_t)strtoull(optarg, NULL, 0); break;
      case 'm': writing = strcmp(optarg, "write") == 0; if (!writing && strcmp(optarg, "read") != 0) usage(); break;
      case 'j': procs = atoi(optarg); break;
      case 'd': seconds = atof(optarg); break;
      case 'e': enc = strcmp(optarg, "none") == 0 ? 0 : strcmp(optarg, "request") == 0 ? 1 : strcmp(optarg, "require") == 0 ? 2 : -2;
                if (enc == -2) usage();
                break;
      case 'c': conf = optarg; break;
      case 'S': g_sync = 1; break;
      default: usage();
    }
  }
  if (!url || bs == 0 || bs > (8u << 20) || procs < 1 || procs > MAX_PROCS || seconds <= 0) usage();
  signal(SIGPIPE, SIG_IGN);

  int res_fd[MAX_PROCS], go_pipe[2], exit_pipe[2];
  pid_t pids[MAX_PROCS];
  if (pipe(go_pipe) != 0 || pipe(exit_pipe) != 0) die_json("randio", "pipe: %s", strerror(errno));
  fflush(stdout);
  for (int i = 0; i < procs; i++) {
    int p[2];
    if (pipe(p) != 0) die_json("randio", "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) die_json("randio", "fork: %s", strerror(errno));
    if (pid == 0) {
      close(p[0]);
      close(go_pipe[1]);
      close(exit_pipe[1]);
      for (int k = 0; k < i; k++) close(res_fd[k]);
      child(i, url, conf, enc, bs, writing, seconds, p[1], go_pipe[0], exit_pipe[0]);
    }
    close(p[1]);
    res_fd[i] = p[0];
    pids[i] = pid;
  }
  close(go_pipe[0]);
  close(exit_pipe[0]);

  /* Wait until every process is connected (bounded). */
  result_t *r = calloc(1, sizeof *r);
  hist_t *all = calloc(1, sizeof *all);
  if (!r || !all) die_json("randio", "out of memory");
  int failed = -1;
  for (int i = 0; i < procs; i++) {
    struct pollfd pfd = {.fd = res_fd[i], .events = POLLIN};
    char ready = 0;
    if (poll(&pfd, 1, 60000) != 1 || read(res_fd[i], &ready, 1) != 1 || ready != 'R') {
      if (ready == 'E' && read_full(res_fd[i], r, sizeof *r) == 0) failed = i;
      else { failed = i; snprintf(r->err, sizeof r->err, "process %d did not become ready", i); }
      break;
    }
  }
  if (failed >= 0) {
    for (int i = 0; i < procs; i++) kill(pids[i], SIGKILL);
    for (int i = 0; i < procs; i++) waitpid(pids[i], NULL, 0);
    die_json("randio", "connection %d: %s", failed, r->err);
  }

  sync_point("start");
  close(go_pipe[1]);
  uint64_t ops = 0, bytes = 0, errors = 0;
  double iops = 0.0, max_elapsed = 0.0;
  char first_err[240] = "";
  for (int i = 0; i < procs; i++) {
    if (read_full(res_fd[i], r, sizeof *r) != 0) {
      errors++;
      snprintf(first_err, sizeof first_err, "process %d died", i);
      continue;
    }
    ops += r->ops;
    bytes += r->bytes;
    errors += r->errors;
    double el = (double)r->elapsed_ns / 1e9;
    if (el > max_elapsed) max_elapsed = el;
    if (el > 0) iops += (double)r->ops / el;
    hist_merge(all, &r->hist);
    if (!first_err[0] && r->err[0]) snprintf(first_err, sizeof first_err, "%s", r->err);
  }
  sync_point("end");
  close(exit_pipe[1]);
  for (int i = 0; i < procs; i++) waitpid(pids[i], NULL, 0);

  for (char *p = first_err; *p; p++)
    if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = ' ';
  printf("{\"tool\":\"randio\",\"mode\":\"%s\",\"bs\":%zu,\"procs\":%d,\"seconds\":%.4f,\"ops\":%llu,\"bytes\":%llu,"
         "\"errors\":%llu,\"rate\":%.1f,\"mib_s\":%.2f,",
         writing ? "write" : "read", bs, procs, max_elapsed, (unsigned long long)ops, (unsigned long long)bytes,
         (unsigned long long)errors, iops, iops * (double)bs / 1048576.0);
  if (first_err[0]) printf("\"first_error\":\"%s\",", first_err);
  hist_json(stdout, all);
  printf("}\n");
  fflush(stdout);
  return errors ? 1 : 0;
}
