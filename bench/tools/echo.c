/*
 * echo: SMB2 ECHO rate over one raw TCP connection.
 *
 *   echo -H host -p port [-d seconds] [-q depth] [-S] [-D dialects]
 *
 * Sends an SMB2 NEGOTIATE (MS-SMB2 2.2.3) offering SMB 3.0, 3.0.2 and 3.1.1 with the
 * SMB2_PREAUTH_INTEGRITY_CAPABILITIES and SMB2_ENCRYPTION_CAPABILITIES contexts
 * (MS-SMB2 2.2.3.1.1, 2.2.3.1.2), then SMB2 ECHO requests (MS-SMB2 2.2.28) with no
 * session: a server does not verify a session for ECHO (MS-SMB2 3.3.5.2.9).
 *
 * Up to `depth` echoes are in flight. Credits are handled as a client must
 * (MS-SMB2 3.2.4.1.5, 3.2.5.1.4): each request costs one credit (CreditCharge 1,
 * MessageId taken from a consecutive sequence), no request is sent without an
 * available credit, and every request asks for enough credits to keep `depth`
 * requests in flight. Every response is validated (protocol id, command, flags,
 * status, MessageId outstanding, body size).
 *
 * Output: one JSON line on stdout.
 */
#include "common.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define HDR 64
#define ECHO_REQ_LEN (4 + HDR + 4)
#define MID_RING 4096

static int g_fd = -1;
static uint8_t g_rbuf[1 << 20];
static size_t g_rlen = 0;

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24); }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32); }

/* SMB2 packet header, sync form (MS-SMB2 2.2.1.2). */
static void put_header(uint8_t *h, uint16_t command, uint16_t charge, uint16_t credit_req, uint64_t mid) {
  memset(h, 0, HDR);
  h[0] = 0xFE; h[1] = 'S'; h[2] = 'M'; h[3] = 'B';
  put16(h + 4, HDR);          /* StructureSize */
  put16(h + 6, charge);       /* CreditCharge */
  put32(h + 8, 0);            /* Status (ChannelSequence/Reserved) */
  put16(h + 12, command);     /* Command */
  put16(h + 14, credit_req);  /* CreditRequest */
  put32(h + 16, 0);           /* Flags */
  put32(h + 20, 0);           /* NextCommand */
  put64(h + 24, mid);         /* MessageId */
  put32(h + 32, 0xFEFF);      /* Reserved (ProcessId) */
  put32(h + 36, 0);           /* TreeId */
  put64(h + 40, 0);           /* SessionId */
}

static void write_all(const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(g_fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die_json("echo", "write: %s", strerror(errno));
    }
    p += w;
    n -= (size_t)w;
  }
}

/* Returns a pointer to the next complete SMB2 message (without the 4-byte transport
 * header) and its length; blocks on the socket when none is buffered. */
static size_t g_consumed = 0;
static const uint8_t *next_msg(size_t *len) {
  for (;;) {
    size_t avail = g_rlen - g_consumed;
    if (avail >= 4) {
      const uint8_t *p = g_rbuf + g_consumed;
      /* Direct TCP transport: zero byte then 24-bit big-endian length (MS-SMB2 2.1). */
      if (p[0] != 0) die_json("echo", "bad transport header byte 0x%02x", p[0]);
      size_t n = ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
      if (n + 4 > sizeof g_rbuf) die_json("echo", "response too large: %zu", n);
      if (avail >= n + 4) {
        g_consumed += n + 4;
        *len = n;
        return p + 4;
      }
    }
    if (g_consumed > 0) {
      memmove(g_rbuf, g_rbuf + g_consumed, g_rlen - g_consumed);
      g_rlen -= g_consumed;
      g_consumed = 0;
    }
    ssize_t r = read(g_fd, g_rbuf + g_rlen, sizeof g_rbuf - g_rlen);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) die_json("echo", "connection closed by server (%s)", r < 0 ? strerror(errno) : "EOF");
    g_rlen += (size_t)r;
  }
}

static int has_buffered_msg(void) {
  size_t avail = g_rlen - g_consumed;
  if (avail < 4) return 0;
  const uint8_t *p = g_rbuf + g_consumed;
  size_t n = ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
  return avail >= n + 4;
}

static void usage(void) {
  fprintf(stderr, "usage: echo -H host -p port [-d seconds] [-q depth] [-S] [-D 0x0300,0x0302,0x0311]\n");
  exit(64);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *port = NULL, *dialect_list = "0x0300,0x0302,0x0311";
  double seconds = 10.0;
  unsigned depth = 1;
  int opt;
  while ((opt = getopt(argc, argv, "H:p:d:q:SD:")) != -1) {
    switch (opt) {
      case 'H': host = optarg; break;
      case 'p': port = optarg; break;
      case 'd': seconds = atof(optarg); break;
      case 'q': depth = (unsigned)atoi(optarg); break;
      case 'S': g_sync = 1; break;
      case 'D': dialect_list = optarg; break;
      default: usage();
    }
  }
  if (!port || depth < 1 || depth > 1024 || seconds <= 0) usage();

  uint16_t dialects[8];
  unsigned ndialects = 0;
  {
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s", dialect_list);
    for (char *tok = strtok(tmp, ","); tok && ndialects < 8; tok = strtok(NULL, ","))
      dialects[ndialects++] = (uint16_t)strtoul(tok, NULL, 0);
    if (ndialects == 0) usage();
  }

  struct addrinfo hints = {0}, *ai;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, port, &hints, &ai);
  if (rc != 0) die_json("echo", "getaddrinfo: %s", gai_strerror(rc));
  g_fd = socket(ai->ai_family, SOCK_STREAM, 0);
  if (g_fd < 0 || connect(g_fd, ai->ai_addr, ai->ai_addrlen) != 0)
    die_json("echo", "connect %s:%s: %s", host, port, strerror(errno));
  freeaddrinfo(ai);
  int one = 1;
  setsockopt(g_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  /* ---- NEGOTIATE (MS-SMB2 2.2.3) ---- */
  uint8_t neg[512];
  memset(neg, 0, sizeof neg);
  uint8_t *h = neg + 4;
  put_header(h, 0x0000, 0, 1, 0);
  uint8_t *b = h + HDR;
  int want_311 = 0;
  for (unsigned i = 0; i < ndialects; i++) want_311 |= dialects[i] == 0x0311;
  put16(b + 0, 36);                 /* StructureSize */
  put16(b + 2, (uint16_t)ndialects);/* DialectCount */
  put16(b + 4, 0x0001);             /* SecurityMode: SIGNING_ENABLED */
  put32(b + 8, 0);                  /* Capabilities */
  for (int i = 0; i < 16; i++) b[12 + i] = (uint8_t)((getpid() * 31 + i * 17) & 0xff); /* ClientGuid */
  size_t off = 36;
  for (unsigned i = 0; i < ndialects; i++, off += 2) put16(b + off, dialects[i]);
  if (want_311) {
    off = (off + 7) & ~(size_t)7; /* contexts are 8-byte aligned (MS-SMB2 2.2.3) */
    put32(b + 28, (uint32_t)(HDR + off));  /* NegotiateContextOffset, from the header start */
    put16(b + 32, 2);                      /* NegotiateContextCount */
    /* SMB2_PREAUTH_INTEGRITY_CAPABILITIES (2.2.3.1.1): SHA-512, 32-byte salt */
    put16(b + off, 0x0001);
    put16(b + off + 2, 38);
    put16(b + off + 8, 1);
    put16(b + off + 10, 32);
    put16(b + off + 12, 0x0001);
    for (int i = 0; i < 32; i++) b[off + 14 + i] = (uint8_t)(i * 7 + 3);
    off += 8 + 38;
    off = (off + 7) & ~(size_t)7;
    /* SMB2_ENCRYPTION_CAPABILITIES (2.2.3.1.2): AES-128-GCM, AES-128-CCM */
    put16(b + off, 0x0002);
    put16(b + off + 2, 6);
    put16(b + off + 8, 2);
    put16(b + off + 10, 0x0002);
    put16(b + off + 12, 0x0001);
    off += 8 + 6;
  }
  size_t neg_len = HDR + off;
  neg[0] = 0;
  neg[1] = (uint8_t)(neg_len >> 16);
  neg[2] = (uint8_t)(neg_len >> 8);
  neg[3] = (uint8_t)neg_len;
  write_all(neg, 4 + neg_len);

  size_t mlen;
  const uint8_t *m = next_msg(&mlen);
  if (mlen < HDR + 64 || get32(m) != 0x424D53FEu) die_json("echo", "bad NEGOTIATE response (len %zu)", mlen);
  uint32_t st = get32(m + 8);
  if (st != 0) die_json("echo", "NEGOTIATE failed: status 0x%08x", st);
  uint16_t dialect = get16(m + HDR + 4);
  uint64_t credits = get16(m + 14);
  uint32_t max_tx = get32(m + HDR + 28);
  (void)max_tx;

  /* ---- ECHO loop (MS-SMB2 2.2.28 / 2.2.29) ---- */
  uint64_t next_mid = 1;
  uint64_t sent_at[MID_RING];
  uint8_t outstanding[MID_RING];
  memset(outstanding, 0, sizeof outstanding);
  unsigned inflight = 0;
  uint64_t done = 0, errors = 0, credits_max = credits, credit_stalls = 0;
  hist_t *hist = calloc(1, sizeof *hist);
  uint8_t *sbuf = malloc((size_t)depth * ECHO_REQ_LEN);
  if (!hist || !sbuf) die_json("echo", "out of memory");
  uint16_t charge = dialect >= 0x0210 ? 1 : 0; /* CreditCharge is reserved in 2.0.2 */

  sync_point("start");
  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(seconds * 1e9), t_last = t0;
  int sending = 1;
  while (sending || inflight > 0) {
    if (sending && now_ns() >= deadline) sending = 0;
    /* Fill the pipeline, within the credits granted. */
    size_t nb = 0;
    uint64_t tnow = now_ns();
    while (sending && inflight < depth) {
      if (credits < (uint64_t)(charge ? charge : 1)) {
        credit_stalls++;
        break;
      }
      credits -= charge ? charge : 1;
      inflight++;
      /* Keep `depth` in flight: ask for one credit back plus any shortfall. */
      uint64_t have = credits + inflight;
      uint16_t ask = (uint16_t)(1 + (have < depth ? depth - have : 0));
      uint8_t *q = sbuf + nb;
      q[0] = 0; q[1] = 0; q[2] = 0; q[3] = HDR + 4;
      put_header(q + 4, 0x000D, charge, ask, next_mid);
      put16(q + 4 + HDR, 4);  /* StructureSize */
      put16(q + 4 + HDR + 2, 0);
      sent_at[next_mid % MID_RING] = tnow;
      outstanding[next_mid % MID_RING] = 1;
      next_mid++;
      nb += ECHO_REQ_LEN;
    }
    if (nb) write_all(sbuf, nb);
    if (inflight == 0) {
      if (sending) die_json("echo", "no credits left and nothing in flight (credits granted %llu)",
                            (unsigned long long)credits_max);
      break;
    }
    /* Receive at least one response, then everything already buffered. */
    do {
      m = next_msg(&mlen);
      uint64_t trecv = now_ns();
      if (mlen < HDR + 4 || get32(m) != 0x424D53FEu) die_json("echo", "malformed response");
      uint16_t cmd = get16(m + 12);
      uint32_t flags = get32(m + 16);
      uint64_t mid = get64(m + 24);
      st = get32(m + 8);
      if (st == 0x00000103u && (flags & 0x2)) continue; /* STATUS_PENDING interim: final one follows */
      if (cmd != 0x000D || !(flags & 0x1) || mid >= next_mid || mid + MID_RING < next_mid ||
          !outstanding[mid % MID_RING])
        die_json("echo", "unexpected response cmd=0x%04x flags=0x%x mid=%llu", cmd, flags, (unsigned long long)mid);
      outstanding[mid % MID_RING] = 0;
      inflight--;
      credits += get16(m + 14);
      if (credits > credits_max) credits_max = credits;
      if (st != 0 || get16(m + HDR) != 4) {
        errors++;
      } else {
        done++;
        hist_add(hist, trecv - sent_at[mid % MID_RING]);
      }
      t_last = trecv;
    } while (has_buffered_msg());
  }
  double elapsed = (double)(t_last - t0) / 1e9;
  sync_point("end");
  printf("{\"tool\":\"echo\",\"dialect\":\"0x%04x\",\"depth\":%u,\"seconds\":%.4f,\"ops\":%llu,\"errors\":%llu,"
         "\"rate\":%.1f,\"credits_max\":%llu,\"credit_stalls\":%llu,",
         dialect, depth, elapsed, (unsigned long long)done, (unsigned long long)errors,
         elapsed > 0 ? (double)done / elapsed : 0.0, (unsigned long long)credits_max,
         (unsigned long long)credit_stalls);
  hist_json(stdout, hist);
  printf("}\n");
  fflush(stdout);
  close(g_fd);
  return errors ? 1 : 0;
}
