/*
 * TftpEndpoint: a transfer's UDP socket (its port is the transfer ID) that
 * can answer the steady part of a windowsize-1 transfer by itself.
 *
 * Why this exists: at windowsize 1 every block is a round trip, and on a
 * fast link each one costs the server a receive, a JavaScript callback and
 * a send: the runtime's cost per datagram, not the transfer's logic, is
 * what kept a Node server below dnsmasq (docs/performance.md). Here, while
 * a transfer is "pumped", the
 * expected ACK (4 bytes, from the client's transfer ID, acknowledging the
 * block last sent) is answered in C on the event loop's thread: read the
 * next block, send it, wait. Everything else hands the transfer back to
 * JavaScript (server/tftp/io/transfer.ts, carrying out the decisions of
 * server/tftp/sender/sender.ts), which owns every decision that is
 * not "the client has the last block, send the next": any other packet
 * (delivered right after the hand-back), a timeout, a read that would
 * block, a read error, the final ACK. JavaScript starts the pump again at
 * the next in-order ACK.
 *
 * Waiting for the ACK: after a block goes out, the pump polls the socket
 * for up to 50 us (sched_yield() between tries, so a client on the same
 * CPU runs at once) rather than going back to the event loop to sleep.
 * Waking a sleeping thread is the dearest part of a round trip when the
 * client answers within microseconds (an idle virtual CPU is woken by an
 * interrupt through the hypervisor), and at windowsize 1 the round trip is
 * the transfer's speed. It polls only
 * while it pumps the process's one transfer (with more, the loop has their
 * packets to handle), for at most 1 ms of ACKs per callback, and a poll
 * that catches nothing skips the next 1, 2, 4 ... 256 blocks' polls, so a
 * client on a real wire (a PXE ROM, hundreds of microseconds away) costs
 * a handful of 50 us waits per transfer.
 *
 * Reads never block the event loop: blocks are read in 64 KiB runs with
 * preadv2(RWF_NOWAIT), which fails with EAGAIN when the bytes are not in
 * the page cache; the transfer is then handed back and JavaScript reads on
 * the thread pool as it always did (after which the pages are cached).
 *
 * Two sockets share the transfer's port: one connected to the client (the
 * kernel then finds it, and the route back, without a lookup per packet,
 * as tftpd-hpa does),
 * and one unconnected, which gets datagrams from anyone else so that they
 * are answered with error 5 (RFC 1350) rather than an ICMP port
 * unreachable. The first is bound without SO_REUSEADDR, so the kernel picks
 * a port no one else holds, and takes SO_REUSEADDR only to let the second
 * in. A stranger's datagram goes to JavaScript without stopping the pump:
 * what JavaScript does with it (error 5) touches no transfer state.
 *
 *   new TftpEndpoint(address, clientAddress, clientPort, onMessage(buffer, address, port), onPumpStopped(stop))
 *     stop: { reason, lastAcked, highestSent, sinceSentMs, smoothedMs, variationMs, detail?, polledAcks, pollMisses }
 *   .port()                         the bound port
 *   .send(buffer, port, address)    one datagram; a failed send is a lost packet
 *   .pump({ fd, size, blockSize, from, finalIndex, timeoutMs, adaptive?: { smoothedMs, variationMs, minMs, maxMs } })
 *                                   send block `from` and go on; returns "started" or "wouldBlock" (nothing sent)
 *
 * The timeout: with `adaptive`, RFC 6298's estimator goes on from the
 * transfer's (smoothed round trip and its variation; smoothedMs -1 when not
 * measured yet) over each block and its ACK, and the timeout is smoothed +
 * 4 x variation within min..max; the estimator's state goes back with the
 * transfer. Without, `timeoutMs` throughout. The estimator is the same as
 * server/tftp/sender/rtt.ts's, and roundTripTimeouts() (exported for tests) runs
 * it over a list of samples so the two are checked with the same vectors.
 *   .stopPump()                     stop without a callback
 *   .close()
 *
 * Blocks are counted from 1 as 64-bit indexes; the wire carries index mod 65536.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "native.h"

#define RECEIVE_BUFFER 65536
#define READ_AHEAD_BYTES (64 * 1024)
/*
 * Datagrams handled per wake-up. One: the poll is level-triggered, so a
 * second datagram wakes it again on the next turn of the loop, and at
 * windowsize 1 there is almost never a second one waiting (the client has
 * not had the next block yet): trying for it was one more recvfrom per
 * block, answered EAGAIN.
 */
#define BATCH 1
/*
 * Waiting for an ACK by polling: how long one wait lasts, the longest a
 * callback keeps the event loop (uv_now() is not updated meanwhile, and
 * other handles wait), and the largest back-off in blocks (see
 * spin_allowed).
 */
#define SPIN_NS (50 * 1000)
#define SPIN_TURN_NS (1000 * 1000)
#define SPIN_MAX_BACKOFF 256

/* RFC 6298's round-trip estimator, in ms, as server/tftp/sender/rtt.ts has it. */
typedef struct {
  double smoothed_ms, variation_ms; /* smoothed_ms -1 until measured */
  double min_ms, max_ms;
} rtt_t;

/* RFC 6298 section 2: one sample in; the timeout out, smoothed + 4 x variation within min..max, in whole ms, at least 1. */
static uint64_t rtt_sample(rtt_t *rtt, double sample) {
  if (rtt->smoothed_ms < 0) {
    rtt->smoothed_ms = sample;
    rtt->variation_ms = sample / 2;
  } else {
    double difference = rtt->smoothed_ms > sample ? rtt->smoothed_ms - sample : sample - rtt->smoothed_ms;
    rtt->variation_ms = 0.75 * rtt->variation_ms + 0.25 * difference;
    rtt->smoothed_ms = 0.875 * rtt->smoothed_ms + 0.125 * sample;
  }
  double timeout = rtt->smoothed_ms + 4 * rtt->variation_ms;
  if (timeout < rtt->min_ms) timeout = rtt->min_ms;
  if (timeout > rtt->max_ms) timeout = rtt->max_ms;
  return timeout < 1 ? 1 : (uint64_t)timeout;
}

typedef struct {
  napi_env env;
  uv_loop_t *loop;
  uv_poll_t poll;      /* the client's socket */
  uv_poll_t strangers; /* everyone else's */
  uv_timer_t timer;
  int fd;
  int stranger_fd;
  int closed;
  int open_handles;
  int finalized;
  napi_ref self;
  napi_ref on_message;
  napi_ref on_stopped;
  napi_async_context context;

  /* The pumped transfer. */
  int pumping;
  int file_fd;
  int nowait_unsupported;
  int64_t size;
  int64_t block_size;
  int64_t last_acked;
  int64_t highest_sent;
  int64_t final_index;
  struct sockaddr_in client;
  uint64_t timeout_ms;
  uint64_t progress_at; /* uv_now() of the last block sent */
  uint64_t timer_due;   /* uv_now() when the timer fires */
  uint64_t sent_ns;     /* monotonic time the highest block went out */
  int adaptive;
  rtt_t rtt;
  /* Read-ahead: file bytes of blocks chunk_first .. chunk_first + chunk_blocks - 1 (chunk_bytes of them valid). */
  uint8_t *chunk;
  int64_t chunk_capacity;
  int64_t chunk_first;
  int64_t chunk_bytes;
  /* Why the last read failed: an errno, or -1 for a file shorter than its size. */
  int read_error;
  /* Waiting for ACKs by polling (see spin_allowed): blocks to go before the next try, and the next back-off. */
  uint32_t spin_skip;
  uint32_t spin_backoff;
  /* Since the pump started: ACKs that came while polling, and waits that ended without one. */
  uint32_t polled_acks;
  uint32_t poll_misses;
} endpoint_t;

/* How many endpoints are pumping right now, over the whole process. */
static int pumping_endpoints;

static uint64_t monotonic_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void maybe_free(endpoint_t *ep) {
  if (ep->open_handles > 0 || !ep->finalized) return;
  free(ep->chunk);
  free(ep);
}

static void on_handle_closed(uv_handle_t *handle) {
  endpoint_t *ep = handle->data;
  ep->open_handles -= 1;
  maybe_free(ep);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  endpoint_t *ep = data;
  ep->finalized = 1;
  maybe_free(ep);
}

static void call_back(endpoint_t *ep, napi_ref function_ref, size_t argc, napi_value *argv) {
  rb_call_back(ep->env, ep->context, ep->self, function_ref, argc, argv);
}

static void set_pumping(endpoint_t *ep, int on) {
  if (ep->pumping == on) return;
  ep->pumping = on;
  pumping_endpoints += on ? 1 : -1;
}

static void stop_pump(endpoint_t *ep) {
  set_pumping(ep, 0);
  uv_timer_stop(&ep->timer);
}

/* Hand the transfer back to JavaScript. */
static void report_stop(endpoint_t *ep, const char *reason, const char *detail) {
  stop_pump(ep);
  napi_env env = ep->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value stop, value;
  napi_create_object(env, &stop);
  napi_create_string_utf8(env, reason, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, stop, "reason", value);
  napi_create_int64(env, ep->last_acked, &value);
  napi_set_named_property(env, stop, "lastAcked", value);
  napi_create_int64(env, ep->highest_sent, &value);
  napi_set_named_property(env, stop, "highestSent", value);
  napi_create_double(env, (double)(monotonic_ns() - ep->sent_ns) / 1e6, &value);
  napi_set_named_property(env, stop, "sinceSentMs", value);
  napi_create_double(env, ep->rtt.smoothed_ms, &value);
  napi_set_named_property(env, stop, "smoothedMs", value);
  napi_create_double(env, ep->rtt.variation_ms, &value);
  napi_set_named_property(env, stop, "variationMs", value);
  if (detail != NULL) {
    napi_create_string_utf8(env, detail, NAPI_AUTO_LENGTH, &value);
    napi_set_named_property(env, stop, "detail", value);
  }
  napi_create_uint32(env, ep->polled_acks, &value);
  napi_set_named_property(env, stop, "polledAcks", value);
  napi_create_uint32(env, ep->poll_misses, &value);
  napi_set_named_property(env, stop, "pollMisses", value);
  call_back(ep, ep->on_stopped, 1, &stop);
  napi_close_handle_scope(env, scope);
}

enum send_result { SENT, WOULD_BLOCK, READ_FAILED };

/*
 * Make sure the read-ahead holds block `index`; reads a run of blocks from
 * it. Returns 0, EAGAIN (not cached), or another errno (-1 for a file that
 * ended early).
 */
static int hold_block(endpoint_t *ep, int64_t index, int64_t length) {
  int64_t offset = (index - 1) * ep->block_size;
  int64_t first_offset = (ep->chunk_first - 1) * ep->block_size;
  if (length == 0) return 0;
  if (ep->chunk_bytes > 0 && offset >= first_offset && offset + length <= first_offset + ep->chunk_bytes) return 0;
  int64_t wanted = ep->size - offset;
  if (wanted > ep->chunk_capacity) wanted = ep->chunk_capacity;
  ep->chunk_bytes = 0;
  int64_t got = 0;
  while (got < wanted) {
    struct iovec part = { ep->chunk + got, (size_t)(wanted - got) };
    ssize_t n;
    if (!ep->nowait_unsupported) {
      n = preadv2(ep->file_fd, &part, 1, offset + got, RWF_NOWAIT);
      if (n < 0 && errno == EOPNOTSUPP) {
        ep->nowait_unsupported = 1;
        continue;
      }
    } else {
      n = pread(ep->file_fd, part.iov_base, part.iov_len, offset + got);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return errno;
      /* Only part of the run is cached: enough when it holds this block. */
      if (got >= length) break;
      return EAGAIN;
    }
    if (n == 0) break;
    got += n;
  }
  if (got < length) return -1;
  ep->chunk_first = index;
  ep->chunk_bytes = got;
  return 0;
}

static enum send_result send_block(endpoint_t *ep, int64_t index) {
  int64_t length = ep->size - (index - 1) * ep->block_size;
  if (length > ep->block_size) length = ep->block_size;
  if (length < 0) length = 0;
  int result = hold_block(ep, index, length);
  if (result == EAGAIN) return WOULD_BLOCK;
  if (result != 0) {
    ep->read_error = result;
    return READ_FAILED;
  }
  uint16_t wire = (uint16_t)(index & 0xffff);
  uint8_t header[4] = { 0, 3, (uint8_t)(wire >> 8), (uint8_t)(wire & 0xff) };
  struct iovec parts[2] = {
    { header, sizeof header },
    { ep->chunk + (index - ep->chunk_first) * ep->block_size, (size_t)length },
  };
  struct msghdr message;
  memset(&message, 0, sizeof message);
  /* No address: the socket is connected to the client. */
  message.msg_iov = parts;
  message.msg_iovlen = length > 0 ? 2 : 1;
  /* A failed send (a full socket buffer) is a lost packet: the timeout hands the transfer back, and JavaScript resends. */
  (void)sendmsg(ep->fd, &message, 0);
  ep->highest_sent = index;
  ep->sent_ns = monotonic_ns();
  ep->progress_at = uv_now(ep->loop);
  return SENT;
}

static void on_timer(uv_timer_t *timer);

/*
 * The ACK is due at progress_at + timeout_ms. One timer, restarted only
 * when that is sooner than it fires; when it fires early it waits again.
 */
static void arm_timer(endpoint_t *ep) {
  uint64_t due = ep->progress_at + ep->timeout_ms;
  if (uv_is_active((uv_handle_t *)&ep->timer) && ep->timer_due <= due) return;
  uint64_t now = uv_now(ep->loop);
  ep->timer_due = due > now ? due : now;
  uv_timer_start(&ep->timer, on_timer, ep->timer_due - now, 0);
}

static void on_timer(uv_timer_t *timer) {
  endpoint_t *ep = timer->data;
  if (!ep->pumping) return;
  uint64_t now = uv_now(ep->loop);
  uint64_t due = ep->progress_at + ep->timeout_ms;
  if (now < due) {
    arm_timer(ep);
    return;
  }
  report_stop(ep, "timeout", NULL);
}

/* The pump never sends a block twice, so every sample counts (Karn). */
static void sample_round_trip(endpoint_t *ep, double sample) {
  if (ep->adaptive) ep->timeout_ms = rtt_sample(&ep->rtt, sample);
}

static void advance(endpoint_t *ep) {
  ep->last_acked = ep->highest_sent;
  sample_round_trip(ep, (double)(monotonic_ns() - ep->sent_ns) / 1e6);
  if (ep->last_acked == ep->final_index) {
    report_stop(ep, "complete", NULL);
    return;
  }
  switch (send_block(ep, ep->last_acked + 1)) {
    case SENT:
      arm_timer(ep);
      return;
    case WOULD_BLOCK:
      report_stop(ep, "wouldBlock", NULL);
      return;
    case READ_FAILED: {
      char detail[128];
      snprintf(detail, sizeof detail, "%s", ep->read_error < 0 ? "file ended before its size" : strerror(ep->read_error));
      report_stop(ep, "readError", detail);
      return;
    }
  }
}

static int is_expected_ack(endpoint_t *ep, const uint8_t *packet, ssize_t length, const struct sockaddr_in *from) {
  return length == 4 && packet[0] == 0 && packet[1] == 4 && from->sin_port == ep->client.sin_port &&
         from->sin_addr.s_addr == ep->client.sin_addr.s_addr && ((packet[2] << 8) | packet[3]) == (ep->highest_sent & 0xffff);
}

static void deliver(endpoint_t *ep, const uint8_t *packet, ssize_t length, const struct sockaddr_in *from) {
  napi_env env = ep->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[3];
  void *data;
  napi_create_buffer_copy(env, (size_t)length, packet, &data, &argv[0]);
  char address[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &from->sin_addr, address, sizeof address);
  napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &argv[1]);
  napi_create_uint32(env, ntohs(from->sin_port), &argv[2]);
  call_back(ep, ep->on_message, 3, argv);
  napi_close_handle_scope(env, scope);
}

/* One for every endpoint: all run on the loop's thread, and deliver() copies what it hands on. */
static uint8_t receive_buffer[RECEIVE_BUFFER];

static int from_client(const endpoint_t *ep, const struct sockaddr_in *from) {
  return from->sin_port == ep->client.sin_port && from->sin_addr.s_addr == ep->client.sin_addr.s_addr;
}

/*
 * Whether to wait for the next ACK by polling rather than by going back to
 * the event loop. Only while this is the one transfer being pumped (with
 * more, the loop has their packets to handle), and with a back-off: a wait
 * that sees no ACK within SPIN_NS skips the next 1, 2, 4 ... 256 blocks'
 * waits, so a client farther away than SPIN_NS (a real wire and a PXE ROM)
 * costs almost nothing, and one that answers in time never goes back to
 * sleeping.
 */
static int spin_allowed(endpoint_t *ep) {
  if (!ep->pumping || pumping_endpoints != 1) return 0;
  if (ep->spin_skip > 0) {
    ep->spin_skip -= 1;
    return 0;
  }
  return 1;
}

static void spin_missed(endpoint_t *ep) {
  ep->poll_misses += 1;
  ep->spin_skip = ep->spin_backoff;
  if (ep->spin_backoff < SPIN_MAX_BACKOFF) ep->spin_backoff *= 2;
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)events;
  endpoint_t *ep = poll->data;
  int strangers = poll == &ep->strangers;
  if (status < 0) return;
  uint64_t started = 0;   /* when this callback began polling, 0 while it has not */
  uint64_t spin_until = 0; /* while polling for the ACK of the block just sent */
  for (int handled = 0; !ep->closed;) {
    struct sockaddr_in from;
    socklen_t from_length = sizeof from;
    ssize_t length = recvfrom(strangers ? ep->stranger_fd : ep->fd, receive_buffer, RECEIVE_BUFFER, 0, (struct sockaddr *)&from, &from_length);
    if (length < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN || spin_until == 0) return; /* nothing to read, or an ICMP error queued on the socket */
      uint64_t now = monotonic_ns();
      if (now >= spin_until) {
        spin_missed(ep);
        return;
      }
      sched_yield(); /* a client on this CPU runs now, rather than when the loop would sleep */
      continue;
    }
    int polled = spin_until != 0;
    if (polled) {
      /* A datagram came while polling: the loop's clock moves on, for the timer of the next block. */
      ep->spin_backoff = 1;
      uv_update_time(ep->loop);
    }
    spin_until = 0;
    if (from_length != sizeof from || from.sin_family != AF_INET) {
      /* not an IPv4 sender: nothing to answer */
    } else if (ep->pumping && !strangers && is_expected_ack(ep, receive_buffer, length, &from)) {
      if (polled) ep->polled_acks += 1;
      advance(ep);
      uint64_t now = monotonic_ns();
      if (started == 0) started = now;
      /* The rest of the loop waits at most SPIN_TURN_NS per callback; then the poll calls again. */
      if (now - started < SPIN_TURN_NS && spin_allowed(ep)) {
        spin_until = now + SPIN_NS;
        continue;
      }
    } else {
      if (ep->pumping && from_client(ep, &from)) report_stop(ep, "packet", NULL);
      if (ep->closed) return;
      deliver(ep, receive_buffer, length, &from);
    }
    if (++handled >= BATCH) return;
  }
}

static endpoint_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  return rb_unwrap(env, info, argc, argv, "TftpEndpoint");
}

/* The two sockets of a transfer on one port (see the top of this file); 0, or an errno with *syscall set. */
static int open_sockets(const struct sockaddr_in *local, const struct sockaddr_in *client, int *fd, int *stranger_fd, const char **syscall) {
  int on = 1;
  struct sockaddr_in bound;
  socklen_t bound_length = sizeof bound;
  *fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  *stranger_fd = -1;
  if (*fd < 0) return *syscall = "socket", errno;
  if (bind(*fd, (const struct sockaddr *)local, sizeof *local) < 0) return *syscall = "bind", errno;
  if (setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0) return *syscall = "setsockopt", errno;
  if (getsockname(*fd, (struct sockaddr *)&bound, &bound_length) < 0) return *syscall = "getsockname", errno;
  *stranger_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (*stranger_fd < 0) return *syscall = "socket", errno;
  if (setsockopt(*stranger_fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0) return *syscall = "setsockopt", errno;
  if (bind(*stranger_fd, (const struct sockaddr *)&bound, sizeof bound) < 0) return *syscall = "bind", errno;
  if (connect(*fd, (const struct sockaddr *)client, sizeof *client) < 0) return *syscall = "connect", errno;
  return 0;
}

static napi_value construct(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], self;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok) return NULL;
  struct sockaddr_in local, client;
  memset(&local, 0, sizeof local);
  local.sin_family = AF_INET;
  napi_valuetype type3, type4;
  napi_typeof(env, argv[3], &type3);
  napi_typeof(env, argv[4], &type4);
  if (argc != 5 || !rb_get_ipv4(env, argv[0], &local.sin_addr) || !rb_get_sockaddr(env, argv[2], argv[1], &client) || client.sin_port == 0 ||
      type3 != napi_function || type4 != napi_function) {
    napi_throw_type_error(env, NULL, "new TftpEndpoint(address, clientAddress, clientPort, onMessage, onPumpStopped)");
    return NULL;
  }
  int fd, stranger_fd;
  const char *syscall = "";
  int error = open_sockets(&local, &client, &fd, &stranger_fd, &syscall);
  if (error != 0) {
    if (fd >= 0) close(fd);
    if (stranger_fd >= 0) close(stranger_fd);
    return rb_throw_errno(env, error, syscall, "");
  }
  endpoint_t *ep = calloc(1, sizeof *ep);
  if (ep == NULL) {
    close(fd);
    close(stranger_fd);
    return rb_throw_errno(env, ENOMEM, "calloc", "");
  }
  ep->env = env;
  ep->fd = fd;
  ep->stranger_fd = stranger_fd;
  ep->client = client;
  napi_get_uv_event_loop(env, &ep->loop);
  uv_poll_init(ep->loop, &ep->poll, fd);
  uv_poll_init(ep->loop, &ep->strangers, stranger_fd);
  uv_timer_init(ep->loop, &ep->timer);
  ep->poll.data = ep;
  ep->strangers.data = ep;
  ep->timer.data = ep;
  ep->open_handles = 3;
  napi_create_reference(env, argv[3], 1, &ep->on_message);
  napi_create_reference(env, argv[4], 1, &ep->on_stopped);
  /* Strong while open: the poll handle calls back into this object. */
  rb_hold_object(env, self, ep, finalize, "RackbootTftpEndpoint", &ep->self, &ep->context);
  uv_poll_start(&ep->poll, UV_READABLE, on_readable);
  uv_poll_start(&ep->strangers, UV_READABLE, on_readable);
  return self;
}

static napi_value method_port(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  endpoint_t *ep = unwrap(env, info, &argc, NULL);
  return ep == NULL ? NULL : rb_local_port(env, ep->fd, ep->closed);
}

static napi_value method_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  endpoint_t *ep = unwrap(env, info, &argc, argv);
  if (ep == NULL) return NULL;
  void *data;
  size_t length;
  struct sockaddr_in to;
  if (argc != 3 || napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok || !rb_get_sockaddr(env, argv[1], argv[2], &to)) {
    napi_throw_type_error(env, NULL, "send(buffer, port, address)");
    return NULL;
  }
  if (ep->closed) return NULL;
  if (from_client(ep, &to)) (void)send(ep->fd, data, length, 0);
  else (void)sendto(ep->stranger_fd, data, length, 0, (struct sockaddr *)&to, sizeof to);
  return NULL;
}

/* A number property of an options object; false when it is missing or not a number. */
static bool get_number(napi_env env, napi_value object, const char *name, double *out) {
  napi_value value;
  napi_valuetype type;
  if (napi_get_named_property(env, object, name, &value) != napi_ok || napi_typeof(env, value, &type) != napi_ok || type != napi_number) return false;
  return napi_get_value_double(env, value, out) == napi_ok;
}

/* The estimator's state from { smoothedMs, variationMs, minMs, maxMs } (smoothedMs -1 before a sample). */
static bool get_rtt(napi_env env, napi_value object, rtt_t *rtt) {
  return get_number(env, object, "smoothedMs", &rtt->smoothed_ms) && get_number(env, object, "variationMs", &rtt->variation_ms) &&
         get_number(env, object, "minMs", &rtt->min_ms) && get_number(env, object, "maxMs", &rtt->max_ms) && rtt->min_ms >= 1 &&
         rtt->max_ms >= rtt->min_ms;
}

static napi_value method_pump(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value job;
  endpoint_t *ep = unwrap(env, info, &argc, &job);
  if (ep == NULL) return NULL;
  double fd_number, size_number, block_number, from_number, final_number, timeout_number;
  napi_value adaptive_value;
  napi_valuetype adaptive_type = napi_undefined;
  rtt_t rtt = { -1, 0, 1, 1 };
  bool ok = argc == 1 && get_number(env, job, "fd", &fd_number) && get_number(env, job, "size", &size_number) &&
            get_number(env, job, "blockSize", &block_number) && get_number(env, job, "from", &from_number) &&
            get_number(env, job, "finalIndex", &final_number) && get_number(env, job, "timeoutMs", &timeout_number) &&
            napi_get_named_property(env, job, "adaptive", &adaptive_value) == napi_ok && napi_typeof(env, adaptive_value, &adaptive_type) == napi_ok;
  bool adaptive = ok && adaptive_type == napi_object;
  if (adaptive) ok = get_rtt(env, adaptive_value, &rtt);
  else ok = ok && adaptive_type == napi_undefined;
  int32_t file_fd = (int32_t)fd_number;
  int64_t size = (int64_t)size_number, block_size = (int64_t)block_number, from = (int64_t)from_number, final_index = (int64_t)final_number;
  int64_t timeout_ms = (int64_t)timeout_number;
  if (!ok || block_size < 8 || block_size > 65464 || from < 1 || from > final_index || size < 0 || timeout_ms < 1) {
    napi_throw_type_error(env, NULL, "pump({ fd, size, blockSize, from, finalIndex, timeoutMs, adaptive?: { smoothedMs, variationMs, minMs, maxMs } })");
    return NULL;
  }
  if (ep->closed) return rb_throw_errno(env, EBADF, "pump", "");
  int64_t capacity = (READ_AHEAD_BYTES / block_size + 1) * block_size;
  if (ep->chunk == NULL || ep->chunk_capacity != capacity) {
    free(ep->chunk);
    ep->chunk = malloc((size_t)capacity);
    ep->chunk_capacity = capacity;
  }
  if (ep->file_fd != file_fd || ep->block_size != block_size) ep->chunk_bytes = 0;
  ep->file_fd = file_fd;
  ep->size = size;
  ep->block_size = block_size;
  ep->final_index = final_index;
  ep->timeout_ms = (uint64_t)timeout_ms;
  ep->last_acked = from - 1;
  ep->adaptive = adaptive;
  ep->rtt = rtt;
  const char *outcome = "started";
  switch (send_block(ep, from)) {
    case SENT:
      set_pumping(ep, 1);
      ep->spin_skip = 0;
      ep->spin_backoff = 1;
      ep->polled_acks = 0;
      ep->poll_misses = 0;
      arm_timer(ep);
      break;
    case WOULD_BLOCK:
      outcome = "wouldBlock";
      break;
    case READ_FAILED:
      if (ep->read_error < 0) {
        napi_throw_error(env, NULL, "file ended before its size");
        return NULL;
      }
      return rb_throw_errno(env, ep->read_error, "preadv2", "");
  }
  napi_value result;
  napi_create_string_utf8(env, outcome, NAPI_AUTO_LENGTH, &result);
  return result;
}

static napi_value method_stop_pump(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  endpoint_t *ep = unwrap(env, info, &argc, NULL);
  if (ep != NULL) stop_pump(ep);
  return NULL;
}

static napi_value method_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  endpoint_t *ep = unwrap(env, info, &argc, NULL);
  if (ep == NULL || ep->closed) return NULL;
  ep->closed = 1;
  stop_pump(ep);
  uv_close((uv_handle_t *)&ep->poll, on_handle_closed);
  uv_close((uv_handle_t *)&ep->strangers, on_handle_closed);
  uv_close((uv_handle_t *)&ep->timer, on_handle_closed);
  /* uv_close has already taken the descriptors out of the loop's poll set. */
  close(ep->fd);
  close(ep->stranger_fd);
  napi_delete_reference(env, ep->on_message);
  napi_delete_reference(env, ep->on_stopped);
  napi_async_destroy(env, ep->context);
  napi_reference_unref(env, ep->self, NULL);
  return NULL;
}

/*
 * roundTripTimeouts(samples, { smoothedMs, variationMs, minMs, maxMs }):
 * the estimator after each sample, as [{ smoothedMs, variationMs, timeoutMs }],
 * for tests that check it against server/tftp/sender/rtt.ts.
 */
static napi_value round_trip_timeouts(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  rtt_t rtt;
  bool is_array = false;
  uint32_t count = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[0], &count) != napi_ok || !get_rtt(env, argv[1], &rtt)) {
    napi_throw_type_error(env, NULL, "roundTripTimeouts(samples, { smoothedMs, variationMs, minMs, maxMs })");
    return NULL;
  }
  napi_value result;
  napi_create_array_with_length(env, count, &result);
  for (uint32_t i = 0; i < count; i++) {
    napi_value item, value;
    double sample;
    if (napi_get_element(env, argv[0], i, &item) != napi_ok || napi_get_value_double(env, item, &sample) != napi_ok) {
      napi_throw_type_error(env, NULL, "roundTripTimeouts: samples are numbers of ms");
      return NULL;
    }
    uint64_t timeout = rtt_sample(&rtt, sample);
    napi_value entry;
    napi_create_object(env, &entry);
    napi_create_double(env, rtt.smoothed_ms, &value);
    napi_set_named_property(env, entry, "smoothedMs", value);
    napi_create_double(env, rtt.variation_ms, &value);
    napi_set_named_property(env, entry, "variationMs", value);
    napi_create_double(env, (double)timeout, &value);
    napi_set_named_property(env, entry, "timeoutMs", value);
    napi_set_element(env, result, i, entry);
  }
  return result;
}

void register_tftp_endpoint(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
    { "port", NULL, method_port, NULL, NULL, NULL, napi_default, NULL },
    { "send", NULL, method_send, NULL, NULL, NULL, napi_default, NULL },
    { "pump", NULL, method_pump, NULL, NULL, NULL, napi_default, NULL },
    { "stopPump", NULL, method_stop_pump, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, method_close, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_value constructor;
  napi_define_class(env, "TftpEndpoint", NAPI_AUTO_LENGTH, construct, NULL, sizeof methods / sizeof methods[0], methods, &constructor);
  napi_set_named_property(env, exports, "TftpEndpoint", constructor);
  napi_value timeouts;
  napi_create_function(env, "roundTripTimeouts", NAPI_AUTO_LENGTH, round_trip_timeouts, NULL, &timeouts);
  napi_set_named_property(env, exports, "roundTripTimeouts", timeouts);
}
