/* rackboot's native addon: the functions of each file, as one module, and the helpers they share. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "native.h"

napi_value rb_errno_error(napi_env env, int error, const char *syscall, const char *detail) {
  const char *code = strerrorname_np(error);
  char message[256];
  snprintf(message, sizeof message, "%s %s%s%s (%s)", syscall, code ? code : "EUNKNOWN", detail[0] ? " " : "", detail, strerror(error));
  napi_value code_value, message_value, errno_value, syscall_value, error_value;
  napi_create_string_utf8(env, code ? code : "EUNKNOWN", NAPI_AUTO_LENGTH, &code_value);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value);
  napi_create_int32(env, -error, &errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_create_error(env, code_value, message_value, &error_value);
  napi_set_named_property(env, error_value, "errno", errno_value);
  napi_set_named_property(env, error_value, "syscall", syscall_value);
  return error_value;
}

napi_value rb_throw_errno(napi_env env, int error, const char *syscall, const char *detail) {
  napi_throw(env, rb_errno_error(env, error, syscall, detail));
  return NULL;
}

int rb_get_ipv4(napi_env env, napi_value value, struct in_addr *address) {
  char text[INET_ADDRSTRLEN + 1];
  size_t length;
  if (napi_get_value_string_utf8(env, value, text, sizeof text, &length) != napi_ok) return 0;
  return inet_pton(AF_INET, text, address) == 1;
}

int rb_get_sockaddr(napi_env env, napi_value port, napi_value address, struct sockaddr_in *out) {
  uint32_t number;
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  if (napi_get_value_uint32(env, port, &number) != napi_ok || number > 65535) return 0;
  out->sin_port = htons((uint16_t)number);
  return rb_get_ipv4(env, address, &out->sin_addr);
}

void *rb_unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, const char *class_name) {
  napi_value self;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    char message[64];
    snprintf(message, sizeof message, "not a %s", class_name);
    napi_throw_type_error(env, NULL, message);
    return NULL;
  }
  return data;
}

napi_value rb_local_port(napi_env env, int fd, int closed) {
  struct sockaddr_in local;
  socklen_t length = sizeof local;
  if (closed || getsockname(fd, (struct sockaddr *)&local, &length) < 0) return rb_throw_errno(env, closed ? EBADF : errno, "getsockname", "");
  napi_value result;
  napi_create_uint32(env, ntohs(local.sin_port), &result);
  return result;
}

void rb_hold_object(napi_env env, napi_value self, void *data, napi_finalize finalize, const char *resource, napi_ref *self_ref, napi_async_context *context) {
  napi_value name;
  napi_create_string_utf8(env, resource, NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, context);
  napi_wrap(env, self, data, finalize, NULL, self_ref);
  napi_reference_ref(env, *self_ref, NULL);
}

void rb_call_back(napi_env env, napi_async_context context, napi_ref self_ref, napi_ref function_ref, size_t argc, napi_value *argv) {
  napi_value function, self, result;
  if (napi_get_reference_value(env, function_ref, &function) != napi_ok || function == NULL) return;
  if (napi_get_reference_value(env, self_ref, &self) != napi_ok || self == NULL) return;
  if (napi_make_callback(env, context, self, function, argc, argv, &result) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  register_udp_device(env, exports);
  register_tftp_endpoint(env, exports);
  register_udp_segments(env, exports);
  register_send_file(env, exports);
  register_privileges(env, exports);
  register_udp_batch(env, exports);
  return exports;
}
