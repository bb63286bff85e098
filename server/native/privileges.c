/*
 * Giving up privileges after start (see server/privileges.ts).
 *
 * lookupUser({ name }): the user's uid and primary gid from the system's user
 * database (getpwnam_r, so NSS users work too); undefined for no such user.
 *
 * clearCapabilities({ keep }): every thread of the process left with the
 * capabilities in `keep` (numbers, as in linux/capability.h) in its permitted
 * and effective sets, nothing inheritable and an empty ambient set.
 * Capabilities belong to each thread, not to the process: capset(2) and
 * PR_CAP_AMBIENT change the calling thread only, and a Node process runs
 * several (V8's platform workers, libuv's pool). Only setuid and friends are
 * made process-wide, by glibc, which signals each thread to repeat the
 * system call. This does the same for capabilities: the calling thread
 * clears its own, then every other thread is sent a real-time signal whose
 * handler clears that thread's, and the call waits for each. Node's SIGUSR1
 * watchdog thread blocks every signal glibc lets it block; glibc never lets
 * a thread block its own set*id signal (33, SIGSETXID: that is how setuid
 * reaches every thread), so such a thread is sent signal 33 instead, with
 * this handler put in glibc's place for the call and glibc's put back after
 * (installed with the raw system call, which glibc's sigaction refuses for
 * its own signals; nothing else in the process calls set*id meanwhile: the
 * calling thread is the only one running JavaScript, and it is here). A
 * thread that blocks both (a libc other than glibc) cannot be reached; its
 * id is returned in `unreachable`, for the caller to judge. Threads made
 * later are copies of a cleared one.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "native.h"

/* The kernel's struct sigaction for rt_sigaction(2) (asm-generic/signal.h and x86's). */
#if defined(__x86_64__) || defined(__aarch64__)
struct kernel_action {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  unsigned long mask;
};
#define KERNEL_SIGSET_BYTES 8
#else
#error "privileges.c: struct kernel_action is written for x86_64 and aarch64"
#endif

/* Glibc's set*id broadcast signal, which glibc lets no thread block. */
#define SETXID_SIGNAL 33

static napi_value lookup_user(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value options, name_value;
  napi_get_cb_info(env, info, &argc, &options, NULL, NULL);
  char name[256];
  size_t length;
  if (argc < 1 || napi_get_named_property(env, options, "name", &name_value) != napi_ok ||
      napi_get_value_string_utf8(env, name_value, name, sizeof name, &length) != napi_ok || length == 0 || length >= sizeof name - 1) {
    napi_throw_type_error(env, NULL, "lookupUser({ name }): name must be a user name");
    return NULL;
  }
  struct passwd entry, *found = NULL;
  char buffer[16384];
  int error = getpwnam_r(name, &entry, buffer, sizeof buffer, &found);
  if (error != 0) return rb_throw_errno(env, error, "getpwnam_r", name);
  napi_value result;
  if (found == NULL) {
    napi_get_undefined(env, &result);
    return result;
  }
  napi_value uid, gid;
  napi_create_object(env, &result);
  napi_create_uint32(env, found->pw_uid, &uid);
  napi_create_uint32(env, found->pw_gid, &gid);
  napi_set_named_property(env, result, "uid", uid);
  napi_set_named_property(env, result, "gid", gid);
  return result;
}

/* What each thread's handler sets, and how many have done it. */
static struct __user_cap_data_struct target[_LINUX_CAPABILITY_U32S_3];
static atomic_int threads_done;
static atomic_int threads_failed;

/* Raw system calls only: this also runs as a signal handler. */
static int clear_this_thread(void) {
  struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
  if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) return errno;
  if (syscall(SYS_capset, &header, target) < 0) return errno;
  return 0;
}

static void on_clear_signal(int signal) {
  (void)signal;
  int saved = errno;
  if (clear_this_thread() != 0) atomic_fetch_add(&threads_failed, 1);
  atomic_fetch_add(&threads_done, 1);
  errno = saved;
}

/* Does thread `tid` block signal `number`? Read from its SigBlk line. */
static int blocks_signal(pid_t tid, int number) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
  FILE *file = fopen(path, "re");
  if (file == NULL) return 0; /* gone already */
  int blocked = 0;
  while (fgets(line, sizeof line, file) != NULL) {
    if (strncmp(line, "SigBlk:", 7) == 0) {
      unsigned long long mask = strtoull(line + 7, NULL, 16);
      blocked = (mask >> (number - 1)) & 1;
      break;
    }
  }
  fclose(file);
  return blocked;
}

#define MAX_THREADS 1024

static int seen(const pid_t *list, int count, pid_t tid) {
  for (int i = 0; i < count; i++) if (list[i] == tid) return 1;
  return 0;
}

static napi_value clear_capabilities(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value options, keep_value;
  napi_get_cb_info(env, info, &argc, &options, NULL, NULL);
  bool is_array = false;
  if (argc < 1 || napi_get_named_property(env, options, "keep", &keep_value) != napi_ok || napi_is_array(env, keep_value, &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, NULL, "clearCapabilities({ keep }): keep must be an array of capability numbers");
    return NULL;
  }
  uint32_t keep_count;
  napi_get_array_length(env, keep_value, &keep_count);
  uint32_t keep[_LINUX_CAPABILITY_U32S_3] = { 0 };
  for (uint32_t i = 0; i < keep_count; i++) {
    napi_value item;
    uint32_t number;
    napi_get_element(env, keep_value, i, &item);
    if (napi_get_value_uint32(env, item, &number) != napi_ok || number >= 32 * _LINUX_CAPABILITY_U32S_3) {
      napi_throw_range_error(env, NULL, "clearCapabilities({ keep }): a capability number is out of range");
      return NULL;
    }
    keep[number / 32] |= 1u << (number % 32);
  }

  struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct current[_LINUX_CAPABILITY_U32S_3];
  if (syscall(SYS_capget, &header, current) < 0) return rb_throw_errno(env, errno, "capget", "");
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
    target[i].permitted = current[i].permitted & keep[i];
    target[i].effective = target[i].permitted;
    target[i].inheritable = 0;
  }

  /* Glibc keeps the first real-time signals for itself; SIGRTMIN is past them. */
  const int number = SIGRTMIN + 3;
  struct sigaction action, previous;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_clear_signal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  if (sigaction(number, &action, &previous) < 0) return rb_throw_errno(env, errno, "sigaction", "");
  /* The same handler, as glibc gave it to the kernel (its flags and restorer), for signal 33 too. */
  struct kernel_action ours, glibc_setxid;
  if (syscall(SYS_rt_sigaction, number, NULL, &ours, KERNEL_SIGSET_BYTES) < 0 ||
      syscall(SYS_rt_sigaction, SETXID_SIGNAL, NULL, &glibc_setxid, KERNEL_SIGSET_BYTES) < 0 ||
      syscall(SYS_rt_sigaction, SETXID_SIGNAL, &ours, NULL, KERNEL_SIGSET_BYTES) < 0) {
    int saved = errno;
    sigaction(number, &previous, NULL);
    return rb_throw_errno(env, saved, "rt_sigaction", "signal 33");
  }

  int error = clear_this_thread();
  if (error != 0) {
    syscall(SYS_rt_sigaction, SETXID_SIGNAL, &glibc_setxid, NULL, KERNEL_SIGSET_BYTES);
    sigaction(number, &previous, NULL);
    return rb_throw_errno(env, error, "capset", "calling thread");
  }

  pid_t self = (pid_t)syscall(SYS_gettid);
  pid_t pid = getpid();
  pid_t signalled[MAX_THREADS], unreachable[MAX_THREADS];
  int signalled_count = 0, unreachable_count = 0;
  atomic_store(&threads_done, 0);
  atomic_store(&threads_failed, 0);
  /* Scan until a pass finds no new thread: one may start while we work. */
  for (int pass = 0; pass < 8; pass++) {
    int found_new = 0;
    DIR *tasks = opendir("/proc/self/task");
    if (tasks == NULL) {
      error = errno;
      break;
    }
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
      pid_t tid = (pid_t)atoi(entry->d_name);
      if (tid <= 0 || tid == self || seen(signalled, signalled_count, tid) || seen(unreachable, unreachable_count, tid)) continue;
      found_new = 1;
      int signal_for_it = number;
      if (blocks_signal(tid, number)) signal_for_it = SETXID_SIGNAL;
      if (signal_for_it == SETXID_SIGNAL && blocks_signal(tid, SETXID_SIGNAL)) {
        if (unreachable_count < MAX_THREADS) unreachable[unreachable_count++] = tid;
        continue;
      }
      if (signalled_count >= MAX_THREADS) continue;
      if (syscall(SYS_tgkill, pid, tid, signal_for_it) < 0) {
        if (errno == ESRCH) continue; /* it ended */
        error = errno;
        break;
      }
      signalled[signalled_count++] = tid;
    }
    closedir(tasks);
    if (error != 0) break;
    /* Wait for every handler (a thread stuck in the kernel gets 5 s). */
    for (int waited = 0; atomic_load(&threads_done) < signalled_count && waited < 5000; waited++) {
      struct timespec millisecond = { 0, 1000000 };
      nanosleep(&millisecond, NULL);
    }
    if (!found_new) break;
  }
  /* Once every handler has run, glibc's signal 33 goes back and ours comes off;
     with one still pending (the timeout below), ours stays: it is harmless. */
  if (atomic_load(&threads_done) >= signalled_count) {
    syscall(SYS_rt_sigaction, SETXID_SIGNAL, &glibc_setxid, NULL, KERNEL_SIGSET_BYTES);
    sigaction(number, &previous, NULL);
  }
  if (error != 0) return rb_throw_errno(env, error, "tgkill", "");
  if (atomic_load(&threads_done) < signalled_count) {
    napi_throw_error(env, "ETIMEDOUT", "clearCapabilities: a thread did not run its signal handler within 5 s");
    return NULL;
  }
  if (atomic_load(&threads_failed) > 0) {
    napi_throw_error(env, "EPERM", "clearCapabilities: capset failed in a thread");
    return NULL;
  }

  napi_value result, threads, unreachable_array;
  napi_create_object(env, &result);
  napi_create_int32(env, signalled_count + 1, &threads);
  napi_create_array_with_length(env, (size_t)unreachable_count, &unreachable_array);
  for (int i = 0; i < unreachable_count; i++) {
    napi_value tid;
    napi_create_int32(env, unreachable[i], &tid);
    napi_set_element(env, unreachable_array, (uint32_t)i, tid);
  }
  napi_set_named_property(env, result, "threads", threads);
  napi_set_named_property(env, result, "unreachable", unreachable_array);
  return result;
}

void register_privileges(napi_env env, napi_value exports) {
  napi_value function;
  napi_create_function(env, "lookupUser", NAPI_AUTO_LENGTH, lookup_user, NULL, &function);
  napi_set_named_property(env, exports, "lookupUser", function);
  napi_create_function(env, "clearCapabilities", NAPI_AUTO_LENGTH, clear_capabilities, NULL, &function);
  napi_set_named_property(env, exports, "clearCapabilities", function);
}
