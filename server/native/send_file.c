/*
 * FileSend: bytes of a file sent to a connected socket with sendfile(2),
 * the page cache's pages going to the socket without a copy through the
 * process.
 *
 * Why this exists: Node has no sendfile. Streaming a boot file reads it
 * into a buffer and writes that buffer to the socket, a copy each way per
 * client; an in-memory copy of hot files saves the read but not the write,
 * and costs memory (docs/performance.md has bench:http's figures).
 *
 *   new FileSend(socketFd, fileFd, offset, length, onDone(errorOrNull, bytesSent))
 *   .abort()      stop early; onDone gets an ECANCELED error (never twice)
 *   FileSend.checkWithMincore(on)   use mincore() even where cachestat() works (tests)
 *
 * The socket is the descriptor of a Node net.Socket, whose libuv handle
 * already watches it: libuv allows one watcher per descriptor number, so
 * the send works on a dup() of it (another number for epoll, the same
 * connection). The caller must have nothing left queued on the socket
 * before it starts, and must not write to it until onDone.
 *
 * The event loop never waits: the socket is non-blocking, so a full send
 * buffer is EAGAIN and the send goes on when a poll says it is writable.
 * sendfile also reads the file, and a read of pages not in the page cache
 * would wait for the disk; cachestat(2) (Linux 6.5) tells whether a run's
 * pages are cached, or before 6.5 mincore() on a mapping of the range
 * (which maps, never reads). Both walk the page cache, so runs are checked
 * 4 MiB at a time, once per transfer (the walk is dear, mincore() the
 * dearer). Cached runs are sent on
 * the loop's thread; a run that is not cached is read ahead and sent on
 * libuv's thread pool, after which its pages are cached. A page evicted
 * between the check and the send is a short wait, the cost every sendfile
 * server (nginx too) pays on every page.
 *
 * onDone's error has code, errno and syscall like Node's own system
 * errors; EPIPE and ECONNRESET are a client that went away.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include "native.h"

/*
 * Bytes sent per wake-up of one transfer at most: on a fast link a send
 * buffer drains as fast as sendfile fills it, and without a limit one
 * client could keep the loop to itself for a whole file.
 */
#define BUDGET_BYTES (8 * 1024 * 1024)
/* Bytes whose pages are checked with one cachestat() or mincore() call (a byte a page). */
#define RESIDENCY_WINDOW (4 * 1024 * 1024)
/* Bytes read ahead and sent on the thread pool when the next page is not cached. */
#define COLD_RUN (2 * 1024 * 1024)

typedef struct {
  napi_env env;
  uv_loop_t *loop;
  uv_poll_t poll;
  uv_work_t work;
  int socket_fd; /* our dup of the caller's socket */
  int file_fd;   /* the caller's; not closed here */
  int64_t start;
  int64_t offset; /* the next byte to send */
  int64_t end;    /* one past the last byte to send */
  int64_t cached_until; /* the bytes from offset up to here were in the page cache */
  uint8_t *map;   /* without cachestat: the range's pages, mapped for mincore(), never touched */
  int map_failed;
  size_t map_length;
  int64_t map_start;
  int working;  /* a cold run is on the thread pool */
  int aborted;
  int finishing;
  int work_error; /* errno of the thread pool's sendfile, -1 for a file that ended early */
  int error;      /* what onDone reports: 0, an errno, or -1 for a file that ended early */
  const char *error_syscall;
  int handle_open;
  int finalized;
  napi_ref self;
  napi_ref on_done;
  napi_async_context context;
} transfer_t;

static long page_size;

/* cachestat(2): the number is the same on every architecture; headers before Linux 6.5 lack it. */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct cachestat_range_v1 {
  uint64_t off;
  uint64_t len;
};
struct cachestat_v1 {
  uint64_t nr_cache;
  uint64_t nr_dirty;
  uint64_t nr_writeback;
  uint64_t nr_evicted;
  uint64_t nr_recently_evicted;
};
static int cachestat_missing; /* ENOSYS seen: a kernel before 6.5, use mincore() */
static int mincore_only;       /* FileSend.checkWithMincore(true): the older kernels' way, for tests on newer ones */

static void maybe_free(transfer_t *t) {
  if (t->handle_open || !t->finalized) return;
  free(t);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  transfer_t *t = data;
  /* napi_wrap's reference is the addon's to delete, once the object is gone. */
  napi_delete_reference(env, t->self);
  t->finalized = 1;
  maybe_free(t);
}

/* An Error like Node's system errors; for a file that ended before the range (error -1), ERR_FILE_ENDED. */
static napi_value transfer_error(napi_env env, int error, const char *syscall) {
  if (error > 0) return rb_errno_error(env, error, syscall, "");
  char message[160];
  snprintf(message, sizeof message, "%s: the file ended before the range did", syscall);
  napi_value code_value, message_value, syscall_value, error_value;
  napi_create_string_utf8(env, "ERR_FILE_ENDED", NAPI_AUTO_LENGTH, &code_value);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value);
  napi_create_error(env, code_value, message_value, &error_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error_value, "syscall", syscall_value);
  return error_value;
}

/* The poll handle is closed: nothing of libuv refers to the transfer any more. Report, then let go. */
static void on_closed(uv_handle_t *handle) {
  transfer_t *t = handle->data;
  close(t->socket_fd);
  if (t->map != NULL) munmap(t->map, t->map_length);
  t->map = NULL;
  napi_env env = t->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[2];
  if (t->error != 0) argv[0] = transfer_error(env, t->error, t->error_syscall);
  else napi_get_null(env, &argv[0]);
  napi_create_int64(env, t->offset - t->start, &argv[1]);
  rb_call_back(env, t->context, t->self, t->on_done, 2, argv);
  napi_close_handle_scope(env, scope);
  napi_delete_reference(env, t->on_done);
  napi_async_destroy(env, t->context);
  napi_reference_unref(env, t->self, NULL);
  t->handle_open = 0;
  maybe_free(t);
}

/*
 * While the body goes out the socket is corked (TCP_CORK, nginx's
 * tcp_nopush): only full segments leave, instead of each sendfile's tail
 * being pushed at once under the TCP_NODELAY Node sets. With 16 clients
 * over a veth that brought the machine's CPU per GB (sender and receiver)
 * from 1.20-1.91x nginx's to 1.07-1.16x, and the throughput's dips from
 * 0.56x nginx to 0.72x at worst. Uncorking at the end sends the last
 * partial segment. A socket that is not TCP refuses; that is fine.
 */
static void set_cork(int fd, int on) {
  (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

static void finish(transfer_t *t, int error, const char *syscall) {
  if (t->finishing) return;
  t->finishing = 1;
  t->error = error;
  t->error_syscall = syscall;
  set_cork(t->socket_fd, 0);
  uv_close((uv_handle_t *)&t->poll, on_closed);
}

/* mincore() over from..to: the pages cached from `from` on, as a byte count (may end before `to`). */
static void check_with_mincore(transfer_t *t, int64_t from, int64_t to) {
  if (t->map == NULL) {
    if (t->map_failed) return;
    t->map_start = t->start - t->start % page_size;
    t->map_length = (size_t)(t->end - t->map_start);
    void *map = mmap(NULL, t->map_length, PROT_READ, MAP_SHARED, t->file_fd, t->map_start);
    if (map == MAP_FAILED) {
      t->map_failed = 1; /* every run then counts as not cached */
      return;
    }
    t->map = map;
  }
  int64_t first_page = (from - t->map_start) / page_size;
  int64_t last_page = (to - 1 - t->map_start) / page_size;
  unsigned char pages[RESIDENCY_WINDOW / 4096 + 2];
  int64_t count = last_page - first_page + 1;
  if (count > (int64_t)sizeof pages) count = (int64_t)sizeof pages;
  if (mincore(t->map + first_page * page_size, (size_t)(count * page_size), pages) != 0) return;
  int64_t cached = 0;
  while (cached < count && (pages[cached] & 1)) cached += 1;
  int64_t until = t->map_start + (first_page + cached) * page_size;
  t->cached_until = until < t->end ? until : t->end;
}

/*
 * How many bytes from offset (at most `wanted`) are in the page cache,
 * checking the next window of pages not yet known to be cached. 0 means
 * the next page may not be: it must be read off the loop's thread.
 */
static int64_t cached_bytes(transfer_t *t, int64_t wanted) {
  if (t->cached_until < t->offset) t->cached_until = t->offset;
  if (t->offset + wanted <= t->cached_until) return wanted;
  int64_t from = t->cached_until;
  int64_t to = t->end < from + RESIDENCY_WINDOW ? t->end : from + RESIDENCY_WINDOW;
  if (!cachestat_missing && !mincore_only) {
    int64_t first = from - from % page_size;
    int64_t last = (to + page_size - 1) / page_size * page_size;
    struct cachestat_range_v1 range = { (uint64_t)first, (uint64_t)(last - first) };
    struct cachestat_v1 stat;
    if (syscall(__NR_cachestat, t->file_fd, &range, &stat, 0) == 0) {
      /* All or nothing: cachestat counts pages, it does not say which. */
      if ((int64_t)stat.nr_cache >= (last - first) / page_size) t->cached_until = to;
    } else if (errno == ENOSYS) {
      cachestat_missing = 1;
    }
  }
  if (cachestat_missing || mincore_only) check_with_mincore(t, from, to);
  int64_t available = t->cached_until - t->offset;
  return available < wanted ? available : wanted;
}

static void on_writable(uv_poll_t *poll, int status, int events);

/* Thread pool: read a run ahead and send what the socket takes of it. The loop's thread leaves the transfer alone meanwhile. */
static void cold_run(uv_work_t *work) {
  transfer_t *t = work->data;
  int64_t run = t->end - t->offset < COLD_RUN ? t->end - t->offset : COLD_RUN;
  (void)readahead(t->file_fd, t->offset, (size_t)run);
  t->work_error = 0;
  int64_t run_end = t->offset + run;
  while (t->offset < run_end) {
    off_t position = t->offset;
    ssize_t n = sendfile(t->socket_fd, t->file_fd, &position, (size_t)(run_end - t->offset));
    if (n > 0) {
      t->offset += n;
      continue;
    }
    if (n == 0) t->work_error = -1;
    else if (errno == EINTR) continue;
    else if (errno != EAGAIN) t->work_error = errno;
    return;
  }
}

static void cold_run_done(uv_work_t *work, int status) {
  (void)status; /* never cancelled: abort waits for the run */
  transfer_t *t = work->data;
  t->working = 0;
  if (t->aborted) finish(t, ECANCELED, "sendfile");
  else if (t->work_error != 0) finish(t, t->work_error, "sendfile");
  else if (t->offset == t->end) finish(t, 0, "sendfile");
  else uv_poll_start(&t->poll, UV_WRITABLE, on_writable);
}

/* Send until the socket is full, the budget is spent, the next page is not cached, or the range is sent. */
static void pump(transfer_t *t) {
  int64_t budget = BUDGET_BYTES;
  while (t->offset < t->end && budget > 0) {
    int64_t wanted = t->end - t->offset < budget ? t->end - t->offset : budget;
    int64_t cached = cached_bytes(t, wanted);
    if (cached == 0) {
      uv_poll_stop(&t->poll);
      t->working = 1;
      t->work.data = t;
      uv_queue_work(t->loop, &t->work, cold_run, cold_run_done);
      return;
    }
    off_t position = t->offset;
    ssize_t n = sendfile(t->socket_fd, t->file_fd, &position, (size_t)cached);
    if (n > 0) {
      t->offset += n;
      budget -= n;
      /*
       * Less than asked: the send buffer is full (as nginx reads it), so
       * wait for the poll rather than make a call that would only say
       * EAGAIN, as half the calls did. Level-triggered, the poll comes
       * straight back if there is room after all.
       */
      if (n < cached && t->offset < t->end) return;
      continue;
    }
    if (n == 0) {
      finish(t, -1, "sendfile");
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return; /* the poll calls again when there is room */
    finish(t, errno, "sendfile");
    return;
  }
  /* Budget spent: the poll is level-triggered, so the next turn of the loop comes back here. */
  if (t->offset == t->end) finish(t, 0, "sendfile");
}

static void on_writable(uv_poll_t *poll, int status, int events) {
  (void)events;
  transfer_t *t = poll->data;
  if (t->finishing || t->working) return;
  if (status < 0) {
    /* libuv reports any POLLERR as EBADF: the socket's own error says what happened (ECONNRESET, EPIPE). */
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(t->socket_fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0 || error == 0) error = -status;
    finish(t, error, "sendfile");
    return;
  }
  pump(t);
}

static napi_value construct(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], self;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok) return NULL;
  int32_t socket_fd, file_fd;
  int64_t offset, length;
  napi_valuetype callback_type = napi_undefined;
  if (argc == 5) napi_typeof(env, argv[4], &callback_type);
  if (argc != 5 || napi_get_value_int32(env, argv[0], &socket_fd) != napi_ok || napi_get_value_int32(env, argv[1], &file_fd) != napi_ok ||
      napi_get_value_int64(env, argv[2], &offset) != napi_ok || napi_get_value_int64(env, argv[3], &length) != napi_ok || socket_fd < 0 || file_fd < 0 ||
      offset < 0 || length < 0 || callback_type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "new FileSend(socketFd, fileFd, offset, length, onDone): two descriptors, two byte counts and a function");
    return NULL;
  }
  if (page_size == 0) page_size = sysconf(_SC_PAGESIZE);
  int dup_fd = fcntl(socket_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) {
    return rb_throw_errno(env, errno, "dup", "");
  }
  transfer_t *t = calloc(1, sizeof *t);
  t->env = env;
  t->socket_fd = dup_fd;
  t->file_fd = file_fd;
  t->start = offset;
  t->offset = offset;
  t->end = offset + length;
  t->cached_until = offset;
  napi_get_uv_event_loop(env, &t->loop);
  int result = uv_poll_init(t->loop, &t->poll, dup_fd);
  if (result < 0) {
    close(dup_fd);
    free(t);
    return rb_throw_errno(env, -result, "uv_poll_init", "");
  }
  t->poll.data = t;
  t->handle_open = 1;
  set_cork(dup_fd, 1);
  napi_create_reference(env, argv[4], 1, &t->on_done);
  /* Strong until onDone: the poll handle calls back into this object. */
  rb_hold_object(env, self, t, finalize, "RackbootFileSend", &t->self, &t->context);
  /* Sending starts on the first writable event, so onDone never runs inside the constructor. */
  if (length == 0) finish(t, 0, "sendfile");
  else uv_poll_start(&t->poll, UV_WRITABLE, on_writable);
  return self;
}

static napi_value method_abort(napi_env env, napi_callback_info info) {
  napi_value self;
  void *data = NULL;
  size_t argc = 0;
  if (napi_get_cb_info(env, info, &argc, NULL, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "not a FileSend");
    return NULL;
  }
  transfer_t *t = data;
  if (t->finishing || t->aborted) return NULL;
  t->aborted = 1;
  if (!t->working) finish(t, ECANCELED, "sendfile"); /* else the run's end finishes it */
  return NULL;
}

static napi_value static_check_with_mincore(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool on;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || napi_get_value_bool(env, argv[0], &on) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "FileSend.checkWithMincore(on): a boolean");
    return NULL;
  }
  mincore_only = on;
  return NULL;
}

void register_send_file(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
    { "abort", NULL, method_abort, NULL, NULL, NULL, napi_default, NULL },
    { "checkWithMincore", NULL, static_check_with_mincore, NULL, NULL, NULL, napi_static, NULL },
  };
  napi_value constructor;
  napi_define_class(env, "FileSend", NAPI_AUTO_LENGTH, construct, NULL, sizeof methods / sizeof methods[0], methods, &constructor);
  napi_set_named_property(env, exports, "FileSend", constructor);
}
