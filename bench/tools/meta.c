/*
 * meta: metadata operations through libsmbclient on one connection.
 *
 *   meta -u smb://HOST:PORT/SHARE -U user -P password [-n files] [-l min_list_seconds]
 *        [-t max_phase_seconds] [-c client.conf] [-S]
 *
 * In a fresh directory of the share:
 *   create: create+close of N files (one CREATE with FILE_CREATE, one CLOSE each)
 *   list:   full listing (opendir/readdir/closedir) repeated until min_list_seconds passed;
 *           rate = directory entries returned per second; every pass must see all N files
 *   unlink: unlink of the N files
 * then removes the directory (untimed). A phase that exceeds max_phase_seconds stops
 * early and is reported with its partial count ("truncated": true); later phases then
 * work on the files that exist.
 * Output: one JSON line on stdout.
 */
#include "common.h"

#include <fcntl.h>
#include <libsmbclient.h>

static const char *g_user = "", *g_pass = "", *g_domain = "";

static void auth_fn(SMBCCTX *c, const char *srv, const char *shr, char *wg, int wglen, char *un, int unlen,
                    char *pw, int pwlen) {
  (void)c; (void)srv; (void)shr;
  snprintf(wg, (size_t)wglen, "%s", g_domain);
  snprintf(un, (size_t)unlen, "%s", g_user);
  snprintf(pw, (size_t)pwlen, "%s", g_pass);
}

typedef struct {
  const char *name;
  uint64_t ops, errors;
  double seconds;
  int truncated;
  char err[200];
  hist_t hist;
} phase_t;

static void phase_err(phase_t *p, const char *what, const char *path) {
  int e = errno;
  p->errors++;
  if (p->err[0]) return;
  const char *slash = strrchr(path, '/');
  char name[64];
  snprintf(name, sizeof name, "%s", slash ? slash + 1 : path);
  snprintf(p->err, sizeof p->err, "%s %s: %s", what, name, strerror(e));
}

static void phase_json(const phase_t *p, int last) {
  char err[200];
  snprintf(err, sizeof err, "%s", p->err);
  for (char *c = err; *c; c++)
    if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) *c = ' ';
  printf("\"%s\":{\"ops\":%llu,\"errors\":%llu,\"seconds\":%.4f,\"rate\":%.1f,\"truncated\":%s,", p->name,
         (unsigned long long)p->ops, (unsigned long long)p->errors, p->seconds,
         p->seconds > 0 ? (double)p->ops / p->seconds : 0.0, p->truncated ? "true" : "false");
  if (err[0]) printf("\"first_error\":\"%s\",", err);
  hist_json(stdout, &p->hist);
  printf("}%s", last ? "" : ",");
}

static void usage(void) {
  fprintf(stderr, "usage: meta -u smb://host:port/share -U user -P pass [-W domain] [-n files] [-l min_list_s]\n"
                  "            [-t max_phase_s] [-c client.conf] [-S]\n");
  exit(64);
}

int main(int argc, char **argv) {
  const char *base = NULL, *conf = NULL;
  unsigned n = 10000;
  double min_list = 1.0, max_phase = 120.0;
  int opt;
  while ((opt = getopt(argc, argv, "u:U:P:W:n:l:t:c:S")) != -1) {
    switch (opt) {
      case 'u': base = optarg; break;
      case 'U': g_user = optarg; break;
      case 'P': g_pass = optarg; break;
      case 'W': g_domain = optarg; break;
      case 'n': n = (unsigned)strtoul(optarg, NULL, 0); break;
      case 'l': min_list = atof(optarg); break;
      case 't': max_phase = atof(optarg); break;
      case 'c': conf = optarg; break;
      case 'S': g_sync = 1; break;
      default: usage();
    }
  }
  if (!base || n == 0 || n > 10000000 || max_phase <= 0) usage();

  SMBCCTX *ctx = smbc_new_context();
  if (!ctx) die_json("meta", "smbc_new_context: %s", strerror(errno));
  if (conf) smbc_setConfiguration(ctx, conf);
  smbc_setDebug(ctx, 0);
  smbc_setOptionDebugToStderr(ctx, 1);
  smbc_setOptionUseCCache(ctx, 0); /* or NTLM fails with WRONG_CREDENTIAL_HANDLE */
  smbc_setOptionUseKerberos(ctx, 0);
  smbc_setOptionNoAutoAnonymousLogin(ctx, 1);
  smbc_setFunctionAuthDataWithContext(ctx, auth_fn);
  smbc_setOptionProtocols(ctx, "SMB3_11", "SMB3_11");
  if (!smbc_init_context(ctx)) die_json("meta", "smbc_init_context: %s", strerror(errno));

  smbc_open_fn open_fn = smbc_getFunctionOpen(ctx);
  smbc_close_fn close_fn = smbc_getFunctionClose(ctx);
  smbc_unlink_fn unlink_fn = smbc_getFunctionUnlink(ctx);
  smbc_opendir_fn opendir_fn = smbc_getFunctionOpendir(ctx);
  smbc_readdir_fn readdir_fn = smbc_getFunctionReaddir(ctx);
  smbc_closedir_fn closedir_fn = smbc_getFunctionClosedir(ctx);

  char dir[1024], path[1200];
  snprintf(dir, sizeof dir, "%s/meta-%d-%llu", base, (int)getpid(), (unsigned long long)(now_ns() / 1000000));
  /* Connects and logs on; the directory is new so earlier runs cannot skew listing. */
  if (smbc_getFunctionMkdir(ctx)(ctx, dir, 0755) != 0) die_json("meta", "mkdir %s: %s", dir, strerror(errno));

  static phase_t ph[3];
  ph[0].name = "create";
  ph[1].name = "list";
  ph[2].name = "unlink";
  unsigned created = 0;
  uint64_t max_ns = (uint64_t)(max_phase * 1e9);

  /* ---- create+close ---- */
  sync_point("create-start");
  uint64_t t0 = now_ns(), t = t0;
  for (unsigned i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/f%07u.dat", dir, i);
    SMBCFILE *f = open_fn(ctx, path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (!f) {
      phase_err(&ph[0], "create", path);
    } else if (close_fn(ctx, f) != 0) {
      phase_err(&ph[0], "close", path);
    } else {
      ph[0].ops++;
    }
    uint64_t t2 = now_ns();
    hist_add(&ph[0].hist, t2 - t);
    t = t2;
    created = i + 1;
    if (t - t0 > max_ns) { ph[0].truncated = i + 1 < n; break; }
    if (ph[0].errors > 50) break;
  }
  ph[0].seconds = (double)(t - t0) / 1e9;
  sync_point("create-end");

  /* ---- full listing, repeated ---- */
  sync_point("list-start");
  t0 = now_ns();
  t = t0;
  unsigned passes = 0;
  uint64_t expected = ph[0].ops;
  do {
    SMBCFILE *d = opendir_fn(ctx, dir);
    if (!d) {
      phase_err(&ph[1], "opendir", dir);
      break;
    }
    uint64_t seen = 0;
    struct smbc_dirent *e;
    while ((e = readdir_fn(ctx, d)) != NULL) {
      if (strcmp(e->name, ".") == 0 || strcmp(e->name, "..") == 0) continue;
      seen++;
    }
    closedir_fn(ctx, d);
    if (seen != expected) {
      ph[1].errors++;
      if (!ph[1].err[0])
        snprintf(ph[1].err, sizeof ph[1].err, "listing returned %llu entries, expected %llu",
                 (unsigned long long)seen, (unsigned long long)expected);
    }
    ph[1].ops += seen;
    passes++;
    uint64_t t2 = now_ns();
    hist_add(&ph[1].hist, t2 - t);
    t = t2;
    if (t - t0 > max_ns) break;
  } while ((double)(t - t0) / 1e9 < min_list && ph[1].errors == 0);
  ph[1].seconds = (double)(t - t0) / 1e9;
  sync_point("list-end");

  /* ---- unlink ---- */
  sync_point("unlink-start");
  t0 = now_ns();
  t = t0;
  unsigned removed = 0;
  for (unsigned i = 0; i < created; i++) {
    snprintf(path, sizeof path, "%s/f%07u.dat", dir, i);
    if (unlink_fn(ctx, path) != 0) {
      if (errno != ENOENT) phase_err(&ph[2], "unlink", path);
    } else {
      ph[2].ops++;
    }
    uint64_t t2 = now_ns();
    hist_add(&ph[2].hist, t2 - t);
    t = t2;
    removed = i + 1;
    if (t - t0 > max_ns) { ph[2].truncated = removed < created; break; }
    if (ph[2].errors > 50) break;
  }
  ph[2].seconds = (double)(t - t0) / 1e9;
  sync_point("unlink-end");

  /* Untimed cleanup of anything left (truncated phases). */
  for (unsigned i = removed; i < created; i++) {
    snprintf(path, sizeof path, "%s/f%07u.dat", dir, i);
    unlink_fn(ctx, path);
  }
  int rmdir_ok = smbc_getFunctionRmdir(ctx)(ctx, dir) == 0;

  printf("{\"tool\":\"meta\",\"files\":%u,\"list_passes\":%u,\"rmdir_ok\":%s,", n, passes, rmdir_ok ? "true" : "false");
  phase_json(&ph[0], 0);
  phase_json(&ph[1], 0);
  phase_json(&ph[2], 1);
  printf("}\n");
  fflush(stdout);
  smbc_free_context(ctx, 1);
  return (ph[0].errors || ph[1].errors || ph[2].errors) ? 1 : 0;
}
