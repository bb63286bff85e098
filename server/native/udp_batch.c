/*
 * UdpBatch: a bound UDP socket read and written a batch at a time, for the
 * DHCP server's group commit.
 *
 *   new UdpBatch(fd, onReadable)  adopts a bound socket (udp_device.c's), and
 *                                 closes it on close(); onReadable() once
 *                                 datagrams are queued, after which the
 *                                 socket is not watched until resume()
 *   .read(max)                    the datagrams queued now, at most max, as
 *                                 [message, address, port, ...]; message is
 *                                 null for one longer than 8 KiB (dropped)
 *   .resume()                     watch again (onReadable() at once when
 *                                 something is still queued)
 *   .send([buffer, port, address, ...])
 *                                 all of them in one sendmmsg(2); each one's
 *                                 errno in order, 0 for sent
 *   .receiveBufferSize()          SO_RCVBUF as Linux reports it
 *   .close()
 *
 * Why this exists: the server decides and commits the requests of a few
 * milliseconds together (server/dhcp/leases/commit.ts), but Node's dgram
 * wakes the process and enters JavaScript for every datagram received and
 * again for every send completed (a DNS lookup of the literal address, a
 * send request, a completion callback on the next tick). At 1000 requests
 * a second that cost is per request, and it was most of what rackboot spent
 * above Kea. Here the server is woken once for the first request of a
 * batch, reads what queued during the batch's window with recvmmsg(2) when
 * the window ends, and sends the batch's replies with one sendmmsg(2).
 *
 * A send that finds the socket's send buffer full (EAGAIN, which a UDP
 * socket sees only when the kernel cannot queue a datagram to its device)
 * waits for it to drain up to 10 ms, once per call, before it reports the
 * rest as not sent.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <node_api.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "native.h"

/* Datagrams per recvmmsg call, and the longest kept: a DHCP message over Ethernet is at most 1500 bytes. */
#define SLOTS 32
#define SLOT_BYTES 8192
/* Datagrams per sendmmsg call. */
#define SEND_BATCH 64

typedef struct {
  napi_env env;
  uv_loop_t *loop;
  uv_poll_t poll;
  int fd;
  int closed;
  int handle_open;
  int finalized;
  napi_ref self;
  napi_ref on_readable;
  napi_async_context context;
  uint8_t *slots; /* SLOTS * SLOT_BYTES */
} batch_t;

static void maybe_free(batch_t *b) {
  if (b->handle_open || !b->finalized) return;
  free(b->slots);
  free(b);
}

static void on_handle_closed(uv_handle_t *handle) {
  batch_t *b = handle->data;
  b->handle_open = 0;
  maybe_free(b);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  batch_t *b = data;
  b->finalized = 1;
  maybe_free(b);
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)status;
  (void)events;
  batch_t *b = poll->data;
  /* Watched again only when the server asks: a batch's datagrams are read when its window ends. */
  uv_poll_stop(&b->poll);
  napi_handle_scope scope;
  napi_open_handle_scope(b->env, &scope);
  rb_call_back(b->env, b->context, b->self, b->on_readable, 0, NULL);
  napi_close_handle_scope(b->env, scope);
}

static batch_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  return rb_unwrap(env, info, argc, argv, "UdpBatch");
}

static napi_value construct(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok) return NULL;
  int32_t fd;
  napi_valuetype type;
  if (argc != 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 || napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "new UdpBatch(fd, onReadable)");
    return NULL;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return rb_throw_errno(env, errno, "fcntl", "O_NONBLOCK");
  batch_t *b = calloc(1, sizeof *b);
  uint8_t *slots = malloc((size_t)SLOTS * SLOT_BYTES);
  if (b == NULL || slots == NULL) {
    free(b);
    free(slots);
    return rb_throw_errno(env, ENOMEM, "malloc", "");
  }
  b->env = env;
  b->fd = fd;
  b->slots = slots;
  napi_get_uv_event_loop(env, &b->loop);
  int result = uv_poll_init(b->loop, &b->poll, fd);
  if (result < 0) {
    free(slots);
    free(b);
    return rb_throw_errno(env, -result, "uv_poll_init", "");
  }
  b->poll.data = b;
  b->handle_open = 1;
  napi_create_reference(env, argv[1], 1, &b->on_readable);
  /* Strong while open: the poll handle calls back into this object. */
  rb_hold_object(env, self, b, finalize, "RackbootUdpBatch", &b->self, &b->context);
  uv_poll_start(&b->poll, UV_READABLE, on_readable);
  return self;
}

static napi_value method_read(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  batch_t *b = unwrap(env, info, &argc, argv);
  if (b == NULL) return NULL;
  uint32_t max;
  if (argc != 1 || napi_get_value_uint32(env, argv[0], &max) != napi_ok || max == 0) {
    napi_throw_type_error(env, NULL, "read(max): max is a positive integer");
    return NULL;
  }
  napi_value result;
  napi_create_array(env, &result);
  if (b->closed) return result;
  struct mmsghdr messages[SLOTS];
  struct iovec vectors[SLOTS];
  struct sockaddr_in sources[SLOTS];
  uint32_t count = 0, index = 0;
  while (count < max) {
    unsigned want = max - count < SLOTS ? max - count : SLOTS;
    memset(messages, 0, sizeof messages);
    for (unsigned i = 0; i < want; i++) {
      vectors[i].iov_base = b->slots + (size_t)i * SLOT_BYTES;
      vectors[i].iov_len = SLOT_BYTES;
      messages[i].msg_hdr.msg_iov = &vectors[i];
      messages[i].msg_hdr.msg_iovlen = 1;
      messages[i].msg_hdr.msg_name = &sources[i];
      messages[i].msg_hdr.msg_namelen = sizeof sources[i];
    }
    int got = recvmmsg(b->fd, messages, want, MSG_DONTWAIT, NULL);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      /* What was read before stays read: the caller gets it, and the error on its next read. */
      if (count > 0) break;
      return rb_throw_errno(env, errno, "recvmmsg", "");
    }
    /*
     * The round's datagrams are copied back to back into one ArrayBuffer,
     * which JavaScript views as Buffers: one allocation per round, and
     * Buffers of the same kind as those JavaScript makes (one made here
     * with napi_create_buffer_copy has another hidden class, and code V8
     * compiled for the one deoptimizes on meeting the other).
     */
    size_t total = 0;
    for (int i = 0; i < got; i++) {
      if (!(messages[i].msg_hdr.msg_flags & MSG_TRUNC)) total += messages[i].msg_len;
    }
    void *data = NULL;
    napi_value round;
    if (napi_create_arraybuffer(env, total, &data, &round) != napi_ok) return NULL;
    size_t offset = 0;
    for (int i = 0; i < got; i++) {
      napi_value start, length, address, port;
      int32_t bytes = -1; /* too long for a slot: dropped, and said so */
      if (!(messages[i].msg_hdr.msg_flags & MSG_TRUNC)) {
        bytes = (int32_t)messages[i].msg_len;
        memcpy((char *)data + offset, vectors[i].iov_base, messages[i].msg_len);
      }
      napi_create_uint32(env, (uint32_t)offset, &start);
      napi_create_int32(env, bytes, &length);
      if (bytes > 0) offset += (size_t)bytes;
      char text[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &sources[i].sin_addr, text, sizeof text);
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &address);
      napi_create_uint32(env, ntohs(sources[i].sin_port), &port);
      napi_set_element(env, result, index++, round);
      napi_set_element(env, result, index++, start);
      napi_set_element(env, result, index++, length);
      napi_set_element(env, result, index++, address);
      napi_set_element(env, result, index++, port);
    }
    count += (uint32_t)got;
    if ((unsigned)got < want) break;
  }
  return result;
}

static napi_value method_resume(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  batch_t *b = unwrap(env, info, &argc, NULL);
  if (b != NULL && !b->closed) uv_poll_start(&b->poll, UV_READABLE, on_readable);
  return NULL;
}

/* Waits up to 10 ms for room in the send buffer; whether there is. */
static int wait_writable(int fd) {
  struct pollfd entry = { .fd = fd, .events = POLLOUT, .revents = 0 };
  int ready;
  do ready = poll(&entry, 1, 10);
  while (ready < 0 && errno == EINTR);
  return ready > 0;
}

static napi_value method_send(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  batch_t *b = unwrap(env, info, &argc, argv);
  if (b == NULL) return NULL;
  bool is_array = false;
  uint32_t length = 0;
  if (argc != 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &length) != napi_ok ||
      length % 3 != 0) {
    napi_throw_type_error(env, NULL, "send([buffer, port, address, ...])");
    return NULL;
  }
  uint32_t total = length / 3;
  napi_value result;
  napi_create_array_with_length(env, total, &result);
  struct mmsghdr messages[SEND_BATCH];
  struct iovec vectors[SEND_BATCH];
  struct sockaddr_in targets[SEND_BATCH];
  int waited = 0;
  for (uint32_t first = 0; first < total; first += SEND_BATCH) {
    uint32_t n = total - first < SEND_BATCH ? total - first : SEND_BATCH;
    memset(messages, 0, sizeof messages);
    for (uint32_t i = 0; i < n; i++) {
      napi_value buffer, port, address;
      void *data;
      size_t size;
      napi_get_element(env, argv[0], (first + i) * 3, &buffer);
      napi_get_element(env, argv[0], (first + i) * 3 + 1, &port);
      napi_get_element(env, argv[0], (first + i) * 3 + 2, &address);
      if (napi_get_buffer_info(env, buffer, &data, &size) != napi_ok || !rb_get_sockaddr(env, port, address, &targets[i])) {
        napi_throw_type_error(env, NULL, "send([buffer, port, address, ...]): a buffer, a port in 0-65535 and a dotted IPv4 address each");
        return NULL;
      }
      vectors[i].iov_base = data;
      vectors[i].iov_len = size;
      messages[i].msg_hdr.msg_iov = &vectors[i];
      messages[i].msg_hdr.msg_iovlen = 1;
      messages[i].msg_hdr.msg_name = &targets[i];
      messages[i].msg_hdr.msg_namelen = sizeof targets[i];
    }
    uint32_t done = 0;
    while (done < n) {
      int error = 0;
      if (b->closed) {
        error = EBADF;
      } else {
        int sent = sendmmsg(b->fd, messages + done, n - done, MSG_DONTWAIT);
        if (sent > 0) {
          for (int i = 0; i < sent; i++) {
            napi_value zero;
            napi_create_int32(env, 0, &zero);
            napi_set_element(env, result, first + done + (uint32_t)i, zero);
          }
          done += (uint32_t)sent;
          continue;
        }
        error = sent < 0 ? errno : EIO;
        if (error == EINTR) continue;
        if ((error == EAGAIN || error == EWOULDBLOCK) && !waited) {
          waited = 1;
          if (wait_writable(b->fd)) continue;
        }
      }
      /* sendmmsg failed on its first datagram: that one is reported, the rest are tried. */
      napi_value code;
      napi_create_int32(env, error, &code);
      napi_set_element(env, result, first + done, code);
      done += 1;
    }
  }
  return result;
}

static napi_value method_receive_buffer_size(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  batch_t *b = unwrap(env, info, &argc, NULL);
  if (b == NULL) return NULL;
  int size = 0;
  socklen_t length = sizeof size;
  if (b->closed || getsockopt(b->fd, SOL_SOCKET, SO_RCVBUF, &size, &length) < 0) return rb_throw_errno(env, b->closed ? EBADF : errno, "getsockopt", "SO_RCVBUF");
  napi_value result;
  napi_create_int32(env, size, &result);
  return result;
}

static napi_value method_local_port(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  batch_t *b = unwrap(env, info, &argc, NULL);
  return b == NULL ? NULL : rb_local_port(env, b->fd, b->closed);
}

static napi_value method_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  batch_t *b = unwrap(env, info, &argc, NULL);
  if (b == NULL || b->closed) return NULL;
  b->closed = 1;
  uv_close((uv_handle_t *)&b->poll, on_handle_closed);
  /* uv_close has already taken the descriptor out of the loop's poll set. */
  close(b->fd);
  napi_delete_reference(env, b->on_readable);
  napi_async_destroy(env, b->context);
  napi_reference_unref(env, b->self, NULL);
  return NULL;
}

void register_udp_batch(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
    { "read", NULL, method_read, NULL, NULL, NULL, napi_default, NULL },
    { "resume", NULL, method_resume, NULL, NULL, NULL, napi_default, NULL },
    { "send", NULL, method_send, NULL, NULL, NULL, napi_default, NULL },
    { "receiveBufferSize", NULL, method_receive_buffer_size, NULL, NULL, NULL, napi_default, NULL },
    { "localPort", NULL, method_local_port, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, method_close, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_value constructor;
  napi_define_class(env, "UdpBatch", NAPI_AUTO_LENGTH, construct, NULL, sizeof methods / sizeof methods[0], methods, &constructor);
  napi_set_named_property(env, exports, "UdpBatch", constructor);
}
