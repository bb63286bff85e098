/*
 * openUdp4OnDevice(device, address, port): a UDP socket bound to
 * address:port that receives only what arrives on `device`, returned as a
 * file descriptor for dgram's documented socket.bind({ fd }).
 *
 * Why this exists: a DHCP server must hear broadcasts from clients that have
 * no address yet, so it binds 0.0.0.0:67, and on Linux such a socket hears
 * the broadcasts of every interface of the host. Node's dgram can neither
 * set SO_BINDTODEVICE nor report the arrival interface (IP_PKTINFO). The
 * option is set here, before bind(), so no datagram from another interface
 * is ever queued on the socket; dgram adopts the bound socket as it is.
 *
 * Options, in the order Linux needs them:
 *   SO_REUSEADDR     the wildcard and the address socket share port 67
 *   SO_BROADCAST     replies to clients without an address are broadcast
 *   SO_BINDTODEVICE  receive from (and send through) this device only;
 *                    Linux before 5.7 wants CAP_NET_RAW for it
 *   SO_RCVBUFFORCE   when a receive buffer size is given: what queues while
 *                    the server is busy (a commit, a collection) instead of
 *                    being dropped. SO_RCVBUF is capped by net.core.rmem_max
 *                    (208 KiB on a stock Debian, about 150 DHCP packets);
 *                    the FORCE variant, which the server may use as root at
 *                    start, is not. Without CAP_NET_ADMIN it falls back to
 *                    SO_RCVBUF; the caller reads what it got.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "native.h"

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

static napi_value open_udp4_on_device(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != 3 && argc != 4) return throw_type(env, "openUdp4OnDevice(device, address, port[, receiveBufferBytes]) takes 3 or 4 arguments");

  char device[IFNAMSIZ + 1];
  size_t device_length;
  if (napi_get_value_string_utf8(env, argv[0], device, sizeof device, &device_length) != napi_ok) {
    return throw_type(env, "device must be a string");
  }
  if (device_length == 0 || device_length >= IFNAMSIZ) return throw_type(env, "device name must have 1-15 characters");

  char address_text[INET_ADDRSTRLEN + 1];
  size_t address_length;
  if (napi_get_value_string_utf8(env, argv[1], address_text, sizeof address_text, &address_length) != napi_ok) {
    return throw_type(env, "address must be a string");
  }
  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  if (inet_pton(AF_INET, address_text, &address.sin_addr) != 1) return throw_type(env, "address must be a dotted IPv4 address");

  int32_t port;
  if (napi_get_value_int32(env, argv[2], &port) != napi_ok || port < 0 || port > 65535) {
    return throw_type(env, "port must be an integer in 0-65535");
  }
  address.sin_port = htons((uint16_t)port);

  int32_t receive_buffer = 0;
  if (argc == 4 && (napi_get_value_int32(env, argv[3], &receive_buffer) != napi_ok || receive_buffer < 0)) {
    return throw_type(env, "receiveBufferBytes must be a non-negative integer");
  }

  /* Close-on-exec: the server spawns no children that should hold port 67. */
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return rb_throw_errno(env, errno, "socket", "AF_INET SOCK_DGRAM");
  int on = 1;
  const char *failed = NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0) failed = "SO_REUSEADDR";
  else if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on) < 0) failed = "SO_BROADCAST";
  else if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device, (socklen_t)device_length) < 0) failed = "SO_BINDTODEVICE";
  else if (receive_buffer > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer, sizeof receive_buffer) < 0 &&
           (errno != EPERM || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer) < 0)) {
    failed = "SO_RCVBUF";
  }
  if (failed != NULL) {
    int error = errno;
    close(fd);
    char detail[64];
    snprintf(detail, sizeof detail, "%s%s%s", failed, strcmp(failed, "SO_BINDTODEVICE") == 0 ? " " : "",
             strcmp(failed, "SO_BINDTODEVICE") == 0 ? device : "");
    return rb_throw_errno(env, error, "setsockopt", detail);
  }
  if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) {
    int error = errno;
    close(fd);
    char detail[64];
    snprintf(detail, sizeof detail, "%s:%d on %s", address_text, port, device);
    return rb_throw_errno(env, error, "bind", detail);
  }

  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

void register_udp_device(napi_env env, napi_value exports) {
  napi_value function;
  napi_create_function(env, "openUdp4OnDevice", NAPI_AUTO_LENGTH, open_udp4_on_device, NULL, &function);
  napi_set_named_property(env, exports, "openUdp4OnDevice", function);
}
