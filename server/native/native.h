#ifndef RACKBOOT_NATIVE_H
#define RACKBOOT_NATIVE_H
#include <netinet/in.h>
#include <node_api.h>

/* Each file adds its functions to the addon's exports. */
void register_udp_device(napi_env env, napi_value exports);
void register_tftp_endpoint(napi_env env, napi_value exports);
void register_udp_segments(napi_env env, napi_value exports);
void register_send_file(napi_env env, napi_value exports);
void register_privileges(napi_env env, napi_value exports);
void register_udp_batch(napi_env env, napi_value exports);

/* An Error shaped like Node's system errors ("bind EADDRINUSE 0.0.0.0:67 (Address in use)", code, errno, syscall). */
napi_value rb_errno_error(napi_env env, int error, const char *syscall, const char *detail);
/* Throws rb_errno_error's Error; returns NULL. */
napi_value rb_throw_errno(napi_env env, int error, const char *syscall, const char *detail);
/* A dotted IPv4 address from a JavaScript string; 0 when it is not one. */
int rb_get_ipv4(napi_env env, napi_value value, struct in_addr *address);
/*
 * Wrap `data` in `self`, held strongly (the caller unrefs *self_ref when its
 * libuv handles are done with it), with an async context named `resource`
 * for rb_call_back.
 */
void rb_hold_object(napi_env env, napi_value self, void *data, napi_finalize finalize, const char *resource, napi_ref *self_ref, napi_async_context *context);
/* Call a JavaScript function from a libuv callback, as Node's own handles do: microtasks run after it, async hooks see it, a throw is fatal. */
void rb_call_back(napi_env env, napi_async_context context, napi_ref self_ref, napi_ref function_ref, size_t argc, napi_value *argv);
/* The native data of `this` of a method call, with its arguments; NULL (and a TypeError thrown) when `this` is not a `class_name`. */
void *rb_unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, const char *class_name);
/* The local port of a bound socket as a JavaScript number; throws (EBADF when closed) and returns NULL when it cannot be read. */
napi_value rb_local_port(napi_env env, int fd, int closed);
/* An IPv4 socket address from a JavaScript port number (0-65535) and dotted address; 0 when either is not one. */
int rb_get_sockaddr(napi_env env, napi_value port, napi_value address, struct sockaddr_in *out);

#endif
